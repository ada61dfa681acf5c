"""The web demo: one page (a prompt, how many tweets, a temperature, a button) and a JSON endpoint,
served by the standard library on localhost (no Gradio: nothing to install).

    GET  /               the page (static: it holds no user data; app.js fetches it)
    GET  /api/info       who the model writes like, the voices (author conditioning), defaults
    POST /api/generate   {"prompt", "n", "temperature", "user"} -> {"samples": [{text, name, handle}]}

User text reaches the page only as JSON and `textContent`, under a Content-Security-Policy with no
inline script. `make_server` adds what a server facing a browser needs: Host/Origin checks (no
other site, no DNS rebinding), capped and typed request bodies, a thread, read timeout and
deadline per connection and a cap on open ones; bad requests get a 4xx with a JSON message.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import secrets
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from huggingtweets.errors import UserError
from huggingtweets.publish.generate import Generator, terminal_safe

MAX_PROMPT = 280  # characters, a tweet's
MAX_BODY = 10_000  # bytes of a POST body: a 280-character prompt, \u-escaped, is under 2,000
TEMPERATURE = (0.05, 2.0)  # below ~0.05 the logits / temperature overflow; above 2 it is noise
FIELDS = ("prompt", "n", "temperature", "user")

# The page, its stylesheet and its script: package data in publish/static/, served as is.
STATIC = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
          "/app.css": ("app.css", "text/css")}


class Demo:
    """The model and what the page needs to know about it; generation is serialized by a lock."""

    def __init__(self, model_dir: str | Path, *, n: int = 3, max_n: int = 10,
                 temperature: float = 1.0, top_p: float = 0.95, max_new_tokens: int = 60,
                 filter_copies: bool = True, copy_index="auto", seed: int | None = None):
        self.n, self.max_n, self.temperature = int(n), int(max_n), float(temperature)
        if not 1 <= self.n <= self.max_n:
            raise UserError(f"n={n}: the default must be from 1 to max_n={max_n}")
        if not TEMPERATURE[0] <= self.temperature <= TEMPERATURE[1]:
            raise UserError(f"temperature={temperature}: use {TEMPERATURE[0]} to {TEMPERATURE[1]}")
        self.gen = Generator.from_dir(model_dir, copy_index=copy_index)
        info = self.gen.info
        handles = info.get("handles") or [Path(model_dir).resolve().name]
        names = info.get("display_names") or {}
        self.users = [{"user": h, "name": names.get(h) or h, "handle": "@" + h} for h in handles]
        self.voices = [u for u in self.users if u["user"] in self.gen.users]
        self.prompts = info.get("prompts") or ["My dream is"]
        self.top_p, self.max_new_tokens = float(top_p), int(max_new_tokens)
        self.filter_copies, self.seed = bool(filter_copies), seed
        self.lock = threading.Lock()
        if self.filter_copies and self.gen.copies is None:
            print(f"warning: no copy index beside {model_dir}: tweets are not checked for copies "
                  "of training tweets", file=sys.stderr)

    def info(self) -> dict:
        title = " & ".join(u["name"] for u in self.users)
        return {"title": title, "users": self.users, "voices": self.voices, "prompts": self.prompts,
                "defaults": {"n": self.n, "temperature": self.temperature}, "max_n": self.max_n,
                "filter_copies": self.filter_copies and self.gen.copies is not None}

    def params(self, req) -> dict:
        """The request's fields, checked for JSON type and range (UserError: a 400 that says which
        field and what it takes); absent or null fields take the defaults."""
        if not isinstance(req, dict):
            raise UserError("send a JSON object: {\"prompt\", \"n\", \"temperature\", \"user\"}")
        unknown = [k for k in req if k not in FIELDS]
        if unknown:
            raise UserError(f"unknown field {_quote(unknown[0])}: send only {', '.join(FIELDS)}")
        prompt = "" if req.get("prompt") is None else req["prompt"]
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT:
            raise UserError(f"prompt must be text of at most {MAX_PROMPT} characters")
        n = self.n if req.get("n") is None else req["n"]
        # bool is an int in Python, but `true` is not a number of tweets
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= self.max_n:
            raise UserError(f"n must be a whole number from 1 to {self.max_n}")
        t = self.temperature if req.get("temperature") is None else req["temperature"]
        lo, hi = TEMPERATURE
        if (not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t)
                or not lo <= t <= hi):
            raise UserError(f"temperature must be a number from {lo} to {hi}")
        user = req.get("user") or None  # "" is the page's "any voice"
        if user is not None:
            if not isinstance(user, str):
                raise UserError("user must be a voice's name (text) or null")
            known = [v["user"] for v in self.voices]
            if user not in known:
                raise UserError(f"unknown voice {_quote(user)}: " + (
                    f"this model has {', '.join(known)}" if known else
                    "this model has no voices (it was trained without author conditioning)"))
        return {"prompt": prompt, "n": n, "temperature": float(t), "user": user}

    def generate(self, req) -> dict:
        p = self.params(req)
        seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
        with self.lock:
            samples = self.gen.sample([p["prompt"]], n=p["n"], temperature=p["temperature"],
                                      top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                                      seed=seed, filter_copies=self.filter_copies, user=p["user"])
            dropped = dict(self.gen.dropped)
        who = [u for u in self.users if u["user"] == p["user"]] or self.users
        name = " & ".join(u["name"] for u in who)
        handle = " · ".join(u["handle"] for u in who)
        return {"samples": [{"text": s["text"], "name": name, "handle": handle} for s in samples],
                "dropped": dropped, "seed": seed}


def _quote(text: str, limit: int = 40) -> str:
    """A client's string inside an error message: quoted, and cut short (it can be 10 kB)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


class HTTPError(Exception):
    """A request refused: the status and the message its JSON body carries."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class DemoServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once: past that, new connections are
    closed rather than queued behind slow ones."""

    daemon_threads = True  # Ctrl-C does not wait for a generation in flight

    def __init__(self, address, handler, max_connections: int = 32):
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        # A broken connection (reset, timeout, the request deadline) is the client's doing: say
        # nothing. Anything else is a bug: one line, not socketserver's traceback per request.
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            return
        print(f"error: request from {client_address[0]} failed: {type(err).__name__}: "
              f"{terminal_safe(err, one_line=True)}", file=sys.stderr, flush=True)


def _content_length(values: list[str] | None, limit: int) -> int:
    """The one Content-Length a POST must carry: ASCII digits only (int() also takes "-1", "+5",
    " 5 ", "١٢"), the same value if repeated, at most `limit`."""
    if not values:
        raise HTTPError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
    if len(set(v.strip() for v in values)) > 1:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
    value = values[0].strip()
    if not re.fullmatch(r"[0-9]+", value):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
    if len(value) > 9 or int(value) > limit:
        raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {limit} bytes")
    return int(value)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")  # json.loads takes NaN and Infinity otherwise


def make_server(demo: Demo, host: str = "127.0.0.1", port: int = 7860, *,
                read_timeout: float = 10.0, request_deadline: float = 20.0,
                max_connections: int = 32, max_body: int = MAX_BODY) -> DemoServer:
    """The demo's HTTP server, not started. `read_timeout`: the longest a connection may stay
    silent; `request_deadline`: for reading a whole request (a dripping client)."""
    folder = resources.files(__package__) / "static"
    static = {path: ((folder / name).read_text(encoding="utf-8"), ctype)
              for path, (name, ctype) in STATIC.items()}

    class Handler(BaseHTTPRequestHandler):
        server_version = "huggingtweets"
        timeout = read_timeout  # StreamRequestHandler sets it on the socket: every read and write

        def setup(self):
            super().setup()
            # The deadline: a timer that shuts the socket down unless the request has been read
            # by then; the blocked read returns, the connection ends (quietly: handle_error).
            self._reading, self._guard, self._body_read = True, threading.Lock(), False
            self._watchdog = threading.Timer(request_deadline, self._too_slow)
            self._watchdog.daemon = True
            self._watchdog.start()

        def _too_slow(self):
            with self._guard:
                if self._reading:
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def _request_read(self):
            with self._guard:
                self._reading = False
            self._watchdog.cancel()

        def finish(self):
            self._request_read()
            super().finish()

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                             "style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: dict) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json")

        def _hosts(self) -> set[str]:
            """The Host values that name this server (a DNS name rebound to it is none of them): the
            address the client connected to and, on loopback, localhost, with the port."""
            ip, port = self.connection.getsockname()[:2]
            names = {f"[{ip}]" if ":" in ip else ip}
            if ipaddress.ip_address(ip.split("%")[0]).is_loopback:
                names.add("localhost")
            return {f"{n}:{port}" for n in names} | (names if port == 80 else set())

        def _check_sender(self, api: bool) -> None:
            """403 unless the request comes from this server's own page, or from no page at all
            (curl and scripts send no Origin; browsers send it with every POST)."""
            hosts = self._hosts()
            host = self.headers.get_all("Host") or []
            if len(host) != 1 or host[0].strip().lower() not in hosts:
                raise HTTPError(HTTPStatus.FORBIDDEN, "this server answers only to "
                                + " or ".join(sorted(hosts)) + " in the Host header")
            origin = self.headers.get("Origin")
            if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in hosts}:
                raise HTTPError(HTTPStatus.FORBIDDEN, "requests from other sites are refused")
            fetch_site = self.headers.get("Sec-Fetch-Site")
            if api and fetch_site not in (None, "same-origin", "none"):
                raise HTTPError(HTTPStatus.FORBIDDEN, "requests from other sites are refused")

        def _refuse(self, err: HTTPError) -> None:
            self.close_connection = True
            self._json(err.status, {"error": str(err)})
            if self.command == "POST" and not self._body_read:
                self._discard_body()

        def _discard_body(self) -> None:
            """A "lingering close": closing with unread bytes sends a reset that can beat the
            answer, so end our side, then drain what the client still sends (1 MB at most)."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(0.5)
                for _ in range(16):
                    if not self.connection.recv(65536):
                        break
            except OSError:
                pass

        def do_GET(self):  # noqa: N802 (http.server's naming)
            self._request_read()  # a GET is its headers
            path = self.path.split("?")[0]
            try:
                self._check_sender(api=path.startswith("/api/"))
            except HTTPError as err:
                return self._refuse(err)
            if path in static:
                text, ctype = static[path]
                self._send(HTTPStatus.OK, text.encode(), ctype)
            elif path == "/api/info":
                self._json(HTTPStatus.OK, demo.info())
            elif path == "/favicon.ico":
                self.send_response(HTTPStatus.NO_CONTENT)
                self.end_headers()
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self):  # noqa: N802
            try:
                self._check_sender(api=True)
                if self.path.split("?")[0] != "/api/generate":
                    raise HTTPError(HTTPStatus.NOT_FOUND, "not found")
                # A page elsewhere can POST text/plain with no CORS preflight, never JSON.
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise HTTPError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                    "send the body as Content-Type: application/json")
                if self.headers.get("Transfer-Encoding"):  # http.server cannot read chunks
                    raise HTTPError(HTTPStatus.LENGTH_REQUIRED,
                                    "send the body with a Content-Length, not chunked")
                length = _content_length(self.headers.get_all("Content-Length"), max_body)
                body = self.rfile.read(length)
                self._body_read = True
                self._request_read()
                if len(body) < length:  # the client hung up (or the deadline hung up on it)
                    self.close_connection = True
                    return
                try:
                    req = json.loads(body.decode() if body else "{}", parse_constant=_no_constant)
                except (UnicodeDecodeError, ValueError, RecursionError):
                    raise HTTPError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
                try:
                    out = demo.generate(req)
                except UserError as err:
                    raise HTTPError(HTTPStatus.BAD_REQUEST, str(err)) from None
                except Exception as err:  # a bug, not the request: the page still gets an answer
                    print(f"error: generation failed: {type(err).__name__}: "
                          f"{terminal_safe(err, one_line=True)}", file=sys.stderr, flush=True)
                    raise HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR, "generation failed") from None
            except HTTPError as err:
                return self._refuse(err)
            self._json(HTTPStatus.OK, out)

        def log_message(self, fmt, *args):  # quiet: no line per request
            pass

    return DemoServer((host, int(port)), Handler, max_connections=max_connections)
