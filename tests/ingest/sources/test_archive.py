"""ingest/sources/archive.py: the X archive (tweets.js, ZIP, extracted folder, old formats).

Every fixture is written here, in tmp_path: nothing from real data is copied into the repo.
"""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest
from fakes.archives import ACCOUNT, TWEETS, tweet, write_data_folder, ytd

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import COLUMNS
from huggingtweets.ingest.sources.archive import read_archive


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
    assert (df["handle"] == "renamed").all() and (df["display_name"] == "Arch U").all()


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
