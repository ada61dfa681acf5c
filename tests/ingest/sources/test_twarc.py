"""source=twarc: twarc2 timeline pages, the flattened form, and v1.1 statuses, from files."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.ingest.sources.twarc import parse_twarc, read_twarc

ALICE = {"id": "11", "username": "alice", "name": "Alice A."}


BOB = {"id": "22", "username": "bob", "name": "Bob"}


def tweet(id_, text, author="11", refs=(), **extra):
    t = {"id": str(id_), "text": text, "author_id": author, "lang": "en",
         "created_at": f"2021-05-{10 + id_ % 10:02d}T12:00:00.000Z", **extra}
    if refs:
        t["referenced_tweets"] = [{"type": r, "id": "1"} for r in refs]
    return t


def page(tweets, users=(ALICE,), next_token=None):
    meta = {"result_count": len(tweets)}
    if next_token:
        meta["next_token"] = next_token
    return {"data": tweets, "includes": {"users": list(users)}, "meta": meta,
            "__twarc": {"url": "https://api.twitter.com/2/users/11/tweets", "version": "2.14"}}


def write_jsonl(path, objects):
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    return path


def timeline(tmp_path):
    return write_jsonl(tmp_path / "alice.jsonl", [
        page([tweet(1, "hello &amp; welcome"), tweet(2, "RT @bob: hi", refs=["retweeted"]),
              tweet(3, "@bob yes", refs=["replied_to"])], next_token="abc"),
        page([tweet(4, "look at this", refs=["quoted"]), tweet(5, "short", lang="und"),
              tweet(6, "cut…", note_tweet={"text": "the whole long post"})]),
        {"meta": {"result_count": 0}, "__twarc": {}},  # twarc writes the empty last page too
    ])


def test_twarc2_timeline_pages(tmp_path):
    df = read_twarc(str(timeline(tmp_path)))
    assert df["id"].tolist() == ["1", "2", "3", "4", "5", "6"]
    assert df["is_retweet"].tolist() == [False, True, False, False, False, False]
    assert df["is_reply"].sum() == 1 and df["is_quote"].sum() == 1
    assert df["text"].iloc[0] == "hello &amp; welcome" and df["text"].iloc[5] == "the whole long post"
    assert set(df["handle"]) == {"alice"} and set(df["display_name"]) == {"Alice A."}
    assert df["lang"].isna().sum() == 1 and set(df["source"]) == {"twarc"}


def test_flattened_form_and_author_filter(tmp_path):
    path = write_jsonl(tmp_path / "flat.jsonl", [
        {**tweet(1, "mine"), "author": ALICE, "__twarc": {}},
        {**tweet(2, "theirs", author="22"), "author": BOB, "__twarc": {}},
        {**tweet(3, "mine again", refs=["replied_to", "quoted"]), "author": ALICE},
    ])
    df = read_twarc(str(path), handle="Alice")
    assert df["id"].tolist() == ["1", "3"] and df["is_reply"].sum() == df["is_quote"].sum() == 1
    with pytest.raises(UserError, match="2 authors.*@alice, @bob.*user="):
        read_twarc(str(path))
    with pytest.raises(UserError, match="no posts by @carol.*@alice, @bob"):
        read_twarc(str(path), handle="carol")


def test_v1_statuses_and_saved_responses(tmp_path):
    status = {"id": 5, "id_str": "5", "created_at": "Wed Oct 12 17:21:38 +0000 2022",
              "full_text": "RT @x: old school", "retweeted_status": {"id_str": "4"},
              "user": {"screen_name": "carol", "name": "Carol"}, "lang": "en"}
    reply = {**status, "id": 6, "id_str": "6", "full_text": "@x sure", "retweeted_status": None,
             "in_reply_to_status_id_str": "3", "is_quote_status": True}
    (tmp_path / "array.json").write_text(json.dumps([status, reply], indent=2))
    df = read_twarc(str(tmp_path / "array.json"))
    assert df["is_retweet"].tolist() == [True, False] and df["is_reply"].tolist() == [False, True]
    assert df["is_quote"].tolist() == [False, True] and str(df["created_at"].iloc[0]).startswith("2022-10-12 17:21:38")
    (tmp_path / "one.json").write_text(json.dumps(page([tweet(1, "x")]), indent=2))
    assert len(read_twarc(str(tmp_path / "one.json"))) == 1
    # A v2 tweet without created_at (default fields) takes its time from the snowflake id.
    (tmp_path / "bare.json").write_text(json.dumps({"data": [{"id": "1577730467436138524",
                                                             "text": "whoa"}]}))
    df = read_twarc(str(tmp_path / "bare.json"), handle="someone")
    assert str(df["created_at"].iloc[0]).startswith("2022-10-05")


def test_duplicates_across_pages_are_dropped(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [page([tweet(1, "a"), tweet(2, "b")]),
                                                 page([tweet(2, "b"), tweet(3, "c")])])
    assert read_twarc(str(path))["id"].tolist() == ["1", "2", "3"]


def test_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_twarc(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(page([tweet(1, "a")])) + "\n{oops\n")
    with pytest.raises(UserError, match="line 2 is not valid JSON"):
        read_twarc(str(bad))
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"hello": "world"}])
    with pytest.raises(UserError, match="neither a twarc2 page"):
        read_twarc(str(odd))
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"meta": {"result_count": 0}}])
    with pytest.raises(UserError, match="no tweets"):
        read_twarc(str(empty))
    anonymous = write_jsonl(tmp_path / "anon.jsonl", [{"data": [{"id": "1577730467436138524",
                                                                "text": "a"}]}])
    with pytest.raises(UserError, match="pass user="):
        read_twarc(str(anonymous))
    assert parse_twarc(anonymous)[0]["handle"] is None
    unknown = write_jsonl(tmp_path / "unknown.jsonl", [{"data": [tweet(1, "a")]}])  # no includes
    with pytest.raises(UserError, match="no tweets.*1 tweet.*author is not in the file"):
        read_twarc(str(unknown), handle="alice")


def test_cli_import(tmp_path):
    path = timeline(tmp_path)
    res = run_cli("fetch.py", "user=alice", "source=twarc", f"source.path={path}",
                  f"data_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/run")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "@alice: 6 posts read (twarc)" in res.stdout
    assert posts.read_meta(tmp_path / "data", "alice")["source"] == "twarc"


def test_a_tweet_whose_author_is_not_in_the_file_is_not_the_users(tmp_path, capsys):
    # Tweet 2's author (id 33) is missing from includes.users: someone's, but not alice's.
    path = write_jsonl(tmp_path / "gap.jsonl", [
        page([tweet(1, "mine"), tweet(2, "whose?", author="33")]),
        page([tweet(3, "also mine"), tweet(4, "bob's", author="22")], users=(ALICE, BOB)),
        page([tweet(5, "bob again, his user object is on another page", author="22")]),
    ])
    df = read_twarc(str(path), handle="alice")
    assert df["id"].tolist() == ["1", "3"]
    assert "left out 1 tweet" in capsys.readouterr().err
    assert read_twarc(str(path), handle="bob")["id"].tolist() == ["4", "5"]
    with pytest.raises(UserError, match="2 authors"):
        read_twarc(str(path))


def test_twarc_ids_must_be_x_ids(tmp_path):
    path = write_jsonl(tmp_path / "ids.jsonl", [page([tweet(1, "a"), {**tweet(2, "b"), "id": "2.0E+18"}])])
    with pytest.raises(UserError, match=r"ids\.jsonl.*line 1.*2\.0E\+18"):
        read_twarc(str(path))
