"""ingest/sources/files.py: CSV and JSONL exports with a column mapping.

Every fixture is written here, in tmp_path: nothing from real data is copied into the repo.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fakes.archives import write_csv

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import COLUMNS
from huggingtweets.ingest.sources.files import read_csv, read_jsonl

# --- CSV / JSONL ----------------------------------------------------------------------------

OLD_ARCHIVE_COLUMNS = {
    "id": "tweet_id",
    "created_at": "timestamp",
    "is_retweet": "retweeted_status_id",
    "is_reply": "in_reply_to_status_id",
}


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
    # the first line has no "referenced": it does not say, so the flag is unknown (NA), which a
    # merge reads as "keep what is known" and the cache stores as False
    assert [None if pd.isna(v) else bool(v) for v in df["is_reply"]] == [None, True]
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
