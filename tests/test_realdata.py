"""The importers on real, raw data that nobody on this project wrote (../shared/data).

That folder is never part of the repo (see its README: internal testing only), so this module
skips cleanly where it is absent, as in a user's fresh clone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from huggingtweets.errors import UserError
from huggingtweets.sources.archive import read_archive
from huggingtweets.sources.files import read_csv

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

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
