"""ingest/sources/fetching.py, the fetch engine: journal + resume at every point, rate-limit
headers (http.py), retries and concurrent fetches of one user."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pandas as pd
import pytest
from conftest import run_cli
from fakes.servers import same_posts, serve, source_node

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts, sources
from huggingtweets.ingest.sources import fetching, http

HANDLE = "alice.bsky.social"


def cfg(api, name="bluesky", **overrides):
    node = source_node(name)
    node.merge_with({"base_url": api.url, "page_size": 10, "backoff": 0.01, "progress": False,
                     **overrides})
    return node


def fetch(api, data_dir, handle=HANDLE, refresh="merge", **overrides):
    return sources.fetch_user(cfg(api, **overrides), handle, data_dir, refresh=refresh)


# --- rate-limit headers -----------------------------------------------------------------------


def test_reset_time_reads_every_platforms_header():
    now = 1_700_000_000.0
    assert http.reset_time({"Retry-After": "30"}, now) == now + 30
    date = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert http.reset_time({"Retry-After": date}, now) == pytest.approx(now + 90)
    assert http.reset_time({"x-rate-limit-reset": str(int(now) + 900)}, now) == now + 900
    assert http.reset_time({"RateLimit-Reset": str(int(now) + 60)}, now) == now + 60
    assert http.reset_time({"RateLimit-Reset": "60"}, now) == now + 60  # IETF draft: delta
    iso = datetime.fromtimestamp(now + 300, UTC).isoformat().replace("+00:00", "Z")
    assert http.reset_time({"X-RateLimit-Reset": iso}, now) == pytest.approx(now + 300)
    # The server's clock runs 100 s ahead: its absolute reset is moved onto ours.
    server_date = format_datetime(datetime.fromtimestamp(now + 100, UTC), usegmt=True)
    headers = {"Date": server_date, "x-rate-limit-reset": str(int(now) + 400)}
    assert http.reset_time(headers, now) == pytest.approx(now + 300)
    assert http.reset_time({}, now) is None
    assert http.reset_time({"Retry-After": "soon"}, now) is None


def test_rate_limit_without_headers_waits_the_fallback(api, tmp_path, monkeypatch):
    api.bsky.add_user(HANDLE, 3)
    api.fail(429, "{}", where="getAuthorFeed")
    waits = []
    monkeypatch.setattr(fetching.Progress, "wait", lambda self, s, why: waits.append(s))
    assert len(fetch(api, tmp_path).merged) == 3
    assert waits == [pytest.approx(fetching.RATE_LIMIT_FALLBACK_S, abs=1.5)]


def test_a_visible_countdown_while_waiting(api, tmp_path, capsys):
    api.bsky.add_user(HANDLE, 3)
    api.fail(429, "{}", where="getProfile", headers={"Retry-After": "1"})  # the lookup, too
    api.fail(429, "{}", where="getAuthorFeed", headers={"Retry-After": "1"})
    api.fail(503, "{}", where="getAuthorFeed")
    fetch(api, tmp_path, progress=True)
    err = capsys.readouterr().err
    assert err.count("Bluesky rate limit (resets") == 2 and "waiting 1s" in err
    assert "HTTP 503" in err and "retry 1/5" in err
    assert "2 rate-limit waits" in err  # the bar's final line counts them


def test_a_bound_must_be_positive(api):
    with pytest.raises(UserError, match=r"source.max_wait=0.0: use a positive number"):
        sources.build(cfg(api, max_wait=0), HANDLE)


# --- resuming: a crash at every point ends with exactly the uninterrupted result -------------


class Crash(BaseException):
    """Stands in for SIGKILL inside the process: nothing catches it, no cleanup code runs."""

def crash_on_call(monkeypatch, owner, name, n):
    """Make `owner.name` raise Crash on its n-th call (1-based)."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise Crash(f"{name} #{n}")
        return original(*args, **kw)

    monkeypatch.setattr(owner, name, wrapper)


@pytest.mark.parametrize("where,n", [
    ("begin", 1),  # the journal's state file
    ("add", 1), ("add", 2), ("add", 4),  # before page 1, 2, 4 is journaled (4: the last of
                                         # an incremental fetch, the 4th of 5 of a first one)
    ("to_parquet", 1),  # while writing the cache
    ("discard", 1),  # the cache written, the journal not yet removed
])
@pytest.mark.parametrize("incremental", [False, True], ids=["first", "incremental"])
def test_crash_anywhere_then_resume_gives_the_uninterrupted_result(
        api, tmp_path, monkeypatch, where, n, incremental):
    api.bsky.add_user(HANDLE, 45)
    if incremental:
        fetch(api, tmp_path / "run")
        fetch(api, tmp_path / "base")
        api.bsky.add_posts(HANDLE, 35, seed=2)
    expected = fetch(api, tmp_path / "base").merged
    before = posts.read_posts(tmp_path / "run", HANDLE) if incremental else None

    owner = {"begin": fetching.Journal, "add": fetching.Journal, "discard": fetching.Journal,
             "to_parquet": pd.DataFrame}[where]
    with monkeypatch.context() as m:
        crash_on_call(m, owner, where, n)
        with pytest.raises(Crash):
            fetch(api, tmp_path / "run")
    if where != "discard":  # the cache is the old one (or none), never half-written
        cached = posts.tweets_path(tmp_path / "run", HANDLE)
        assert (posts.read_posts(tmp_path / "run", HANDLE).equals(before) if incremental
                else not cached.exists())
    got = fetch(api, tmp_path / "run")
    assert same_posts(got.merged, expected)
    assert got.merged["id"].is_unique
    assert not posts.partial_dir(tmp_path / "run", HANDLE).exists()
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_resume_replays_pages_instead_of_fetching_them_again(api, tmp_path, monkeypatch):
    api.bsky.add_user(HANDLE, 42)
    with monkeypatch.context() as m:
        crash_on_call(m, fetching.Journal, "add", 4)
        with pytest.raises(Crash):
            fetch(api, tmp_path)
    before = len(api.page_requests())
    got = fetch(api, tmp_path)
    assert got.resumed and [r["cursor"] for r in api.page_requests()[before:]] == ["30", "40"]
    assert len(got.merged) == 42


def test_a_journal_from_another_server_is_dropped(api, tmp_path, monkeypatch):
    api.bsky.add_user(HANDLE, 25)
    with monkeypatch.context() as m:
        crash_on_call(m, fetching.Journal, "add", 2)
        with pytest.raises(Crash):
            fetch(api, tmp_path)
    got = fetch(api, tmp_path, base_url=api.url + "/")  # same server, spelled with a slash
    assert got.resumed  # base URLs are normalised: still the same journal
    with monkeypatch.context() as m:
        crash_on_call(m, fetching.Journal, "add", 2)
        with pytest.raises(Crash):
            fetch(api, tmp_path, refresh="full")
    with serve() as other:
        other.bsky.add_user(HANDLE, 4)
        # 4 posts where 25 are cached: refused unless confirmed (the cache never shrinks by
        # accident); the confirmed run replays the pages the refused one saved.
        with pytest.raises(posts.Shrink, match="got 4 posts but 25 are cached"):
            fetch(other, tmp_path, refresh="full")
        assert len(posts.read_posts(tmp_path, HANDLE)) == 25
        got = sources.fetch_user(cfg(other), HANDLE, tmp_path, refresh="full",
                                 confirm_shrink=True)
    assert got.resumed and len(got.merged) == 4


def test_concurrent_fetches_of_a_missing_user_fetch_it_once(api, tmp_path):
    """Parallel sweep jobs that all miss a user: one fetches, the others wait and read it."""
    import threading

    api.bsky.add_user(HANDLE, 30)
    results, errors = [], []
    configs = [cfg(api) for _ in range(3)]  # composed here: Hydra's composition is one per process

    def job(config):
        try:
            results.append(sources.fetch_user(config, HANDLE, tmp_path, missing_only=True))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=job, args=(c,)) for c in configs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 3
    assert len(api.page_requests()) == 3  # 10 + 10 + 10, once
    assert all(len(r.merged) == 30 for r in results)


def test_cli_rate_limit_stop_is_one_clear_line(api, tmp_path):
    api.bsky.add_user(HANDLE, 30)
    api.fail(429, "{}", where="getAuthorFeed", headers={"Retry-After": "600"}, after=1)
    res = run_cli("fetch.py", f"user={HANDLE}", f"source.bluesky.base_url={api.url}",
                  "source.bluesky.page_size=10", "source.on_rate_limit=stop",
                  f"data_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/run")
    assert res.returncode == 2, res.stderr[-2000:]
    line = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert len(line) == 1 and "resets at" in line[0] and "(in 10m00s)" in line[0]
    assert len(list(posts.partial_dir(tmp_path / "data", HANDLE).glob("page-*.json"))) == 1
