"""The importers on real, raw data that nobody on this project wrote (../shared/data).

That folder is never part of the repo (see its README: internal testing only), so this module
skips cleanly where it is absent, as in a user's fresh clone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED

from huggingtweets.errors import UserError
from huggingtweets.ingest.sources.archive import read_archive
from huggingtweets.ingest.sources.files import read_csv

DATA = SHARED

pytestmark = pytest.mark.realdata
if not DATA.is_dir():
    pytest.skip(f"no real data at {DATA}", allow_module_level=True)

ARCHIVES = DATA / "archives"
TIDY = DATA / "timelines" / "tidy-text-mining"
BAD_ENCODING = DATA / "timelines" / "fivethirtyeight-bad-encoding" / "twitter-ratio"

# The old official archive CSV (tweets.csv in pre-2019 "download your data" ZIPs).
OLD_ARCHIVE_CSV = {
    "id": "tweet_id",
    "created_at": "timestamp",
    "text": "text",
    "is_retweet": "retweeted_status_id",
    "is_reply": "in_reply_to_status_id",
}


def archives() -> list[Path]:
    return sorted(p for p in ARCHIVES.iterdir() if p.is_dir()) if ARCHIVES.is_dir() else []


@pytest.mark.parametrize("folder", archives(), ids=lambda p: p.name)
def test_every_archive_parses(folder):
    df = read_archive(folder, handle="someone")
    assert len(df) > 0 and df["id"].is_unique
    assert df["created_at"].notna().all() and df["text"].str.len().gt(0).all()


def test_smithjd_archive_counts():
    df = read_archive(ARCHIVES / "smithjd" / "tweets.js", handle="smithjd")
    assert len(df) == 1758
    assert df["is_retweet"].sum() == 128
    assert df["is_reply"].sum() == 160
    assert 0 < df["is_quote"].sum() <= 20  # 20 links to posts, one of them inside a retweet
    assert df["created_at"].min().year == 2007 and df["created_at"].max().year == 2022
    assert (df["lang"] == "en").sum() > 1600 and "und" not in set(df["lang"].dropna())


def test_old_format_archive_counts():
    df = read_archive(ARCHIVES / "LumenInferius-oldformat", handle="LumenInferius")
    assert len(df) == 22
    assert df["is_reply"].sum() == 9
    assert df["is_retweet"].sum() == 0


def test_archive_without_account_asks_for_handle():
    with pytest.raises(UserError, match=r"user=<handle>"):
        read_archive(ARCHIVES / "smithjd")


def test_old_archive_csv_with_mapping():
    df = read_csv(TIDY / "tweets_julia.csv", handle="juliasilge", columns=OLD_ARCHIVE_CSV)
    assert len(df) == 13091 and df["id"].is_unique
    # ids are 9-18 digit strings, never floats
    assert df["id"].str.fullmatch(r"\d{9,18}").all()
    assert df["is_retweet"].sum() == 1026  # retweeted_status_id set
    assert df["is_reply"].sum() == 4318  # in_reply_to_status_id set
    # ten pre-2010 "manual" retweets start with RT @ but have no retweeted_status_id
    assert df["text"].str.startswith("RT @").sum() == 1036
    assert df["created_at"].min().year == 2008 and df["created_at"].max().year == 2017


def test_rtweet_export_with_mapping():
    df = read_csv(TIDY / "juliasilge_tweets.csv", handle="juliasilge")
    assert len(df) == 3209 and df["id"].is_unique
    assert 0 < df["is_retweet"].sum() < len(df)  # derived from the "RT @" prefix


@pytest.mark.parametrize("name", ["BarackObama.csv", "realDonaldTrump.csv"])
def test_mojibake_csv_is_a_clear_error(name):
    with pytest.raises(UserError) as err:
        read_csv(BAD_ENCODING / name, handle="someone", columns={"id": "url"})
    message = str(err.value)
    assert name in message and "offset" in message and "source.encoding" in message


# --- recorded API responses (api-samples): every file parses, flags match the raw objects -----

SAMPLES = DATA / "api-samples"


def sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.rglob("*.json*")
                  if p.is_file() and not p.name.endswith(".meta.json"))


def _raw_flags_v1(status: dict) -> tuple[bool, bool, bool]:
    text = status.get("full_text") or status.get("text") or ""
    return (status.get("retweeted_status") is not None or text.startswith("RT @"),
            bool(status.get("in_reply_to_status_id")),
            bool(status.get("is_quote_status")) or "quoted_status" in status)


def _raw_flags_v2(tweet: dict) -> tuple[bool, bool, bool]:
    types = {r["type"] for r in tweet.get("referenced_tweets") or []}
    return ("retweeted" in types or tweet["text"].startswith("RT @"), "replied_to" in types,
            "quoted" in types)


def _raw_x_items(path: Path) -> list[tuple[bool, bool, bool]]:
    """Flags read straight off the raw objects, independently of the importer's code paths."""
    text = path.read_text()
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    flags = []
    for doc in docs:
        for obj in doc if isinstance(doc, list) else [doc]:
            if "data" in obj:
                flags += [_raw_flags_v2(t) for t in obj["data"]]
            elif "id_str" in obj:
                flags.append(_raw_flags_v1(obj))
            else:
                flags.append(_raw_flags_v2(obj))
    return flags


def _parsed_and_raw(path: Path):
    from huggingtweets.ingest.posts import to_frame
    from huggingtweets.ingest.sources import bluesky, mastodon
    from huggingtweets.ingest.sources.twarc import parse_twarc

    kind = path.parent.name
    if kind == "bluesky-getAuthorFeed":
        body = json.loads(path.read_text())
        raw = []
        for item in body["feed"]:
            record = item["post"]["record"]
            repost = item.get("reason", {}).get("$type", "").endswith("reasonRepost")
            embed = record.get("embed", {}).get("$type", "")
            raw.append((repost, not repost and "reply" in record,
                        not repost and embed in ("app.bsky.embed.record",
                                                 "app.bsky.embed.recordWithMedia")))
        return to_frame(bluesky.parse_page(body, "someone.bsky.social").records), raw
    if kind == "mastodon-account-statuses":
        statuses = json.loads(path.read_text())
        raw = [(s["reblog"] is not None, s["reblog"] is None and s["in_reply_to_id"] is not None,
                False) for s in statuses]
        return to_frame([mastodon.status_record(s, "someone@example.social") for s in statuses]), raw
    records = parse_twarc(path)
    return (to_frame(records) if records else None), _raw_x_items(path)


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recorded_api_response_parses_with_the_right_flags(path):
    df, raw = _parsed_and_raw(path)
    if df is None:
        assert raw == []  # testmentionstimeline_body0.json: an empty page, []
        return
    assert len(df) == len(raw) and df["id"].is_unique
    assert df["created_at"].notna().all()
    expected = [sum(flags[i] for flags in raw) for i in range(3)]
    assert [df["is_retweet"].sum(), df["is_reply"].sum(), df["is_quote"].sum()] == expected


def test_bluesky_sample_counts_from_its_readme():
    df, _ = _parsed_and_raw(SAMPLES / "bluesky-getAuthorFeed" /
                            "getAuthorFeed_chriskenny.bsky.social.json")
    # "50 items, 7 reposts (reasonRepost), 24 replies"; 7 posts embed another post (quotes).
    assert (len(df), df["is_retweet"].sum(), df["is_reply"].sum(), df["is_quote"].sum()) == (50, 7, 24, 7)
    assert df["text"].str.contains("https://christophertkenny.com/bskyr/news/index.html",
                                   regex=False).any()  # the shortened link, expanded


def test_mastodon_sample_counts_from_its_readme():
    pages = [_parsed_and_raw(SAMPLES / "mastodon-account-statuses" /
                             f"get_account_statuses_limit_{i}.json")[0] for i in range(3)]
    assert [len(p) for p in pages] == [20, 20, 3]  # "3 consecutive pages (20+20+3)"
    df = pd.concat(pages)
    assert (df["is_retweet"].sum(), df["is_reply"].sum(), df["content_warning"].notna().sum()) == (4, 10, 8)
    assert not df["text"].str.contains("<p>|<span|&quot;|&#39;", regex=True).any()


def test_twarc_sample_counts():
    from huggingtweets.ingest.sources.twarc import read_twarc

    df, _ = _parsed_and_raw(SAMPLES / "twarc2-jsonl" / "2sets.jsonl")  # two search pages
    assert (len(df), df["is_retweet"].sum(), df["is_reply"].sum(), df["is_quote"].sum()) == (200, 145, 10, 11)
    with pytest.raises(UserError, match="185 authors"):
        read_twarc(str(SAMPLES / "twarc2-jsonl" / "2sets.jsonl"))


# --- the recorded responses served on loopback, fetched by the real clients -------------------


@pytest.fixture
def replay():
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def _json(body, headers=None):
    from werkzeug import Response

    return Response(json.dumps(body), headers=headers or {}, content_type="application/json")


def _source(name: str, url: str, **kw):
    from fakes.servers import source_node

    node = source_node(name)
    node.merge_with({"base_url": url, "progress": False, "backoff": 0.01, **kw})
    return node


def test_mastodon_replay_follows_the_recorded_link_headers(replay, tmp_path):
    import re

    from huggingtweets.ingest import sources

    folder = SAMPLES / "mastodon-account-statuses"
    pages = {}
    for i in range(3):
        meta = json.loads((folder / f"get_account_statuses_limit_{i}.meta.json").read_text())
        found = re.search(r"max_id=(\d+)", meta["request_uri"])
        pages[found.group(1) if found else None] = (
            json.loads((folder / f"get_account_statuses_limit_{i}.json").read_text()),
            meta["headers"]["link"].replace("https://social.tchncs.de", replay.url_for("").rstrip("/")))
    account = pages[None][0][0]["account"]
    seen = []

    def handler(request):
        if request.path.endswith("/lookup"):
            return _json(account)
        seen.append(request.args.get("max_id"))
        body, link = pages[request.args.get("max_id")]
        return _json(body, {"Link": link})

    replay.expect_request(re.compile(".*")).respond_with_handler(handler)
    got = sources.fetch_user(_source("mastodon", replay.url_for("").rstrip("/"), page_size=20),
                             "chainsawriot@social.tchncs.de", tmp_path)
    assert seen == [None, "109315118407397095", "109285625663774938"]  # the recorded chain
    df = got.merged
    assert (len(df), df["is_retweet"].sum(), df["is_reply"].sum()) == (43, 4, 10)
    assert set(df["display_name"]) == {"chainsawriot"}


def test_bluesky_replay(replay, tmp_path):
    import re

    from huggingtweets.ingest import sources

    body = json.loads((SAMPLES / "bluesky-getAuthorFeed" /
                       "getAuthorFeed_chriskenny.bsky.social.json").read_text())
    author = next(i["post"]["author"] for i in body["feed"] if "reason" not in i)

    def handler(request):
        if request.path.endswith("getProfile"):
            return _json(author)
        return _json(body if not request.args.get("cursor") else {"feed": []})

    replay.expect_request(re.compile(".*")).respond_with_handler(handler)
    got = sources.fetch_user(_source("bluesky", replay.url_for("").rstrip("/"), page_size=50),
                             "chriskenny.bsky.social", tmp_path)
    df = got.merged
    assert (len(df), df["is_retweet"].sum(), df["is_reply"].sum(), df["is_quote"].sum()) == (50, 7, 24, 7)


def test_x_replay_through_tweepy(replay, tmp_path, monkeypatch):
    import re

    from huggingtweets.ingest import sources

    monkeypatch.setenv("X_BEARER_TOKEN", "replay-token")
    body = json.loads((SAMPLES / "x-api-v2-and-v1.1-tweepy" /
                       "test_client_get_users_tweets_0.json").read_text())

    def handler(request):
        if "/by/username/" in request.path:
            return _json({"data": {"id": "2244994945", "username": "TwitterDev", "name": "Dev"}})
        return _json(body if not request.args.get("pagination_token") else {"meta": {"result_count": 0}})

    replay.expect_request(re.compile(".*")).respond_with_handler(handler)
    got = sources.fetch_user(_source("x", replay.url_for("").rstrip("/")), "TwitterDev", tmp_path)
    assert len(got.merged) == 2 and got.merged["created_at"].dt.year.eq(2022).all()
