"""source=x: tweepy's Client against a fake X API v2 on a real loopback HTTP server."""

from __future__ import annotations

import logging
import time

import pytest
from conftest import run_cli
from fakes.servers import TOKEN, kill_mid_fetch_then_resume, same_posts, source_node

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts, sources


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)


def cfg(api, **overrides):
    node = source_node("x")
    node.merge_with({"base_url": api.url, "page_size": 10, "backoff": 0.01, "progress": False,
                     **overrides})
    return node


def fetch(api, data_dir, handle="alice", refresh="merge", **overrides):
    return sources.fetch_user(cfg(api, **overrides), handle, data_dir, refresh=refresh)


def test_pages_through_the_timeline_with_flags_and_long_text(api, tmp_path):
    api.x.add_user("alice", 35)
    got = fetch(api, tmp_path)
    df = got.merged
    assert got.source == "x" and len(df) == 35 and df["id"].is_unique
    assert len(api.page_requests()) == 4  # 10 + 10 + 10 + 5
    assert [r.get("pagination_token") for r in api.page_requests()] == [None, "tok10", "tok20", "tok30"]
    first = api.page_requests()[0]
    assert first["max_results"] == "10" and "since_id" not in first
    assert {"created_at", "lang", "referenced_tweets", "entities", "note_tweet"} <= set(
        first["tweet.fields"].split(","))
    assert df["is_retweet"].sum() == 4 and df["is_reply"].sum() == 3 and df["is_quote"].sum() == 3
    assert df["text"].str.contains("(the long version of this post)", regex=False).sum() == 3
    assert df["text"].str.contains("&amp;", regex=False).any()  # kept as the API escapes it
    assert set(df["handle"]) == {"alice"} and set(df["display_name"]) == {"alice (X)"}
    assert df["created_at"].is_monotonic_increasing
    meta = posts.read_meta(tmp_path, "alice")
    assert meta["source"] == "x" and meta["posts"] == 35
    assert [p.name for p in (tmp_path / "partial").iterdir()] == [".alice.lock"]  # no journal left


def test_second_fetch_asks_only_for_newer_posts_and_full_refetches(api, tmp_path):
    api.x.add_user("alice", 12)
    fetch(api, tmp_path)
    newest = max(api.x.tweets["1000"], key=lambda t: int(t["id"]))["id"]
    api.x.add_tweets("alice", 4, seed=1)
    before = len(api.page_requests())
    got = fetch(api, tmp_path)
    again = api.page_requests()[before:]
    assert [r.get("since_id") for r in again] == [newest]
    assert len(got.new) == 4 and len(got.merged) == 16
    # refresh=full: a post deleted upstream leaves the cache too.
    del api.x.tweets["1000"][-1]
    got = fetch(api, tmp_path, refresh="full")
    assert "since_id" not in api.page_requests()[-1] and len(got.merged) == 15


def test_rate_limit_waits_for_the_reset_header(api, tmp_path, capsys):
    api.x.add_user("alice", 15)
    reset = int(time.time()) + 1
    api.fail(429, '{"title": "Too Many Requests"}', where="/tweets",
             headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"})
    started = time.monotonic()
    got = fetch(api, tmp_path, progress=True)
    assert len(got.merged) == 15
    assert time.monotonic() - started >= 0.9
    assert "X rate limit" in capsys.readouterr().err  # the countdown is announced


def test_server_error_then_success_and_malformed_json(api, tmp_path):
    api.x.add_user("alice", 25)
    api.fail(503, "<html>over capacity</html>", where="/tweets")
    api.fail(200, '{"data": [ {"id": ', where="/tweets")
    got = fetch(api, tmp_path)
    assert len(got.merged) == 25
    assert len(api.page_requests()) == 3 + 2  # two failed attempts, then the three pages


def test_persistent_failure_stops_after_the_retry_bound(api, tmp_path):
    api.x.add_user("alice", 25)
    api.fail(500, where="/tweets", times=100, after=1)  # the first page arrives, then 500s
    with pytest.raises(UserError, match="keeps failing.*4 attempts.*1 page fetched so far is "
                                        "saved: run the same command again to resume"):
        fetch(api, tmp_path, max_retries=3)
    assert len(api.page_requests()) == 1 + 4
    api.faults.clear()
    assert len(fetch(api, tmp_path).merged) == 25


def test_timeout_is_retried(api, tmp_path):
    api.x.add_user("alice", 5)
    api.fail(200, "{}", where="/tweets", sleep=1.5)
    got = fetch(api, tmp_path, timeout=0.5)
    assert len(got.merged) == 5


def test_empty_timeline(api, tmp_path):
    api.x.add_user("quiet", 0)
    got = fetch(api, tmp_path, handle="quiet")
    assert len(got.merged) == 0 and posts.tweets_path(tmp_path, "quiet").exists()


@pytest.mark.parametrize("setup,needle", [
    (lambda x: None, "X has no account @ghost"),
    (lambda x: x.add_user("ghost", 3, suspended=True), "@ghost is suspended on X"),
    (lambda x: x.add_user("ghost", 3, protected=True), "@ghost's posts are protected"),
])
def test_missing_suspended_protected_accounts(api, tmp_path, setup, needle):
    setup(api.x)
    with pytest.raises(UserError, match=needle):
        fetch(api, tmp_path, handle="ghost")
    assert not posts.tweets_path(tmp_path, "ghost").exists()


def test_bad_and_missing_token(api, tmp_path, monkeypatch):
    api.x.add_user("alice", 3)
    monkeypatch.setenv("X_BEARER_TOKEN", "wrong")
    with pytest.raises(UserError, match="X rejected the bearer token in X_BEARER_TOKEN") as err:
        fetch(api, tmp_path)
    assert "wrong" not in str(err.value)
    monkeypatch.delenv("X_BEARER_TOKEN")
    with pytest.raises(UserError, match="needs an X API bearer token in X_BEARER_TOKEN"):
        fetch(api, tmp_path)


def test_forbidden_access_level(api, tmp_path):
    api.x.add_user("alice", 3)
    api.fail(403, '{"title": "Forbidden", "detail": "client-not-enrolled", "type": "x"}',
             where="/tweets")
    with pytest.raises(UserError, match="HTTP 403.*access level"):
        fetch(api, tmp_path)


def test_only_x_handles(api, tmp_path):
    with pytest.raises(UserError, match="not an X handle"):
        fetch(api, tmp_path, handle="alice.bsky.social")


def test_max_posts_caps_the_fetch(api, tmp_path):
    api.x.add_user("alice", 40)
    got = fetch(api, tmp_path, max_posts=20)
    assert len(got.merged) == 20 and len(api.page_requests()) == 2
    assert got.merged["id"].tolist() == sorted(got.merged["id"])  # the newest 20


def test_debug_logging_never_shows_the_token(api, tmp_path, caplog):
    api.x.add_user("alice", 3)
    with caplog.at_level(logging.DEBUG):
        fetch(api, tmp_path)
    assert "Making API request" in caplog.text and "Bearer ***" in caplog.text
    assert TOKEN not in caplog.text


def test_kill_mid_fetch_then_resume(api, tmp_path):
    api.x.add_user("alice", 47)
    base = fetch(api, tmp_path / "uninterrupted").merged
    res, resumed = kill_mid_fetch_then_resume(
        api, tmp_path, "alice", ["source=x", f"source.base_url={api.url}", "source.page_size=10"],
        env={"X_BEARER_TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr[-2000:]
    assert [r.get("pagination_token") for r in resumed] == ["tok20", "tok30", "tok40"]
    assert same_posts(posts.read_posts(tmp_path / "data", "alice"), base)


def test_cli_fetch_writes_no_token_anywhere(api, tmp_path):
    """fetch.py with DEBUG logging on: the token reaches the server, and no file written."""
    api.x.add_user("alice", 12)
    res = run_cli("fetch.py", "user=alice", "source=x", f"source.base_url={api.url}",
                  f"data_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/run", "hydra.verbose=true",
                  env={"X_BEARER_TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "@alice: 12 posts fetched (x)" in res.stdout
    assert any(h.get("Authorization") == f"Bearer {TOKEN}" for _, _, h in api.log)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 2  # the parquet and its sidecar (fetch.py logs to stdout, no fetch.log)
    for p in written:
        assert TOKEN.encode() not in p.read_bytes(), p
    assert TOKEN not in res.stdout + res.stderr
