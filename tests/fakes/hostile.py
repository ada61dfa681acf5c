"""A hostile fake of the X, Bluesky and Mastodon APIs: lookups answer normally, timeline pages
misbehave in one chosen way. Built on the honest fakes of servers.py (same routes,
same loopback server), so every API source can be attacked through its real client code.

Modes (`HostileRouter.mode`, for page requests only):
  repeat_cursor  a real first page whose next cursor is the cursor just asked for, forever
  loop_forever   the first page again and again, each with a new cursor: never ends by itself
  drip           200 OK, then one byte every `drip_s` seconds, never finishing
  huge_body      200 OK, then `huge_mb` megabytes of JSON-ish bytes without a Content-Length
  lying_length   a Content-Length of `lie` bytes over a 20-byte body (huge: read nothing)
  garbage_json   200 OK with bytes that are not JSON
  rate_limit     429 with the headers in `rate_headers` (absurd, non-finite, skewed resets)
  empty          a valid, empty timeline
  bad_items      a page whose items are garbage (non-objects, no ids, unparseable dates)
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from urllib.parse import urlencode

from werkzeug import Request, Response

from fakes.servers import TOKEN, Router, is_page, source_node

# One account per platform, the same name everywhere.
HANDLES = {"x": "alice", "bluesky": "alice.bsky.social", "mastodon": "alice@mastodon.example"}
PLATFORMS = tuple(HANDLES)


class HostileRouter(Router):
    """The honest Router, with the page endpoint turned hostile by `mode`."""

    def __init__(self, url: str):
        super().__init__(url)
        self.mode: str | None = None
        self.drip_s = 0.2
        self.huge_mb = 300
        self.lie = 10**12
        self.rate_headers: dict = {}
        self.served = 0  # hostile answers given

    def add(self, platform: str, n: int) -> None:
        """An account with `n` posts on `platform`, under HANDLES[platform]."""
        if platform == "x":
            self.x.add_user(HANDLES["x"], n)
        elif platform == "bluesky":
            self.bsky.add_user(HANDLES["bluesky"], n)
        else:
            self.masto.add_user(HANDLES["mastodon"].split("@")[0], n)

    def __call__(self, request: Request) -> Response:
        if self.mode is None or not is_page(request.path):
            return super().__call__(request)
        with self.lock:
            self.log.append((request.path, dict(request.args), dict(request.headers)))
            self.served += 1
            n = self.served
        return getattr(self, self.mode)(request, n)

    # --- the modes ------------------------------------------------------------------------

    def _honest(self, request: Request, **args) -> tuple[object, dict]:
        """The honest answer to `request` with some query args replaced: (JSON body, headers)."""
        from werkzeug.test import EnvironBuilder

        query = {**dict(request.args), **args}
        query = {k: v for k, v in query.items() if v is not None}
        env = EnvironBuilder(path=request.path, query_string=urlencode(query),
                             headers=dict(request.headers)).get_environ()
        honest = Request(env)
        if request.path.startswith("/2/"):
            response = self.x.handle(honest)
        elif request.path.startswith("/xrpc/"):
            response = self.bsky.handle(honest)
        else:
            response = self.masto.handle(honest)
        return json.loads(response.get_data()), dict(response.headers)

    def _with_cursor(self, request: Request, cursor: str) -> Response:
        """The account's first page again, whatever was asked, with `cursor` as the next one."""
        path = request.path
        if path.startswith("/2/"):
            body, _ = self._honest(request, pagination_token=None)
            body.setdefault("meta", {})["next_token"] = cursor
            return _json(body)
        if path.startswith("/xrpc/"):
            body, _ = self._honest(request, cursor=None)
            body["cursor"] = cursor
            return _json(body)
        body, _ = self._honest(request, max_id=None)
        size = request.args.get("limit", "20")
        link = f'<{self.url}{path}?{urlencode({"limit": size, "max_id": cursor})}>; rel="next"'
        return _json(body, {"Link": link})

    def repeat_cursor(self, request: Request, n: int) -> Response:
        asked = (request.args.get("pagination_token") or request.args.get("cursor")
                 or request.args.get("max_id") or "same")
        return self._with_cursor(request, asked)

    def loop_forever(self, request: Request, n: int) -> Response:
        cursor = str(10**17 + n)  # new every time: only a page cap ends this
        return self._with_cursor(request, cursor)

    def drip(self, request: Request, n: int) -> Response:
        def body():
            yield b'{"data": ['
            deadline = time.monotonic() + 60  # the server thread ends on its own, eventually
            while time.monotonic() < deadline:
                time.sleep(self.drip_s)
                yield b" "
        return Response(body(), status=200, content_type="application/json")

    def huge_body(self, request: Request, n: int) -> Response:
        chunk = b"[" + b"0," * (2**19 - 1) + b"0]"  # ~1 MB
        total = self.huge_mb

        def body():
            for _ in range(total):
                yield chunk
        return Response(body(), status=200, content_type="application/json")

    def lying_length(self, request: Request, n: int) -> Response:
        response = Response(b'{"data": [], "a": 1}', status=200, content_type="application/json")
        response.headers["Content-Length"] = str(self.lie)
        response.automatically_set_content_length = False
        return response

    def garbage_json(self, request: Request, n: int) -> Response:
        return Response(os.urandom(64) + b"{\"feed\": [", status=200,
                        content_type="application/json")

    def rate_limit(self, request: Request, n: int) -> Response:
        return Response('{"error": "RateLimitExceeded"}', status=429, headers=self.rate_headers,
                        content_type="application/json")

    def empty(self, request: Request, n: int) -> Response:
        if request.path.startswith("/2/"):
            return _json({"meta": {"result_count": 0}})
        if request.path.startswith("/xrpc/"):
            return _json({"feed": []})
        return _json([])

    def bad_items(self, request: Request, n: int) -> Response:
        """Garbage items around one good one: the good one must be kept, the rest counted."""
        body, headers = self._honest(request)
        junk = [5, "text", None, [], {"id": None}, {}]
        if request.path.startswith("/2/"):
            good = body.get("data", [])[:1]
            body["data"] = junk + good + [{"id": "77", "text": "x", "created_at": "not a time"}]
            body["meta"] = {"result_count": len(body["data"])}
        elif request.path.startswith("/xrpc/"):
            good = body.get("feed", [])[:1]
            body["feed"] = junk + good + [
                {"post": {"uri": "at://x/app.bsky.feed.post/1", "indexedAt": "never",
                          "record": {"text": "x", "createdAt": "yesterday"}}},
                {"post": "not an object"}]
            body.pop("cursor", None)
        else:
            good = body[:1]
            body = junk + good + [{"id": "77", "created_at": "garbage", "content": "<p>x</p>"},
                                  {"id": "78", "created_at": "2024-01-01T00:00:00Z",
                                   "content": 5}]
            headers = {}
        return _json(body, {k: v for k, v in headers.items() if k == "Link"})


def _json(body, headers=None) -> Response:
    return Response(json.dumps(body), status=200, headers=headers or {},
                    content_type="application/json; charset=utf-8")


@contextmanager
def hostile():
    """A HostileRouter on a threaded loopback server (honest until `mode` is set)."""
    import re

    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    router = HostileRouter(server.url_for("/").rstrip("/"))
    server.expect_request(re.compile(".*")).respond_with_handler(router)
    try:
        yield router
    finally:
        router.release.set()
        server.clear()
        server.stop()


def source_cfg(platform: str, url: str, **overrides):
    """The real conf/source/<platform>.yaml pointed at `url`, quick to give up in tests."""
    node = source_node(platform)
    node.merge_with({"base_url": url, "page_size": 10, "backoff": 0.01, "progress": False,
                     "max_retries": 1, **overrides})
    return node


__all__ = ["HANDLES", "PLATFORMS", "TOKEN", "HostileRouter", "hostile", "source_cfg"]
