"""The post cache's merge policy and identities: the newer import wins per field, a field an import
does not carry keeps its known value, every row says where and when it came from, a re-import says
what changed; one cache per person whatever the case of the handle; locks never follow links."""

import csv
import json
import os

import pandas as pd
import pytest
from conftest import SHARED, run_cli

from huggingtweets.errors import UserError
from huggingtweets.ingest import handles, posts
from huggingtweets.ingest.sources.files import read_csv

ARCHIVE = {"id": "tweet_id", "created_at": "timestamp", "is_retweet": "retweeted_status_id",
           "is_reply": "in_reply_to_status_id"}


def frame(rows, handle="al"):
    return pd.DataFrame([{"handle": handle, **r} for r in rows])


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


# --- the merge policy --------------------------------------------------------------------------

def test_the_newer_import_wins_even_with_an_older_created_at(tmp_path):
    posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-05", "text": "typo'd"},
        {"id": "2", "created_at": "2022-01-06", "text": "b"}]), source="csv")
    # The correction moves the post's time back: it still replaces the cached row.
    merged = posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "fixed"}]), source="csv")
    row = merged.set_index("id").loc["1"]
    assert row["text"] == "fixed" and row["created_at"] == pd.Timestamp("2022-01-01", tz="UTC")
    assert posts.read_posts(tmp_path, "al").set_index("id").loc["1", "text"] == "fixed"


def test_a_field_the_new_import_does_not_carry_keeps_its_value(tmp_path):
    archive = write_csv(tmp_path / "archive.csv", [
        {"tweet_id": "10", "timestamp": "2017-01-01 10:00:00 +0000", "text": "@x sure",
         "in_reply_to_status_id": "9", "retweeted_status_id": ""},
        {"tweet_id": "11", "timestamp": "2017-01-02 10:00:00 +0000", "text": "hello",
         "in_reply_to_status_id": "", "retweeted_status_id": ""}])
    rtweet = write_csv(tmp_path / "rtweet.csv", [  # no reply column at all
        {"id": "10", "created_at": "2017-01-01 10:00:00", "text": "@x sure!"},
        {"id": "11", "created_at": "2017-01-02 10:00:00", "text": "hello"},
        {"id": "12", "created_at": "2017-01-03 10:00:00", "text": "new one"}])
    posts.write_posts(tmp_path, "al", read_csv(archive, "al", columns=ARCHIVE), source="csv")
    merged = posts.write_posts(tmp_path, "al", read_csv(rtweet, "al"), source="csv")
    flags = merged.set_index("id")["is_reply"]
    assert flags.to_dict() == {"10": True, "11": False, "12": False}
    assert merged.set_index("id").loc["10", "text"] == "@x sure!"  # text it carries: newer wins
    assert merged["is_reply"].dtype == bool  # the cache stays plain booleans for its readers


def test_a_missing_value_keeps_the_known_one(tmp_path):
    posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a", "lang": "en", "display_name": "Al"}]),
        source="x")
    merged = posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a", "lang": None, "display_name": None}]),
        source="x")
    assert merged.loc[0, "lang"] == "en" and merged.loc[0, "display_name"] == "Al"


def test_rows_record_their_source_and_import_time(tmp_path):
    first = posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a", "source": "archive"},
        {"id": "2", "created_at": "2022-01-02", "text": "b", "source": "archive"}]),
        source="archive")
    assert set(first["source"]) == {"archive"} and first["imported_at"].notna().all()
    merged = posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a"},
        {"id": "2", "created_at": "2022-01-02", "text": "b, edited"},
        {"id": "3", "created_at": "2022-01-03", "text": "c"}]), source="jsonl")
    rows = posts.read_posts(tmp_path, "al").set_index("id")
    # Unchanged rows still say which import gave them their values.
    assert rows["source"].to_dict() == {"1": "archive", "2": "jsonl", "3": "jsonl"}
    assert rows.loc["1", "imported_at"] == first.set_index("id").loc["1", "imported_at"]
    assert rows.loc["2", "imported_at"] >= rows.loc["1", "imported_at"]
    assert merged["imported_at"].dtype == posts.COLUMNS["imported_at"]


def test_a_reimport_says_how_many_posts_changed(tmp_path):
    posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a"},
        {"id": "2", "created_at": "2022-01-02", "text": "b"}]), source="csv")
    posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a"},
        {"id": "2", "created_at": "2022-01-02", "text": "b2"},
        {"id": "3", "created_at": "2022-01-03", "text": "c"}]), source="csv")
    last = posts.read_meta(tmp_path, "al")["last_import"]
    assert (last["new"], last["changed"], last["unchanged"]) == (1, 1, 1)
    assert posts.import_summary(tmp_path, "al") == "1 new, 1 changed, 1 unchanged"


def test_fetch_prints_the_changed_count(tmp_path):
    first = write_csv(tmp_path / "a.csv", [
        {"id": "1", "created_at": "2022-01-01T00:00:00Z", "text": "a"},
        {"id": "2", "created_at": "2022-01-02T00:00:00Z", "text": "b"}])
    second = write_csv(tmp_path / "b.csv", [
        {"id": "1", "created_at": "2022-01-01T00:00:00Z", "text": "a, fixed"},
        {"id": "2", "created_at": "2022-01-02T00:00:00Z", "text": "b"}])
    args = ["user=al", "source=csv", f"data_dir={tmp_path}/data"]
    assert run_cli("fetch.py", *args, f"source.path={first}").returncode == 0
    res = run_cli("fetch.py", *args, f"source.path={second}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "0 new, 1 changed, 1 unchanged" in res.stdout, res.stdout


def test_old_caches_without_import_columns_still_read_and_merge(tmp_path):
    (tmp_path / "tweets").mkdir()
    old = posts.to_frame(frame([{"id": "1", "created_at": "2022-01-01", "text": "a",
                                 "is_reply": True, "source": "archive"}]))
    old.drop(columns="imported_at").to_parquet(tmp_path / "tweets" / "al.parquet", index=False)
    assert posts.read_posts(tmp_path, "al")["imported_at"].isna().all()
    merged = posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a"},
        {"id": "2", "created_at": "2022-01-02", "text": "b"}]), source="csv")
    assert merged.set_index("id")["is_reply"].to_dict() == {"1": True, "2": False}
    assert merged.set_index("id")["imported_at"].notna().to_dict() == {"1": False, "2": True}


def test_full_refresh_drops_posts_but_keeps_fields_it_does_not_carry(tmp_path):
    posts.write_posts(tmp_path, "al", frame([
        {"id": "1", "created_at": "2022-01-01", "text": "a", "is_reply": True},
        {"id": "2", "created_at": "2022-01-02", "text": "b"}]), source="archive")
    new = posts.to_frame(frame([{"id": "1", "created_at": "2022-01-01", "text": "a"}]),
                         missing=True).drop(columns="is_reply")
    merged = posts.write_posts(tmp_path, "al", new, source="csv", refresh="full",
                               confirm_shrink=True)
    assert merged["id"].tolist() == ["1"] and merged["is_reply"].tolist() == [True]
    assert posts.read_meta(tmp_path, "al")["last_import"]["removed"] == 1


# --- one identity per person -------------------------------------------------------------------

def legacy_cache(data_dir, name, rows):
    """A cache as an older version wrote it: a mixed-case file name, no import columns."""
    tweets = data_dir / "tweets"
    tweets.mkdir(parents=True, exist_ok=True)
    df = posts.to_frame(frame(rows, handle=name)).drop(columns="imported_at")
    df.to_parquet(tweets / f"{name}.parquet", index=False)
    (tweets / f"{name}.json").write_text(json.dumps({"handle": name, "source": "archive"}))


def test_handles_are_one_identity_whatever_their_case():
    assert handles.parse_users("Demo_Ada") == ["demo_ada"]
    assert posts.cache_name("Demo_Ada") == posts.cache_name("demo_ada") == "demo_ada"
    assert handles.parse_users("@Gargron@Mastodon.Social") == ["gargron@mastodon.social"]
    assert posts.cache_name("Gargron@x.social") == posts.cache_name("gargron@x.social")


@pytest.mark.parametrize("mix,a,b", [
    ("SmithJD-smithjd", "SmithJD", "smithjd"),
    ("Gargron@mastodon.social+gargron@mastodon.social", "Gargron@mastodon.social",
     "gargron@mastodon.social"),
    ("Alice.bsky.social+alice.bsky.social", "Alice.bsky.social", "alice.bsky.social"),
])
def test_a_mix_naming_one_person_twice_is_refused(mix, a, b):
    with pytest.raises(UserError) as err:
        handles.parse_users(mix)
    assert f"'{a}'" in str(err.value) and f"'{b}'" in str(err.value)


def test_a_cache_written_under_another_case_is_found_and_adopted(tmp_path):
    legacy_cache(tmp_path, "Demo_Ada", [{"id": "1", "created_at": "2022-01-01", "text": "a"}])
    assert posts.tweets_path(tmp_path, "demo_ada").name == "Demo_Ada.parquet"
    assert posts.read_posts(tmp_path, "demo_ada")["text"].tolist() == ["a"]
    assert posts.read_meta(tmp_path, "DEMO_ADA")["source"] == "archive"
    merged = posts.write_posts(tmp_path, "demo_ada", frame([
        {"id": "2", "created_at": "2022-01-02", "text": "b"}], handle="demo_ada"), source="csv")
    assert merged["id"].tolist() == ["1", "2"]
    names = sorted(p.name for p in (tmp_path / "tweets").iterdir())
    assert names == ["demo_ada.json", "demo_ada.parquet"]


def test_two_caches_of_one_person_become_one(tmp_path):
    legacy_cache(tmp_path, "SmithJD", [{"id": "1", "created_at": "2022-01-01", "text": "old"},
                                       {"id": "2", "created_at": "2022-01-02", "text": "b"}])
    os.utime(tmp_path / "tweets" / "SmithJD.parquet", (1e9, 1e9))  # the older of the two
    legacy_cache(tmp_path, "smithjd", [{"id": "1", "created_at": "2022-01-01", "text": "new"}])
    merged = posts.write_posts(tmp_path, "smithjd", frame([
        {"id": "3", "created_at": "2022-01-03", "text": "c"}], handle="smithjd"), source="csv")
    assert merged.set_index("id")["text"].to_dict() == {"1": "new", "2": "b", "3": "c"}
    assert sorted(p.name for p in (tmp_path / "tweets").iterdir()) == [
        "smithjd.json", "smithjd.parquet"]


DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


def test_a_did_and_its_handle_in_one_mix_are_refused_when_the_cache_knows(tmp_path):
    assert posts.distinct_accounts(tmp_path, handles.parse_users(f"{DID}+alice.bsky.social")) == [
        DID, "alice.bsky.social"]  # nothing known yet: both stand
    posts.write_posts(tmp_path, "alice.bsky.social", frame([
        {"id": f"at://{DID}/app.bsky.feed.post/3k{i}", "created_at": f"2024-01-0{i}",
         "text": f"post {i}", "source": "bluesky"} for i in (1, 2)], handle="alice.bsky.social"),
        source="bluesky")
    assert posts.read_meta(tmp_path, "alice.bsky.social")["did"] == DID
    with pytest.raises(UserError, match=f"'{DID}'.*'alice.bsky.social'|"
                                        f"'alice.bsky.social'.*'{DID}'"):
        posts.distinct_accounts(tmp_path, handles.parse_users(f"{DID}+alice.bsky.social"))
    with pytest.raises(UserError, match="one Bluesky account"):
        posts.distinct_accounts(tmp_path, handles.parse_users(f"alice.bsky.social+{DID}"))


# --- locks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("link,message", [(os.symlink, "symbolic link"),
                                          (os.link, "not a plain file of its own")])
def test_a_linked_lock_is_refused_and_its_target_untouched(tmp_path, link, message):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "data" / "partial").mkdir(parents=True)
    link(target, posts.lock_path(tmp_path / "data", "al"))
    df = frame([{"id": "1", "created_at": "2022-01-01", "text": "a"}])
    with pytest.raises(UserError, match=message):
        posts.write_posts(tmp_path / "data", "al", df, source="test")
    assert target.read_text() == "keep me"
    assert not posts.tweets_path(tmp_path / "data", "al").exists()


# --- real data -----------------------------------------------------------------------------------

TIDY = SHARED / "timelines" / "tidy-text-mining"


@pytest.mark.realdata
@pytest.mark.skipif(not TIDY.exists(), reason="needs ../shared/data")
def test_real_rtweet_export_after_the_archive_keeps_reply_flags(tmp_path):
    archive = read_csv(str(TIDY / "tweets_dave.csv"), "drob", columns=ARCHIVE)
    first = posts.write_posts(tmp_path, "drob", archive, source="csv")
    replies = set(first.loc[first["is_reply"], "id"])
    assert len(replies) > 1000
    rtweet = read_csv(str(TIDY / "drob_tweets.csv"), "drob")
    both = posts.write_posts(tmp_path, "drob", rtweet, source="csv")
    assert replies <= set(both.loc[both["is_reply"], "id"])
    assert len(both) == len(set(archive["id"]) | set(rtweet["id"]))
