"""The offline sources: X archive, CSV/JSONL with a column mapping, and the demo personas.

Every fixture is written here, in tmp_path: nothing from real data is copied into the repo.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import COLUMNS
from huggingtweets.ingest.sources import archive, demo, files
from huggingtweets.ingest.sources.archive import read_archive
from huggingtweets.ingest.sources.files import read_csv, read_jsonl

CONF = Path(__file__).resolve().parents[1] / "conf" / "source"


# --- X archive fixtures ---------------------------------------------------------------------


def tweet(
    id_: str,
    text: str,
    when: str = "Wed Oct 12 17:21:38 +0000 2022",
    reply_to: str | None = None,
    urls: tuple[str, ...] = (),
    lang: str = "en",
    **extra,
) -> dict:
    """An archive tweet with the fields X writes (counts as strings, like real archives)."""
    t = {
        "retweeted": False,
        "entities": {
            "hashtags": [],
            "user_mentions": [],
            "urls": [
                {"url": "https://t.co/abc", "expanded_url": u, "display_url": u[8:30]} for u in urls
            ],
        },
        "favorite_count": "1",
        "id_str": id_,
        "id": id_,
        "created_at": when,
        "full_text": text,
        "lang": lang,
        "retweet_count": "0",
        **extra,
    }
    if reply_to:
        t["in_reply_to_status_id_str"] = reply_to
        t["in_reply_to_status_id"] = reply_to
    return t


def ytd(name: str, items: list) -> str:
    return f"window.YTD.{name}.part0 = " + json.dumps(items, indent=2, ensure_ascii=False)


TWEETS = [
    tweet("1001", "hello world", "Mon Jan 03 10:00:00 +0000 2022"),
    tweet("1002", "RT @friend: something worth sharing", "Tue Jan 04 10:00:00 +0000 2022"),
    tweet("1003", "@friend I agree", "Wed Jan 05 10:00:00 +0000 2022", reply_to="999"),
    tweet(
        "1004",
        "look at this https://t.co/abc",
        "Thu Jan 06 10:00:00 +0200 2022",
        urls=("https://twitter.com/someone/status/555",),
    ),
    tweet("1005", "🙂🙂", "Fri Jan 07 10:00:00 +0000 2022", lang="und"),
]
ACCOUNT = [
    {"account": {"username": "arch_user", "accountId": "42", "accountDisplayName": "Arch U"}}
]


def write_data_folder(data: Path, tweets_name: str = "tweets", account: bool = True) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / f"{tweets_name}.js").write_text(ytd(tweets_name, [{"tweet": t} for t in TWEETS]))
    if account:
        (data / "account.js").write_text(ytd("account", ACCOUNT))


def test_archive_current_header_bare_file(tmp_path):
    write_data_folder(tmp_path, account=False)
    df = read_archive(str(tmp_path / "tweets.js"), handle="@someone")
    assert list(df.columns) == list(COLUMNS)
    assert df["id"].tolist() == ["1001", "1002", "1003", "1004", "1005"]
    assert (df["handle"] == "someone").all() and (df["source"] == "archive").all()
    assert df["display_name"].isna().all()
    assert df.loc[0, "created_at"] == pd.Timestamp("2022-01-03 10:00:00", tz="UTC")
    # "+0200" is converted to UTC
    assert df.loc[3, "created_at"] == pd.Timestamp("2022-01-06 08:00:00", tz="UTC")


def test_archive_flags_and_lang(tmp_path):
    write_data_folder(tmp_path)
    df = read_archive(tmp_path / "tweets.js").set_index("id")
    assert df["is_retweet"].to_dict() == {
        "1001": False,
        "1002": True,
        "1003": False,
        "1004": False,
        "1005": False,
    }
    assert df["is_reply"].to_dict() == {
        "1001": False,
        "1002": False,
        "1003": True,
        "1004": False,
        "1005": False,
    }
    assert df["is_quote"].to_dict() == {
        "1001": False,
        "1002": False,
        "1003": False,
        "1004": True,
        "1005": False,
    }
    assert pd.isna(df.loc["1005", "lang"]) and df.loc["1001", "lang"] == "en"


def test_archive_quote_flag_rules(tmp_path):
    items = [
        # is_quote_status, when present, is what X says
        tweet("1", "a", is_quote_status=True),
        tweet("2", "b", is_quote_status=False, urls=("https://x.com/a/status/7",)),
        # a link to the tweet itself (as media links are) is not a quote
        tweet("3", "c", urls=("https://twitter.com/me/status/3/photo/1",)),
        # x.com links count too
        tweet("4", "d", urls=("https://x.com/other/status/8",)),
        tweet("5", "e", urls=("https://example.com/status/9",)),
    ]
    path = tmp_path / "tweets.js"
    path.write_text(ytd("tweets", [{"tweet": t} for t in items]))
    df = read_archive(path, handle="me").set_index("id")
    assert df["is_quote"].to_dict() == {"1": True, "2": False, "3": False, "4": True, "5": False}


def test_archive_old_header_and_bare_items(tmp_path):
    # Older archives: tweet.js with window.YTD.tweet.part0; also accept items without the wrapper.
    path = tmp_path / "tweet.js"
    path.write_text(ytd("tweet", [TWEETS[0], {"tweet": TWEETS[2]}]))
    df = read_archive(path, handle="old_user")
    assert df["id"].tolist() == ["1001", "1003"]
    assert df["is_reply"].tolist() == [False, True]


def test_archive_text_fallback(tmp_path):
    t = tweet("1", "")
    del t["full_text"]
    t["text"] = "only text here"
    path = tmp_path / "tweets.js"
    path.write_text(ytd("tweets", [{"tweet": t}]))
    assert read_archive(path, handle="me")["text"].tolist() == ["only text here"]


def test_archive_zip_with_parts_and_account(tmp_path):
    part0 = [{"tweet": t} for t in TWEETS[:3]]
    # part1 overlaps part0 on 1003: counted once
    part1 = [{"tweet": t} for t in TWEETS[2:]]
    zip_path = tmp_path / "twitter-2024-01-01.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("Your archive.html", "<html></html>")
        zf.writestr("data/tweets.js", ytd("tweets", part0))
        zf.writestr("data/tweets-part1.js", ytd("tweets", part1).replace("part0", "part1"))
        zf.writestr("data/deleted-tweets.js", ytd("deleted_tweets", [{"tweet": tweet("9", "x")}]))
        zf.writestr("data/account.js", ytd("account", ACCOUNT))
    df = read_archive(str(zip_path))
    assert df["id"].tolist() == ["1001", "1002", "1003", "1004", "1005"]
    assert (df["handle"] == "arch_user").all()
    assert (df["display_name"] == "Arch U").all()
    # the handle argument wins over account.js; the display name still comes from it
    df = read_archive(str(zip_path), handle="Renamed")
    assert (df["handle"] == "Renamed").all() and (df["display_name"] == "Arch U").all()


def test_archive_old_split_names_in_zip(tmp_path):
    zip_path = tmp_path / "archive.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("data/tweet.js", ytd("tweet", [{"tweet": TWEETS[0]}]))
        zf.writestr("data/tweet-part1.js", ytd("tweet", [{"tweet": TWEETS[1]}]))
    assert read_archive(zip_path, handle="me")["id"].tolist() == ["1001", "1002"]


def test_archive_extracted_folder_and_data_folder(tmp_path):
    root = tmp_path / "twitter-archive"
    write_data_folder(root / "data")
    (root / "Your archive.html").write_text("<html></html>")
    for path in (root, root / "data"):
        df = read_archive(str(path))
        assert len(df) == 5 and (df["handle"] == "arch_user").all()


def test_archive_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_data_folder(tmp_path / "dl" / "data")
    assert len(read_archive("~/dl")) == 5


def test_archive_missing_path(tmp_path):
    with pytest.raises(UserError, match="not found") as err:
        read_archive(str(tmp_path / "nope.zip"), handle="me")
    assert "nope.zip" in str(err.value)


def test_archive_without_account_needs_handle(tmp_path):
    write_data_folder(tmp_path, account=False)
    with pytest.raises(UserError, match=r"user=<handle>") as err:
        read_archive(tmp_path / "tweets.js")
    assert str(tmp_path) in str(err.value)


def test_archive_without_tweets_file(tmp_path):
    zip_path = tmp_path / "photos.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("data/like.js", ytd("like", []))
    with pytest.raises(UserError) as err:
        read_archive(zip_path, handle="me")
    message = str(err.value)
    assert "photos.zip" in message and "data/tweets.js" in message and "like.js" in message

    (tmp_path / "folder" / "data").mkdir(parents=True)
    with pytest.raises(UserError, match="no tweets file in the folder"):
        read_archive(tmp_path / "folder", handle="me")


def test_archive_not_a_ytd_file(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_text('[{"tweet": {}}]')
    with pytest.raises(UserError, match="does not look like an X archive") as err:
        read_archive(path, handle="me")
    assert "tweets.js" in str(err.value)


def test_archive_broken_json(tmp_path):
    zip_path = tmp_path / "archive.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("data/tweets.js", 'window.YTD.tweets.part0 = [ {"tweet": {"id_str": ')
    with pytest.raises(UserError, match="broken JSON") as err:
        read_archive(zip_path, handle="me")
    assert "data/tweets.js" in str(err.value) and "X archive" in str(err.value)


def test_archive_not_utf8(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_bytes(ytd("tweets", [{"tweet": tweet("1", "caf\u00e9")}]).encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8") as err:
        read_archive(path, handle="me")
    assert "tweets.js" in str(err.value) and "offset" in str(err.value)


def test_archive_bad_date_and_bad_zip(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_text(ytd("tweets", [{"tweet": tweet("1", "x", when="2022-10-12")}]))
    with pytest.raises(UserError, match="created_at"):
        read_archive(path, handle="me")
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match="broken.zip"):
        read_archive(bad, handle="me")


def test_archive_invalid_handle(tmp_path):
    write_data_folder(tmp_path)
    with pytest.raises(UserError, match="invalid handle"):
        read_archive(tmp_path, handle="../etc")


# --- CSV / JSONL ----------------------------------------------------------------------------

OLD_ARCHIVE_COLUMNS = {
    "id": "tweet_id",
    "created_at": "timestamp",
    "is_retweet": "retweeted_status_id",
    "is_reply": "in_reply_to_status_id",
}


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


def test_csv_with_column_mapping(tmp_path):
    path = write_csv(
        tmp_path / "tweets.csv",
        [
            # ids longer than a float's precision must survive exactly
            {
                "tweet_id": "815676142409502720",
                "in_reply_to_status_id": "815673504158785536",
                "timestamp": "2017-01-01 21:48:41 +0000",
                "text": "@x sure",
                "retweeted_status_id": "",
            },
            {
                "tweet_id": "815667982370119681",
                "in_reply_to_status_id": "",
                "timestamp": "2017-01-01 21:16:16 +0000",
                "text": "RT @y: hi",
                "retweeted_status_id": "123",
            },
            {
                "tweet_id": "9",
                "in_reply_to_status_id": "",
                "timestamp": "2008-02-05 00:00:00 +0000",
                "text": "caf\u00e9 & t\u00e9 \u65e5\u672c",
                "retweeted_status_id": "",
            },
        ],
    )
    df = read_csv(str(path), handle="julia", columns=OLD_ARCHIVE_COLUMNS)
    assert list(df.columns) == list(COLUMNS)
    df = df.set_index("id")
    assert set(df.index) == {"815676142409502720", "815667982370119681", "9"}
    assert df["is_reply"].to_dict() == {
        "9": False,
        "815667982370119681": False,
        "815676142409502720": True,
    }
    assert df["is_retweet"].to_dict() == {
        "9": False,
        "815667982370119681": True,
        "815676142409502720": False,
    }
    assert df.loc["9", "text"] == "caf\u00e9 & t\u00e9 \u65e5\u672c"
    assert df.loc["9", "created_at"] == pd.Timestamp("2008-02-05", tz="UTC")
    assert (df["source"] == "csv").all() and (df["handle"] == "julia").all()


def test_csv_defaults_derive_retweets_and_boolean_flags(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        [
            {
                "id": 1,
                "created_at": "2020-01-01T00:00:00Z",
                "text": "RT @a: x",
                "reply": "False",
                "who": "bob",
                "name": "Bob",
                "language": "und",
            },
            {
                "id": 2,
                "created_at": "2020-01-02T00:00:00Z",
                "text": "hi",
                "reply": "True",
                "who": "bob",
                "name": "Bob",
                "language": "en",
            },
        ],
    )
    cols = {"is_reply": "reply", "handle": "who", "display_name": "name", "lang": "language"}
    df = read_csv(path, columns=cols)
    assert df["is_retweet"].tolist() == [True, False]
    assert df["is_reply"].tolist() == [False, True]
    assert df["handle"].tolist() == ["bob", "bob"] and df["display_name"].tolist() == ["Bob"] * 2
    assert pd.isna(df.loc[0, "lang"]) and df.loc[1, "lang"] == "en"


def test_csv_missing_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"tweet_id": 1, "created_at": "2020-01-01", "text": "a"}])
    with pytest.raises(UserError) as err:
        read_csv(path, handle="me")
    message = str(err.value)
    assert "t.csv" in message and "'id'" in message and "tweet_id" in message
    assert "source.columns.id=" in message


def test_csv_unknown_field_and_handle_rules(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        [
            {"id": 1, "created_at": "2020-01-01", "text": "a", "user": "amy"},
            {"id": 2, "created_at": "2020-01-02", "text": "b", "user": "ben"},
        ],
    )
    with pytest.raises(UserError, match="unknown field"):
        read_csv(path, handle="me", columns={"tweet": "id"})
    with pytest.raises(UserError, match=r"user=<handle>"):
        read_csv(path)
    with pytest.raises(UserError, match="2 different handles"):
        read_csv(path, columns={"handle": "user"})
    assert (read_csv(path, handle="amy", columns={"handle": "user"})["handle"] == "amy").all()


def test_csv_bad_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,created_at,text\n1,2020-01-01,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(UserError) as err:
        read_csv(path, handle="me")
    message = str(err.value)
    offset = path.read_bytes().index(b"\xe9")
    assert "latin.csv" in message and f"offset {offset}" in message
    assert "source.encoding=latin-1" in message
    # with the right encoding it reads correctly
    assert read_csv(path, handle="me", encoding="latin-1")["text"].tolist() == ["caf\u00e9"]


def test_csv_empty_and_header_only_and_missing(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="empty"):
        read_csv(empty, handle="me")
    header = tmp_path / "header.csv"
    header.write_text("id,created_at,text\n")
    with pytest.raises(UserError, match="no posts"):
        read_csv(header, handle="me")
    with pytest.raises(UserError, match="not found"):
        read_csv(tmp_path / "nope.csv", handle="me")


def test_csv_bad_dates(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"id": 1, "created_at": "yesterday-ish", "text": "a"}])
    with pytest.raises(UserError, match="created_at"):
        read_csv(path, handle="me")


def test_csv_passes_reader_options(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("id\twhen\ttext\n1\t2020-01-01\thello, world\n")
    df = read_csv(path, handle="me", columns={"created_at": "when"}, sep="\t")
    assert df["text"].tolist() == ["hello, world"]


def test_jsonl_with_nested_fields(tmp_path):
    lines = [
        {
            "id": 1234567890123456789,
            "created_at": "2023-05-01T12:00:00.000Z",
            "text": "hi &amp; bye",
            "author": {"username": "jay", "name": "Jay"},
            "referenced": None,
            "is_quote": False,
        },
        {
            "id": 1234567890123456790,
            "created_at": "2023-05-02T12:00:00.000Z",
            "text": "@k yes",
            "author": {"username": "jay", "name": "Jay"},
            "referenced": "1",
            "is_quote": True,
        },
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    cols = {
        "handle": "author.username",
        "display_name": "author.name",
        "is_reply": "referenced",
        "is_quote": "is_quote",
    }
    df = read_jsonl(str(path), columns=cols)
    assert df["id"].tolist() == ["1234567890123456789", "1234567890123456790"]
    assert df["is_reply"].tolist() == [False, True]
    assert df["is_quote"].tolist() == [False, True]
    assert (df["handle"] == "jay").all() and (df["display_name"] == "Jay").all()
    assert (df["source"] == "jsonl").all()
    assert df["text"].tolist()[0] == "hi &amp; bye"  # kept exactly as posted


def test_jsonl_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "created_at": "2020-01-01", "text": "a"}\n{"id": 2,\n')
    with pytest.raises(UserError, match="line 2 is not valid JSON") as err:
        read_jsonl(path, handle="me")
    assert "bad.jsonl" in str(err.value)
    path.write_text('{"id": 1, "created_at": "2020-01-01", "body": "a"}\n')
    with pytest.raises(
        UserError, match=r"column 'text' is not in the file.*body.*source.columns.text"
    ):
        read_jsonl(path, handle="me")
    path.write_bytes(b'{"id": 1, "created_at": "2020-01-01", "text": "\xff"}\n')
    with pytest.raises(UserError, match="source.encoding"):
        read_jsonl(path, handle="me")
    path.write_text("\n\n")
    with pytest.raises(UserError, match="empty"):
        read_jsonl(path, handle="me")


# --- demo personas --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def personas() -> dict[str, pd.DataFrame]:
    return {handle: demo.generate(handle) for handle in demo.PERSONAS}


def test_demo_is_deterministic(personas):
    again = demo.generate("demo_ada")
    pd.testing.assert_frame_equal(personas["demo_ada"], again)
    assert personas["demo_ada"].to_json() == again.to_json()
    assert not demo.generate("demo_ada", seed=1)["text"].equals(personas["demo_ada"]["text"])
    assert len(demo.generate("demo_bo", n=50)) == 50


def test_demo_schema_and_time_order(personas):
    for handle, df in personas.items():
        assert list(df.columns) == list(COLUMNS)
        assert len(df) == 400
        assert (df["handle"] == handle).all() and (df["source"] == "demo").all()
        assert df["created_at"].is_monotonic_increasing and df["created_at"].is_unique
        assert df["created_at"].min() >= pd.Timestamp("2021-01-01", tz="UTC")
        assert df["id"].str.isdigit().all() and df["id"].astype(int).is_monotonic_increasing
        assert df["id"].is_unique
    all_ids = pd.concat([df["id"] for df in personas.values()])
    assert all_ids.is_unique  # a mix of personas never collides


def test_demo_personas_are_distinct(personas):
    ada, bo, cy = (personas[h] for h in ("demo_ada", "demo_bo", "demo_cy"))
    assert not set(ada["text"]) & set(bo["text"]) - {"lol"}

    def share(df, pattern):
        return df["text"].str.contains(pattern, regex=True).mean()

    assert share(bo, "!!!") > 0.2 and share(ada, "!!!") < 0.05
    assert share(bo, "#") > 0.2 and share(cy, "#") == 0
    assert share(ada, "coffee|espresso|cortado|brew|moon|jupiter|saturn|orion") > 0.2
    assert share(cy, "[\u3040-\u30ff\u4e00-\u9fff]") > 0.2 and share(ada, "[\u4e00-\u9fff]") == 0
    # ada writes lowercase; bo shouts
    originals = ada[~(ada["is_retweet"] | ada["is_quote"])]["text"]
    originals = originals.str.replace(r"https://t\.co/\w+", "", regex=True)  # links are mixed-case
    assert (originals == originals.str.lower()).mean() > 0.9
    assert share(bo, r"\b[A-Z]{4,}\b") > 0.5


def test_demo_contains_the_mess_of_real_timelines(personas):
    for handle, df in personas.items():
        text = df["text"]
        rt = df["is_retweet"].mean()
        assert 0.04 < rt < 0.13, handle
        assert text[df["is_retweet"]].str.startswith("RT @").all()
        assert 0.08 < df["is_reply"].mean() < 0.22, handle
        assert text[df["is_reply"]].str.startswith("@").all()
        assert df["is_quote"].sum() >= 3
        assert text.str.contains("https://t.co/").sum() > 20
        assert text.str.contains(r"\nhttps://t\.co/\w+$", regex=True).any()  # own line
        assert text.str.contains(r"https://t\.co/\w+ \S", regex=True).any()  # mid-text
        assert text.str.contains("&amp;").any()
        assert text.str.contains("&lt;|&gt;", regex=True).any()
        assert text.str.contains("[\U0001f300-\U0001faff\u2600-\u27bf]", regex=True).any()  # emoji
        assert text.str.contains("  ").any() and text.str.contains("\n").any()
        assert (text.str.len() < 15).sum() >= 5  # short ones like "lol"
        assert text.duplicated().sum() >= 2
        plain = df[~(df["is_retweet"] | df["is_reply"] | df["is_quote"])]["text"]
        assert plain.duplicated().sum() >= 2  # exact duplicates of real posts, not just "lol"
        assert text.nunique() > 300
        assert 40 <= text.str.len().median() <= 200
        # plenty left after dropping retweets, links and mentions
        cleaned = text[~df["is_retweet"]].str.replace(r"https://t\.co/\w+|@\w+", "", regex=True)
        assert cleaned.str.len().sum() > 6000


def test_demo_japanese(personas):
    cy = personas["demo_cy"]
    ja = cy[cy["lang"] == "ja"]
    assert len(ja) > 50 and set(cy["lang"]) == {"en", "ja"}
    assert ja["text"].str.contains("。").any()
    assert set(personas["demo_ada"]["lang"]) == {"en"}


def test_demo_unknown_persona():
    with pytest.raises(UserError) as err:
        demo.generate("demo_zed")
    message = str(err.value)
    assert all(h in message for h in ("demo_ada", "demo_bo", "demo_cy"))
    assert len(demo.generate("@Demo_Ada", n=5)) == 5


# --- Hydra configs ----------------------------------------------------------------------------


def test_source_configs_instantiate(tmp_path):
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    from huggingtweets.ingest import sources
    from huggingtweets.ingest.sources import bluesky, mastodon, twarc, x

    targets = {
        "archive": archive.read_archive,
        "csv": files.read_csv,
        "jsonl": files.read_jsonl,
        "demo": demo.generate,
        "twarc": twarc.read_twarc,
        "x": x.XSource,
        "bluesky": bluesky.BlueskySource,
        "mastodon": mastodon.MastodonSource,
        "auto": sources.auto,
    }
    assert set(targets) == {p.stem for p in CONF.glob("*.yaml")}  # every source is listed here
    for name, function in targets.items():
        cfg = OmegaConf.load(CONF / f"{name}.yaml")
        assert cfg._target_ == f"{function.__module__}.{function.__name__}"

    cfg = OmegaConf.load(CONF / "demo.yaml")
    cfg.n = 7
    assert len(hydra_utils.instantiate(cfg, handle="demo_bo")) == 7

    path = write_csv(tmp_path / "t.csv", [{"tweet_id": 1, "created_at": "2020-01-01", "text": "a"}])
    cfg = OmegaConf.load(CONF / "csv.yaml")
    cfg.path = str(path)
    cfg.columns.id = "tweet_id"
    df = hydra_utils.instantiate(cfg, handle="me")
    assert df["id"].tolist() == ["1"]

    write_data_folder(tmp_path / "arch" / "data")
    cfg = OmegaConf.load(CONF / "archive.yaml")
    cfg.path = str(tmp_path / "arch")
    assert len(hydra_utils.instantiate(cfg, handle="me")) == 5
