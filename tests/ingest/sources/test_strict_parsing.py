"""Files read strictly: a value that cannot mean one thing is an error naming it, never a guess.

Ids that went through a spreadsheet, duplicate ids, flags written as floats or left blank, dates
whose day and month order only the whole column can tell, relative and future dates, text from
the file in messages, nesting too deep to read. Every fixture is written here, in tmp_path.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fakes.archives import tweet as archive_tweet
from fakes.archives import write_csv, ytd

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.ingest.sources.archive import read_archive
from huggingtweets.ingest.sources.files import read_csv, read_jsonl
from huggingtweets.ingest.sources.twarc import read_twarc


def rows(n: int, **columns) -> list[dict]:
    """n posts with distinct ids and times; `columns` give per-row values (lists) or constants."""
    out = []
    for i in range(n):
        row = {"id": str(1000 + i), "created_at": f"2021-03-{1 + i % 28:02d}T10:00:00Z",
               "text": f"post {i}"}
        for key, value in columns.items():
            row[key] = value[i] if isinstance(value, list) else value
        out.append(row)
    return out


# --- ids -------------------------------------------------------------------------------------


def test_ids_mangled_by_a_spreadsheet_are_refused(tmp_path):
    # What a spreadsheet writes back for 19-digit ids: every one of 300 posts gets the same "id".
    path = write_csv(tmp_path / "export.csv", rows(300, id="1.23457E+18"))
    with pytest.raises(UserError) as err:
        read_csv(path, handle="me")
    message = str(err.value)
    assert "export.csv" in message and "'id'" in message and "1.23457E+18" in message
    assert "text" in message  # the fix: export the ids as text
    path = write_csv(tmp_path / "floats.csv", rows(2, id=["815676142409502720.0", "7.0"]))
    with pytest.raises(UserError, match=r"floats\.csv.*815676142409502720\.0"):
        read_csv(path, handle="me")


def test_duplicate_ids_differing_are_an_error_identical_are_merged(tmp_path):
    same = rows(3) + rows(3)[1:2]  # post 1 twice, word for word
    df = read_csv(write_csv(tmp_path / "same.csv", same), handle="me")
    assert df["id"].tolist() == ["1000", "1001", "1002"]
    differing = rows(3) + [{**rows(3)[1], "text": "another post"}]
    with pytest.raises(UserError) as err:
        read_csv(write_csv(tmp_path / "dup.csv", differing), handle="me")
    message = str(err.value)
    assert "dup.csv" in message and "1001" in message and "row 3" in message and "row 5" in message
    lines = [json.dumps(r) for r in differing]
    (tmp_path / "dup.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"dup\.jsonl.*1001.*line 2.*line 4"):
        read_jsonl(tmp_path / "dup.jsonl", handle="me")


# --- flags -----------------------------------------------------------------------------------


def test_float_and_blank_flags_mean_what_they_say(tmp_path):
    # pandas writes a bool column with a gap as floats: 1.0, 0.0 and an empty cell.
    flags = [0.0, 1.0, None, 0.0, 0.0, 0.0]
    path = tmp_path / "floats.csv"
    pd.DataFrame(rows(6, rt=flags)).to_csv(path, index=False)
    assert "0.0" in path.read_text()
    df = read_csv(path, handle="me", columns={"is_retweet": "rt"})
    # the empty cell is unknown (NA: a merge keeps a known value), never a true 0.0
    flags = [None if pd.isna(v) else bool(v) for v in df["is_retweet"]]
    assert flags == [False, True, None, False, False, False]
    spelled = ["TRUE", "false", "Yes", "no", "1", "0"]
    df = read_csv(write_csv(tmp_path / "words.csv", rows(6, rt=spelled)), handle="me",
                  columns={"is_retweet": "rt"})
    assert df["is_retweet"].tolist() == [True, False, True, False, True, False]


def test_a_flag_that_is_not_a_flag_is_an_error(tmp_path):
    path = write_csv(tmp_path / "odd.csv", rows(3, reply=["true", "maybe", "false"]))
    with pytest.raises(UserError) as err:
        read_csv(path, handle="me", columns={"is_reply": "reply"})
    message = str(err.value)
    assert "odd.csv" in message and "'reply'" in message and "maybe" in message and "row 3" in message


def test_id_columns_still_mark_flags(tmp_path):
    reply_to = ["815673504158785536", "", "NA"]
    df = read_csv(write_csv(tmp_path / "ids.csv", rows(3, to=reply_to)), handle="me",
                  columns={"is_reply": "to"})
    assert df["is_reply"].tolist() == [True, False, False]


# --- dates -----------------------------------------------------------------------------------


def test_a_day_first_column_is_read_day_first_throughout(tmp_path):
    days = [datetime(2021, 1, 1) + timedelta(days=9 * i) for i in range(40)]
    path = write_csv(tmp_path / "dmy.csv", rows(40, created_at=[d.strftime("%d/%m/%Y") for d in days]))
    df = read_csv(path, handle="me")
    assert sorted(df["created_at"].dt.date) == [d.date() for d in days]


def test_month_first_two_digit_years_with_times(tmp_path):
    # The fivethirtyeight exports: m/d/yy H:MM, unpadded.
    stamps = ["10/16/17 22:59", "10/2/17 12:41", "1/5/16 9:03"]
    df = read_csv(write_csv(tmp_path / "mdy.csv", rows(3, created_at=stamps)), handle="me")
    assert sorted(df["created_at"].astype(str)) == [
        "2016-01-05 09:03:00+00:00", "2017-10-02 12:41:00+00:00", "2017-10-16 22:59:00+00:00"]


def test_ambiguous_or_mixed_date_columns_are_refused_with_the_fix(tmp_path):
    ambiguous = write_csv(tmp_path / "amb.csv", rows(3, created_at=["01/02/2021", "03/04/2021",
                                                                   "05/06/2021"]))
    with pytest.raises(UserError) as err:
        read_csv(ambiguous, handle="me")
    message = str(err.value)
    assert "amb.csv" in message and "'created_at'" in message and "source.date_format=" in message
    df = read_csv(ambiguous, handle="me", date_format="%d/%m/%Y")
    assert df["created_at"].dt.month.tolist() == [2, 4, 6]
    mixed = write_csv(tmp_path / "mixed.csv", rows(2, created_at=["25/01/2021", "01/25/2021"]))
    with pytest.raises(UserError, match=r"mixed\.csv.*(25/01/2021|01/25/2021)"):
        read_csv(mixed, handle="me")
    bad = write_csv(tmp_path / "bad.csv", rows(2, created_at=["2021-01-05", "5 Jan"]))
    with pytest.raises(UserError, match=r"bad\.csv.*row 3"):
        read_csv(bad, handle="me", date_format="%Y-%m-%d")


@pytest.mark.parametrize("word", ["now", "today", "yesterday", "Tomorrow"])
def test_relative_dates_are_refused(tmp_path, word):
    path = write_csv(tmp_path / "rel.csv", rows(2, created_at=["2021-01-05T10:00:00Z", word]))
    with pytest.raises(UserError, match=rf"rel\.csv.*row 3.*{word}"):
        read_csv(path, handle="me")


def test_future_dates_in_a_file_are_refused(tmp_path):
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = write_csv(tmp_path / "future.csv", rows(2, created_at=["2021-01-05T10:00:00Z", later]))
    with pytest.raises(UserError, match=r"future\.csv.*future.*row 3"):
        read_csv(path, handle="me")
    # a clock a few hours ahead is no future post
    soon = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = write_csv(tmp_path / "skew.csv", rows(2, created_at=["2021-01-05T10:00:00Z", soon]))
    assert len(read_csv(path, handle="me")) == 2


def test_check_record_refuses_future_times():
    record = {"id": "1", "text": "x", "created_at": "2150-01-01T00:00:00Z"}
    assert "future" in posts.check_record(record)
    record = {"id": "1", "text": "x", "created_at": datetime.now(UTC).isoformat()}
    assert posts.check_record(record) is None


# --- text from the file in messages ---------------------------------------------------------


def test_csv_headers_in_messages_are_printable(tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text("id,created_at,\x1b[2J\x1b[HDone\u202e\n1,2021-01-01,hi\n")
    with pytest.raises(UserError) as err:
        read_csv(path, handle="me")
    message = str(err.value)
    assert "evil.csv" in message and "Done" in message
    assert "\x1b" not in message and "\u202e" not in message


def test_zip_member_names_in_messages_are_printable(tmp_path):
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/\x1b[2Jlike\u202e.js", ytd("like", []))
    with pytest.raises(UserError) as err:
        read_archive(path, handle="me")
    assert "like" in str(err.value) and "\x1b" not in str(err.value)
    assert "\u202e" not in str(err.value)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("\x1b[31mx/data/tweets.js", "not an archive")
    with pytest.raises(UserError) as err:
        read_archive(path, handle="me")
    assert "tweets.js" in str(err.value) and "\x1b" not in str(err.value)


def test_archive_ids_and_dates_are_checked_too(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_text(ytd("tweets", [{"tweet": archive_tweet("1.2E+18", "hi")}]))
    with pytest.raises(UserError, match="1.2E"):
        read_archive(path, handle="me")
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%a %b %d %H:%M:%S +0000 %Y")
    path.write_text(ytd("tweets", [{"tweet": archive_tweet("5", "hi", when=future)}]))
    with pytest.raises(UserError, match="future"):
        read_archive(path, handle="me")


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deep_nesting_is_one_line_naming_file_and_line(tmp_path, depth):
    deep = '{"a": ' * depth + "1" + "}" * depth
    good = json.dumps({"id": "1", "created_at": "2021-01-01T00:00:00Z", "text": "hi"})
    path = tmp_path / "deep.jsonl"
    path.write_text(good + "\n" + deep + "\n")
    with pytest.raises(UserError, match=r"deep\.jsonl.*line 2"):
        read_jsonl(path, handle="me")
    nested_text = '{"id": "2", "created_at": "2021-01-01T00:00:00Z", "text": ' + \
        "[" * depth + "]" * depth + "}"
    path.write_text(good + "\n" + nested_text + "\n")
    with pytest.raises(UserError, match=r"deep\.jsonl.*line 2"):
        read_jsonl(path, handle="me")
    with pytest.raises(UserError, match=r"deep\.jsonl.*line 2"):
        read_twarc(path, handle="me")
    path.write_text(deep)  # a single document
    with pytest.raises(UserError, match=r"deep\.jsonl.*line 1"):
        read_twarc(path, handle="me")
