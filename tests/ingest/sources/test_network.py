"""Fetching without a network, and tokens that cannot be sent: one line that says what is wrong,
within seconds, without retrying what retrying cannot fix.

No test sends anything beyond loopback: the machine's resolver is replaced (in-process by the
`resolver` fixture, in a subprocess by tests/fakes/offline/sitecustomize.py), so a name that
"does not resolve" never reaches a nameserver.
"""

from __future__ import annotations

import os
import socket
import time
from types import SimpleNamespace

import pytest
from conftest import ROOT, run_cli
from fakes.hostile import HANDLES, PLATFORMS, TOKEN, source_cfg
from fakes.servers import serve

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts, sources
from huggingtweets.ingest.sources import bluesky, http

pytestmark = pytest.mark.timeout(120)

OFFLINE_SITE = ROOT / "tests" / "fakes" / "offline"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
NOWHERE = "api.nohost.invalid"


@pytest.fixture
def resolver(monkeypatch):
    """The resolver replaced: loopback and the names in `hosts` (-> 127.0.0.1) resolve, every
    other name fails as it does offline, after `hang` seconds; `calls` lists the names asked."""
    real = socket.getaddrinfo
    state = SimpleNamespace(hosts=set(), hang=0.0, calls=[])

    def fake(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        state.calls.append(name)
        if name in LOOPBACK:
            return real(host, port, *args, **kwargs)
        if name in state.hosts:
            return real("127.0.0.1", port, *args, **kwargs)
        time.sleep(state.hang)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    return state


def fetch(platform: str, url: str, data_dir, **overrides):
    # The shipped retry policy (5 retries, backoff from 2 s): what a user gets.
    cfg = source_cfg(platform, url, backoff=2.0, max_retries=5, **overrides)
    return sources.fetch_user(cfg, HANDLES[platform], data_dir)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_line(message: str, host: str) -> None:
    assert "no connection" in message and host in message, message
    assert "\n" not in message
    assert "fetched so far" not in message  # no page was fetched: nothing was saved


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_name_that_does_not_resolve_is_one_line_without_retries(resolver, platform, tmp_path):
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        fetch(platform, f"https://{NOWHERE}", tmp_path)
    assert time.monotonic() - started < 2  # no backoff: 2 s, 4 s, 8 s ... would be 62 s
    offline_line(str(err.value), NOWHERE)
    assert resolver.calls.count(NOWHERE) <= 2  # looked up, not retried
    assert not posts.partial_dir(tmp_path, HANDLES[platform]).exists()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_refused_connection_is_one_line_within_seconds(resolver, platform, tmp_path):
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        fetch(platform, f"http://127.0.0.1:{port}", tmp_path)
    assert time.monotonic() - started < 4  # at most one short retry
    offline_line(str(err.value), f"127.0.0.1:{port}")
    assert "refused" in str(err.value)


@pytest.mark.parametrize("platform", ["bluesky", "x"])
def test_a_resolver_that_never_answers_is_offline_within_ten_seconds(resolver, platform,
                                                                     tmp_path):
    resolver.hang = 60  # a nameserver that is not there: glibc waits 5 s per try, and retries
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        fetch(platform, f"https://{NOWHERE}", tmp_path)
    assert time.monotonic() - started < 10
    offline_line(str(err.value), NOWHERE)


def test_losing_the_network_mid_fetch_says_the_pages_are_saved(resolver, tmp_path, monkeypatch):
    """The first page arrives, then the name stops resolving: the journal keeps the page, the
    line says so (and again: no backoff)."""
    real_page = bluesky.BlueskySource.page

    def page(self, account, cursor, since):
        if cursor is not None:  # the second page: the network is gone, the old connection too
            resolver.hosts.clear()
            self.http.close()
            self.http = http.http_client(self.policy.timeout)
        return real_page(self, account, cursor, since)

    monkeypatch.setattr(bluesky.BlueskySource, "page", page)
    with serve() as api:
        api.bsky.add_user(HANDLES["bluesky"], 30)
        port = api.url.rsplit(":", 1)[1]
        resolver.hosts.add("appview.test")
        started = time.monotonic()
        with pytest.raises(UserError) as err:
            fetch("bluesky", f"http://appview.test:{port}", tmp_path)
    assert time.monotonic() - started < 3
    message = str(err.value)
    assert "no connection" in message and "appview.test" in message
    assert "1 page fetched so far is saved" in message
    assert len(list(posts.partial_dir(tmp_path, HANDLES["bluesky"]).glob("page-*.json"))) == 1


@pytest.mark.parametrize("hang", [0, 60])
def test_cli_offline_is_one_line_within_ten_seconds(tmp_path, hang):
    """The plain command on a machine without a network (its resolver fails, or hangs)."""
    env = {"PYTHONPATH": os.pathsep.join([str(OFFLINE_SITE), os.environ.get("PYTHONPATH", "")]),
           "HT_FAKE_RESOLVER_HANG": str(hang)}
    started = time.monotonic()
    res = run_cli("fetch.py", "user=x.bsky.social", f"data_dir={tmp_path}/data", env=env,
                  timeout=120)
    took = time.monotonic() - started
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    offline_line(lines[0], "public.api.bsky.app")
    assert took < 10


# --- tokens -----------------------------------------------------------------------------------

BAD_TOKENS = {
    "curly quote": "AAAA\u2019BBBB",  # pasted from a document that "smartened" it
    "zero-width": "AAAA\u200bBBBB",
    "two lines": "AAAA\nBBBB",
}


@pytest.mark.parametrize("why", BAD_TOKENS)
def test_a_token_with_a_character_no_token_has_is_one_line(why, tmp_path):
    with serve() as api:
        api.x.add_user("alice", 3)
        res = run_cli("fetch.py", "user=alice", "source=x", f"source.base_url={api.url}",
                      f"data_dir={tmp_path}/data", env={"X_BEARER_TOKEN": BAD_TOKENS[why]},
                      timeout=120)
        assert not api.log  # nothing was sent with it
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "X_BEARER_TOKEN" in lines[0] and "cannot be in a token" in lines[0]
    assert "AAAA" not in lines[0] and "BBBB" not in lines[0]  # the token is never printed
