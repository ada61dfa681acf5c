"""source=bluesky: the author feed of a fake public AppView on a real loopback HTTP server."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fakes.servers import kill_mid_fetch_then_resume, same_posts, source_node

from huggingtweets.errors import UserError
from huggingtweets.ingest import clean, posts, sources
from huggingtweets.ingest.sources import bluesky

HANDLE = "alice.bsky.social"


def cfg(api, **overrides):
    node = source_node("bluesky")
    node.merge_with({"base_url": api.url, "page_size": 10, "backoff": 0.01, "progress": False,
                     **overrides})
    return node


def fetch(api, data_dir, handle=HANDLE, refresh="merge", **overrides):
    return sources.fetch_user(cfg(api, **overrides), handle, data_dir, refresh=refresh)


def test_pages_through_the_feed_with_reposts_replies_quotes_and_links(api, tmp_path):
    api.bsky.add_user(HANDLE, 34)
    got = fetch(api, tmp_path)
    df = got.merged
    assert got.source == "bluesky" and len(df) == 34 and df["id"].is_unique
    assert [r.get("cursor") for r in api.page_requests()] == [None, "10", "20", "30"]
    did = api.bsky.profiles[HANDLE]["did"]
    assert {r["actor"] for r in api.page_requests()} == {did}  # asks by DID once looked up
    assert df["is_retweet"].sum() == 4 and df["is_reply"].sum() == 3 and df["is_quote"].sum() == 3
    reposts = df[df["is_retweet"]]
    assert reposts["text"].str.startswith("RT @other.bsky.social: ").all()
    assert df["text"].str.contains("see 8 https://example.com/a/very/long/path ok", regex=False).any()
    assert df["text"].str.contains("&amp; &lt;more&gt;", regex=False).any()  # X's convention
    assert set(df["handle"]) == {HANDLE} and set(df["display_name"]) == {"alice 🦋"}
    assert posts.tweets_path(tmp_path, HANDLE).name == "bsky-alice.bsky.social.parquet"
    # Cleaning treats it like any timeline: retweets dropped, entities undone, links removed.
    table = clean.clean_posts(df, {"preset": "default", "min_chars": 0}).table
    assert table["Retweets"] == 4 and table["Tweets kept"] == 30
    kept = clean.clean_posts(df, {"preset": "default", "min_chars": 0}).posts["text"]
    assert kept.str.contains("& <more>", regex=False).any() and not kept.str.contains("https").any()


def test_did_handles_work_too(api, tmp_path):
    did = api.bsky.add_user(HANDLE, 5)["did"]
    got = fetch(api, tmp_path, handle=did)
    assert len(got.merged) == 5 and set(got.merged["handle"]) == {did}
    assert posts.tweets_path(tmp_path, did).name == f"{did.replace(':', '-')}.parquet"


def test_second_fetch_stops_at_cached_posts(api, tmp_path):
    api.bsky.add_user(HANDLE, 45)
    fetch(api, tmp_path)
    api.bsky.add_posts(HANDLE, 3, seed=1)
    before = len(api.page_requests())
    got = fetch(api, tmp_path)
    assert len(api.page_requests()) - before == 1  # the first page already reached known posts
    assert len(got.merged) == 48 and len(got.new) == 10
    api.bsky.feeds[api.bsky.profiles[HANDLE]["did"]].pop()  # the oldest post deleted upstream
    got = fetch(api, tmp_path, refresh="full")
    assert len(got.merged) == 47


def test_rate_limit_then_success_with_ratelimit_reset(api, tmp_path):
    api.bsky.add_user(HANDLE, 12)
    api.fail(429, '{"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}',
             where="getAuthorFeed", headers={"RateLimit-Reset": str(int(time.time()) + 1),
                                             "RateLimit-Remaining": "0"})
    started = time.monotonic()
    assert len(fetch(api, tmp_path).merged) == 12
    assert time.monotonic() - started >= 0.9


def test_server_errors_and_malformed_json_are_retried(api, tmp_path):
    api.bsky.add_user(HANDLE, 12)
    api.fail(500, where="getAuthorFeed")
    api.fail(502, "bad gateway", where="getAuthorFeed")
    api.fail(200, "{not json", where="getAuthorFeed")
    api.fail(200, '{"nofeed": true}', where="getAuthorFeed")
    assert len(fetch(api, tmp_path).merged) == 12


def test_malformed_json_for_good_is_a_clear_error(api, tmp_path):
    api.bsky.add_user(HANDLE, 12)
    api.fail(200, "<html>", where="getAuthorFeed", times=10)
    with pytest.raises(UserError, match="not valid JSON.*3 attempts"):
        fetch(api, tmp_path, max_retries=2)


def test_empty_feed(api, tmp_path):
    api.bsky.add_user("quiet.bsky.social", 0)
    assert len(fetch(api, tmp_path, handle="quiet.bsky.social").merged) == 0


@pytest.mark.parametrize("error,needle", [
    (None, "Bluesky has no account @ghost.bsky.social"),
    ("AccountTakedown", "@ghost.bsky.social is suspended on Bluesky"),
    ("AccountDeactivated", "deactivated"),
])
def test_missing_suspended_deactivated_accounts(api, tmp_path, error, needle):
    if error:
        api.bsky.add_user("ghost.bsky.social", 3, error=error)
    with pytest.raises(UserError, match=needle):
        fetch(api, tmp_path, handle="ghost.bsky.social")


def test_only_bluesky_handles(api, tmp_path):
    with pytest.raises(UserError, match="not a Bluesky handle"):
        fetch(api, tmp_path, handle="alice")


def test_odd_client_times_fall_back_to_the_index_time():
    item = {"post": {"uri": "at://d/app.bsky.feed.post/1", "indexedAt": "2025-01-02T03:04:05.000Z",
                     "author": {"handle": "a.bsky.social"},
                     "record": {"text": "hi", "createdAt": "yesterday-ish"}}}
    backdated = {"post": {**item["post"], "uri": "at://d/app.bsky.feed.post/2",
                          "record": {"text": "old", "createdAt": "2009-05-01T10:00:00Z"}}}
    records = bluesky.parse_page({"feed": [item, backdated]}, HANDLE).records
    assert [r["created_at"] for r in records] == ["2025-01-02T03:04:05.000Z", "2009-05-01T10:00:00Z"]
    assert not bluesky.reached(records, {"ids": [], "time": "not a time"})


def test_link_facets_count_utf8_bytes():
    text = "café → example.com/lo... end"
    start = len("café → ".encode())
    facets = [{"index": {"byteStart": start, "byteEnd": start + len("example.com/lo...")},
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/long"}]},
              {"index": {"byteStart": 3, "byteEnd": 4},  # inside "é": not a character boundary
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x.y"}]}]
    assert bluesky.expand_links(text, facets) == "café → https://example.com/long end"


def test_kill_mid_fetch_then_resume(api, tmp_path):
    api.bsky.add_user(HANDLE, 43)
    base = fetch(api, tmp_path / "uninterrupted").merged
    res, resumed = kill_mid_fetch_then_resume(
        api, tmp_path, HANDLE, ["source=bluesky", f"source.base_url={api.url}", "source.page_size=10"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert [r.get("cursor") for r in resumed] == ["20", "30", "40"]
    assert same_posts(posts.read_posts(tmp_path / "data", HANDLE), base)


def future_post(api, handle=HANDLE, when="2150-01-01T00:00:00.000Z"):
    """Date the newest post of the feed `when` (its client's clock says so)."""
    item = api.bsky.feeds[api.bsky.profiles[handle]["did"]][0]
    item["post"]["record"]["createdAt"] = item["post"]["indexedAt"] = when
    return item["post"]["uri"]


def test_a_future_post_is_left_out_counted_and_never_stops_later_fetches(api, tmp_path, capsys):
    api.bsky.add_user(HANDLE, 5)
    uri = future_post(api)
    got = fetch(api, tmp_path)
    assert len(got.merged) == 4 and uri not in set(got.merged["id"])
    assert "1 dated in the future" in capsys.readouterr().err
    api.bsky.add_posts(HANDLE, 25, seed=1)
    got = fetch(api, tmp_path)
    assert len(got.merged) == 29  # all 25 new posts, not the first page's 10


def test_a_cached_future_post_does_not_steer_the_incremental_fetch(api, tmp_path):
    # A cache written before future posts were refused still holds one.
    api.bsky.add_user(HANDLE, 5)
    fetch(api, tmp_path)
    cached = posts.read_posts(tmp_path, HANDLE)
    odd = cached.iloc[[0]].assign(id="at://did:plc:x/app.bsky.feed.post/future",
                                  created_at=pd.Timestamp("2150-01-01", tz="UTC"))
    posts.write_posts(tmp_path, HANDLE, odd, source="bluesky")
    api.bsky.add_posts(HANDLE, 25, seed=1)
    got = fetch(api, tmp_path)
    assert len(got.merged) == 31  # all 25 new posts, not the first page's 10
