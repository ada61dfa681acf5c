"""Fake X, Bluesky and Mastodon APIs on a real loopback HTTP server (no tests in this module).

The fakes answer in the shapes of the recorded responses in ../shared/data/api-samples, with
their own synthetic posts: pagination (X next_token, Bluesky cursor, Mastodon Link headers),
since_id / cursor semantics, the platforms' error bodies, and injectable faults (429 with reset
headers, 5xx, slow answers, malformed JSON) and a gate that holds one page request so a client
can be killed mid-fetch. One server routes all three APIs by path, so a mix can use them at once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from conftest import ROOT, run_cli
from werkzeug import Request, Response

from huggingtweets.ingest import posts

CONF = ROOT / "conf" / "source"


def source_node(name: str):
    """conf/source/<name>.yaml as Hydra composes it for fetch.py: its bounds and its types."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import huggingtweets.config  # noqa: F401  (the schemas)

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
            return compose("fetch", overrides=[f"source={name}"]).source
    finally:
        GlobalHydra.instance().clear()


TOKEN = "test-bearer-TOKEN-do-not-leak-7f3a9c"
TWITTER_EPOCH_MS = 1288834974657
START = datetime(2024, 1, 1, tzinfo=UTC)

WORDS = (
    "coffee telescope river garden morning quiet bright evening market bread lantern harbor "
    "winter summer music paper window orange silver garden clouds thunder mountain letters "
    "bicycle kitchen pepper violin ocean meadow candle forest library journey"
).split()


def sentence(rng: random.Random, i: int, words: int = 12) -> str:
    return f"note {i}: " + " ".join(rng.choice(WORDS) for _ in range(words))


@contextmanager
def serve():
    """A threaded HTTP server on 127.0.0.1 with a catch-all route to `Router`."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    router = Router(server.url_for("/").rstrip("/"))
    server.expect_request(__import__("re").compile(".*")).respond_with_handler(router)
    try:
        yield router
    finally:
        router.release.set()
        server.clear()
        server.stop()


def same_posts(a, b) -> bool:
    """Two caches hold the same posts; their rows' import times differ between runs."""
    return a.drop(columns="imported_at").equals(b.drop(columns="imported_at"))


def kill_mid_fetch_then_resume(router: Router, tmp_path: Path, handle: str, source_args: list,
                               env: dict | None = None, pages_before_kill: int = 2):
    """Run fetch.py, SIGKILL it while it waits for page `pages_before_kill + 1`, run it again.

    Returns (the second run's CompletedProcess, the page requests the second run made).
    """
    data = tmp_path / "data"
    args = [f"user={handle}", *source_args, "source.backoff=0.01", f"data_dir={data}",
            f"hydra.run.dir={tmp_path / 'run'}"]
    router.block_page = router.pages + pages_before_kill + 1
    child = subprocess.Popen([sys.executable, str(ROOT / "fetch.py"), *args], cwd=ROOT,
                             env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        assert router.reached.wait(90), child.stderr.read().decode()[-2000:]
        journal = posts.partial_dir(data, handle)
        assert len(list(journal.glob("page-*.json"))) == pages_before_kill
        assert (journal / "state.json").exists()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert not posts.tweets_path(data, handle).exists()  # nothing merged yet: no half cache
    router.block_page = None
    router.release.set()
    before = len(router.page_requests())
    res = run_cli("fetch.py", *args, env=env)
    assert not journal.exists(), "the journal is removed once merged"
    return res, router.page_requests()[before:]


@dataclass
class Fault:
    status: int = 500
    body: str = '{"error": "boom"}'
    headers: dict = field(default_factory=dict)
    sleep: float = 0.0
    where: str = ""  # only requests whose path contains this
    times: int = 1
    after: int = 0  # let this many matching requests through first


class Router:
    """Dispatches to the fake APIs; records every request; injects faults; gates a page."""

    def __init__(self, url: str):
        self.url = url
        self.x = FakeX()
        self.bsky = FakeBluesky()
        self.masto = FakeMastodon(url)
        self.log: list[tuple[str, dict, dict]] = []
        self.faults: list[Fault] = []
        self.block_page: int | None = None  # hold the Nth page request until release is set
        self.pages = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def fail(self, status=500, body='{"error": "boom"}', headers=None, sleep=0.0, where="",
             times=1, after=0):
        self.faults.append(Fault(status, body, dict(headers or {}), sleep, where, times, after))

    def page_requests(self) -> list[dict]:
        return [args for path, args, _ in self.log if is_page(path)]

    def __call__(self, request: Request) -> Response:
        path, args = request.path, dict(request.args)
        with self.lock:
            self.log.append((path, args, dict(request.headers)))
            fault = next((f for f in self.faults if f.where in path), None)
            if fault is not None and fault.after > 0:
                fault.after -= 1
                fault = None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            page_number = None
            if fault is None and is_page(path):
                self.pages += 1
                page_number = self.pages
        if fault is not None:
            time.sleep(fault.sleep)
            return Response(fault.body, status=fault.status, headers=fault.headers,
                            content_type="application/json")
        if page_number is not None and page_number == self.block_page:
            self.reached.set()
            self.release.wait(60)
        if path.startswith("/2/"):
            return self.x.handle(request)
        if path.startswith("/xrpc/"):
            return self.bsky.handle(request)
        if path.startswith("/api/v1/"):
            return self.masto.handle(request)
        return json_response({"error": "no such route"}, 404)


def is_page(path: str) -> bool:
    return path.endswith(("/tweets", "getAuthorFeed", "/statuses"))


def json_response(body, status=200, headers=None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


# --- X API v2 ---------------------------------------------------------------------------------


def snowflake(when: datetime, seq: int = 0) -> str:
    millis = int(when.timestamp() * 1000)
    return str(((millis - TWITTER_EPOCH_MS) << 22) | (seq & 0xFFF))


class FakeX:
    """GET /2/users/by/username/:name and GET /2/users/:id/tweets, bearer token required."""

    def __init__(self):
        self.users: dict[str, dict] = {}  # username (lower) -> user object (+ "suspended")
        self.tweets: dict[str, list[dict]] = {}  # user id -> tweets, newest first

    def add_user(self, username: str, n: int, protected=False, suspended=False, seed=0,
                 name=None) -> dict:
        uid = str(1000 + len(self.users))
        user = {"id": uid, "username": username, "name": name or f"{username} (X)",
                "protected": protected, "public_metrics": {"tweet_count": n}}
        self.users[username.lower()] = {**user, "suspended": suspended}
        self.tweets[uid] = []
        self.add_tweets(username, n, seed=seed)
        return user

    def add_tweets(self, username: str, n: int, seed=0) -> list[dict]:
        """`n` new tweets, newer than all existing ones: originals, retweets, replies, quotes."""
        user = self.users[username.lower()]
        rng = random.Random(seed)
        existing = self.tweets[user["id"]]
        start = len(existing)
        new = []
        for i in range(start, start + n):
            when = START + timedelta(minutes=37 * i)
            tid = snowflake(when, i)
            text, refs = sentence(rng, i) + " &amp; more", []
            if i % 10 == 3:
                text, refs = f"RT @friend: {sentence(rng, i)}", [{"type": "retweeted", "id": "9"}]
            elif i % 10 == 5:
                text, refs = f"@friend {sentence(rng, i)}", [{"type": "replied_to", "id": "8"}]
            elif i % 10 == 7:
                text, refs = f"{sentence(rng, i)} https://t.co/q{i}", [{"type": "quoted", "id": "7"}]
            tweet = {"id": tid, "text": text, "created_at": when.isoformat().replace("+00:00", ".000Z"),
                     "author_id": user["id"], "lang": "en", "edit_history_tweet_ids": [tid]}
            if refs:
                tweet["referenced_tweets"] = refs
            if i % 10 == 9:
                tweet["note_tweet"] = {"text": text + " (the long version of this post)"}
            new.append(tweet)
        existing[:0] = list(reversed(new))
        return new

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return json_response({"title": "Unauthorized", "type": "about:blank", "status": 401,
                                  "detail": "Unauthorized"}, 401)
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["2", "users", "by"]:
            name = parts[4]
            user = self.users.get(name.lower())
            if user is None:
                return json_response({"errors": [{
                    "value": name, "detail": f"Could not find user with username: [{name}].",
                    "title": "Not Found Error", "resource_type": "user", "parameter": "username",
                    "resource_id": name,
                    "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
            if user["suspended"]:
                return json_response({"errors": [{
                    "value": name, "detail": f"User has been suspended: [{name}].",
                    "title": "Forbidden", "resource_type": "user", "parameter": "username",
                    "resource_id": name,
                    "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
            return json_response({"data": {k: v for k, v in user.items() if k != "suspended"}})
        if parts[:2] == ["2", "users"] and parts[3:] == ["tweets"]:
            uid = parts[2]
            tweets = self.tweets.get(uid, [])
            since = request.args.get("since_id")
            if since:
                tweets = [t for t in tweets if int(t["id"]) > int(since)]
            size = int(request.args.get("max_results", 10))
            offset = int(request.args.get("pagination_token", "tok0")[3:])
            page = tweets[offset:offset + size]
            meta = {"result_count": len(page)}
            if page:
                meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
            if offset + size < len(tweets):
                meta["next_token"] = f"tok{offset + size}"
            body = {"meta": meta}
            if page:
                user = next(u for u in self.users.values() if u["id"] == uid)
                body["data"] = page
                body["includes"] = {"users": [{"id": uid, "name": user["name"],
                                               "username": user["username"]}]}
            return json_response(body)
        return json_response({"title": "Not Found"}, 404)


# --- Bluesky AppView --------------------------------------------------------------------------


class FakeBluesky:
    """app.bsky.actor.getProfile and app.bsky.feed.getAuthorFeed (cursor pagination)."""

    def __init__(self):
        self.profiles: dict[str, dict] = {}  # handle and did -> profile (+ "error")
        self.feeds: dict[str, list[dict]] = {}  # did -> feed items, newest first

    def add_user(self, handle: str, n: int, error: str | None = None, seed=0) -> dict:
        did = "did:plc:" + "".join(random.Random(handle).choice("abcdefghijklmnopqrstuvwxyz234567")
                                   for _ in range(24))
        profile = {"did": did, "handle": handle, "displayName": f"{handle.split('.')[0]} 🦋",
                   "postsCount": n, "error": error}
        self.profiles[handle] = self.profiles[did] = profile
        self.feeds[did] = []
        self.add_posts(handle, n, seed=seed)
        return profile

    def add_posts(self, handle: str, n: int, seed=0) -> None:
        profile = self.profiles[handle]
        rng = random.Random(seed)
        feed = self.feeds[profile["did"]]
        author = {"did": profile["did"], "handle": handle, "displayName": profile["displayName"]}
        start = len(feed)
        new = []
        for i in range(start, start + n):
            when = (START + timedelta(minutes=41 * i)).isoformat().replace("+00:00", ".000Z")
            uri = f"at://{profile['did']}/app.bsky.feed.post/3k{i:08d}"
            text = sentence(rng, i) + " & <more>"
            record = {"$type": "app.bsky.feed.post", "createdAt": when, "langs": ["en"],
                      "text": text}
            item = {"post": {"uri": uri, "cid": f"cid{i}", "author": author, "record": record,
                             "indexedAt": when}}
            if i % 10 == 2:  # a repost of someone else's post
                other = {"did": "did:plc:other", "handle": "other.bsky.social"}
                item = {"post": {"uri": f"at://did:plc:other/app.bsky.feed.post/o{i}",
                                 "author": other, "indexedAt": when,
                                 "record": {"text": sentence(rng, i), "createdAt": when}},
                        "reason": {"$type": "app.bsky.feed.defs#reasonRepost",
                                   "by": author, "indexedAt": when}}
            elif i % 10 == 4:
                record["reply"] = {"root": {"uri": "at://x/app.bsky.feed.post/r"},
                                   "parent": {"uri": "at://x/app.bsky.feed.post/r"}}
            elif i % 10 == 6:
                record["embed"] = {"$type": "app.bsky.embed.record",
                                   "record": {"uri": "at://did:plc:q/app.bsky.feed.post/q"}}
            elif i % 10 == 8:  # a shortened link with its facet
                link = "https://example.com/a/very/long/path"
                prefix = f"see {i} "
                record["text"] = prefix + "example.com/a/very/..." + " ok"
                start_b = len(prefix.encode())
                record["facets"] = [{"index": {"byteStart": start_b,
                                               "byteEnd": start_b + len("example.com/a/very/...")},
                                     "features": [{"$type": "app.bsky.richtext.facet#link",
                                                   "uri": link}]}]
            new.append(item)
        feed[:0] = list(reversed(new))

    def handle(self, request: Request) -> Response:
        nsid = request.path.rsplit("/", 1)[-1]
        actor = request.args.get("actor", "")
        profile = self.profiles.get(actor)
        if profile is None:
            return json_response({"error": "InvalidRequest", "message": "Profile not found"}, 400)
        if profile["error"]:
            message = {"AccountTakedown": "Account has been suspended",
                       "AccountDeactivated": "Account is deactivated"}.get(profile["error"], "")
            return json_response({"error": profile["error"], "message": message}, 400)
        if nsid == "app.bsky.actor.getProfile":
            return json_response({k: v for k, v in profile.items() if k != "error"})
        if nsid == "app.bsky.feed.getAuthorFeed":
            feed = self.feeds[profile["did"]]
            size = int(request.args.get("limit", 50))
            offset = int(request.args.get("cursor") or 0)
            page = feed[offset:offset + size]
            body = {"feed": page}
            if offset + size < len(feed):
                body["cursor"] = str(offset + size)
            return json_response(body)
        return json_response({"error": "MethodNotImplemented"}, 501)


# --- Mastodon ---------------------------------------------------------------------------------


class FakeMastodon:
    """/api/v1/accounts/lookup and /api/v1/accounts/:id/statuses (max_id / since_id, Link)."""

    def __init__(self, url: str):
        self.url = url
        self.accounts: dict[str, dict] = {}  # username -> account (+ "status" to fail with)
        self.statuses: dict[str, list[dict]] = {}  # account id -> statuses, newest first
        self.next_id = 109300000000000000

    def add_user(self, username: str, n: int, locked=False, suspended=False, gone=False, seed=0):
        aid = str(109281650341067731 + len(self.accounts))
        account = {"id": aid, "username": username, "acct": username,
                   "display_name": f"{username} 🐘", "locked": locked, "statuses_count": n}
        if suspended:
            account["suspended"] = True
        self.accounts[username] = {**account, "gone": gone}
        self.statuses[aid] = []
        self.add_statuses(username, n, seed=seed)
        return account

    def add_statuses(self, username: str, n: int, seed=0) -> None:
        account = {k: v for k, v in self.accounts[username].items() if k != "gone"}
        rng = random.Random(seed)
        statuses = self.statuses[account["id"]]
        start = len(statuses)
        new = []
        for i in range(start, start + n):
            self.next_id += 1000 + i
            when = (START + timedelta(minutes=43 * i)).isoformat().replace("+00:00", ".000Z")
            words = sentence(rng, i)
            content = (f"<p>{words} &amp; &lt;b&gt;</p><p>second para<br />"
                       f'<a href="https://example.org/p/{i}" rel="nofollow"><span class="invisible">'
                       f'https://</span><span class="ellipsis">example.org/p/</span></a> '
                       '<span class="h-card"><a href="https://m.example/@pal" class="u-url mention">'
                       '@<span>pal</span></a></span> <a href="https://m.example/tags/tag" '
                       'class="mention hashtag" rel="tag">#<span>tag</span></a></p>')
            status = {"id": str(self.next_id), "created_at": when, "in_reply_to_id": None,
                      "spoiler_text": "", "language": "en", "content": content, "reblog": None,
                      "account": account, "visibility": "public"}
            if i % 10 == 1:
                status["content"] = ""
                status["language"] = None
                status["reblog"] = {"id": f"9{i}", "created_at": when, "content": f"<p>{words}</p>",
                                    "account": {"acct": "friend@other.example"}, "language": "en",
                                    "spoiler_text": ""}
            elif i % 10 == 3:
                status["in_reply_to_id"] = "123"
            elif i % 10 == 5:
                status["spoiler_text"] = "food"
            new.append(status)
        statuses[:0] = list(reversed(new))

    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts == ["api", "v1", "accounts", "lookup"]:
            account = self.accounts.get(request.args.get("acct", ""))
            if account is None:
                return json_response({"error": "Record not found"}, 404)
            if account["gone"]:
                return json_response({"error": "Account is gone"}, 410)
            return json_response({k: v for k, v in account.items() if k != "gone"})
        if parts[:3] == ["api", "v1", "accounts"] and parts[4:] == ["statuses"]:
            statuses = self.statuses.get(parts[3])
            if statuses is None:
                return json_response({"error": "Record not found"}, 404)
            since, max_id = request.args.get("since_id"), request.args.get("max_id")
            if since:
                statuses = [s for s in statuses if int(s["id"]) > int(since)]
            if max_id:
                statuses = [s for s in statuses if int(s["id"]) < int(max_id)]
            size = int(request.args.get("limit", 20))
            page = statuses[:size]
            headers = {}
            if page:
                base = f"{self.url}/api/v1/accounts/{parts[3]}/statuses"
                links = [f'<{base}?{urlencode({"limit": size, "min_id": page[0]["id"]})}>; rel="prev"']
                if len(page) == size:  # Mastodon links "next" only from a full page
                    links.insert(0, f'<{base}?{urlencode({"limit": size, "max_id": page[-1]["id"]})}>; rel="next"')
                headers["Link"] = ", ".join(links)
            return json_response(page, headers=headers)
        return json_response({"error": "Record not found"}, 404)
