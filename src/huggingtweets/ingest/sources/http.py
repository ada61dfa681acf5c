"""HTTP for the API sources: a client; GETs with a deadline per request, a byte cap per response;
the errors they end in; the reset a 429 announces; JSON shape checks. Without a network a fetch
ends at once: a name that does not resolve or a refused connection is one line saying there is no
connection, never a round of backoff. Text from a server reaches the terminal only through
`errors.printable`."""

import errno
import json
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from huggingtweets.errors import UserError, printable

MAX_CLOCK_SKEW_S = 3600.0  # a server Date further off than this is a broken header, not drift
# Offline, a resolver may wait for a nameserver that is not there (glibc: 5 s a try, retried):
# resolving and connecting get this long, so a fetch says it has no connection within seconds.
CONNECT_S = 4.0
REFUSED_RETRY_S = 0.5  # a refused connection is tried once more after this (a server restarting)
MAX_BODY_BYTES = 16 * 2**20  # the default byte cap: a page of 100 posts is a few hundred KB


class Malformed(ValueError):
    """An item or page that is not shaped like the platform's objects (message: what is wrong)."""


def json_object(value, what: str) -> dict:
    """A JSON object where the API has one (absent: empty); anything else is Malformed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


def json_str(value, what: str) -> str | None:
    """A JSON string or null; anything else is Malformed."""
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{what} is not a string")


class RateLimited(Exception):
    """HTTP 429: `until` is the epoch second the limit resets (None: the server did not say)."""

    def __init__(self, until: float | None):
        super().__init__("rate limited")
        self.until = until


class Transient(Exception):
    """A failure worth retrying: 5xx, a timeout, a dropped connection, a malformed body."""


class Unreachable(Transient):
    """No connection to the server: its name does not resolve, it refuses the connection, or the
    network is down. Backoff cannot fix these: a refusal is tried once more, the others not."""

    def __init__(self, message: str, retry_once: bool = False):
        super().__init__(message)
        self.retry_once = retry_once


def unreachable(err: BaseException, url: str) -> Unreachable | None:
    """The Unreachable behind a client library's connection error (httpx, requests and urllib3
    wrap the socket's error in theirs), or None when the connection itself was not the problem."""
    parts = urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    seen, stack = set(), [err]
    while stack:
        cause = stack.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return Unreachable(f"cannot resolve the name {host}")
        if isinstance(cause, ConnectionRefusedError):
            return Unreachable(f"{where} refused the connection", retry_once=True)
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.ENETDOWN,
                                                          errno.EHOSTUNREACH):
            return Unreachable(f"{where} is unreachable ({os.strerror(cause.errno)})")
        reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError keeps it here
        stack += [cause.__cause__, cause.__context__,
                  reason if isinstance(reason, BaseException) else None,
                  *(a for a in cause.args if isinstance(a, BaseException))]
    return None


def resume_hint(pages: int) -> str:
    """What to do after a failure: resume the saved pages, or (none saved) simply try again."""
    if pages:
        saved = "1 page fetched so far is" if pages == 1 else f"{pages:,} pages fetched so far are"
        return f"the {saved} saved: run the same command again to resume"
    return "run the same command again"


def no_connection(label: str, err: Unreachable, pages: int = 0) -> UserError:
    return UserError(f"no connection to {label} ({err}): check that this machine is online "
                     f"(and source.base_url), then {resume_hint(pages)}")


def _proxied(url: str) -> bool:
    """Does a proxy from the environment carry requests to `url`? (The proxy resolves its name.)"""
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    return (bool(proxies.get(parts.scheme) or proxies.get("all"))
            and not urllib.request.proxy_bypass(parts.hostname or ""))


def check_connection(url: str, label: str, seconds: float = CONNECT_S) -> None:
    """Resolve `url`'s host and open a connection to it within `seconds` in all, else one line
    that there is no connection. Libraries bound the connect but not the name lookup, which an
    offline resolver can stretch past any timeout."""
    parts = urlsplit(url)
    if not parts.hostname or _proxied(url):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + seconds
    for attempt in (1, 2):
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            bounded(lambda: socket.create_connection((parts.hostname, port), left).close(),
                    left, label)
            return
        except (Transient, TimeoutError):
            err = Unreachable(f"{parts.hostname}:{port} was not reached within {seconds:g}s")
        except OSError as error:
            err = unreachable(error, url)
            if err is None:
                return  # not a connection problem: the request will say what it is
        if not (err.retry_once and attempt == 1):
            raise no_connection(label, err) from None
        time.sleep(REFUSED_RETRY_S)


def bounded(request, seconds: float, what: str):
    """Run `request` with a deadline over all of it: past `seconds`, Transient. (Libraries time
    each read, so a server sending a byte a second never times out.) The worker thread is
    abandoned at the deadline; its own reads check the same deadline, so it ends soon after."""
    box: dict = {}
    finished = threading.Event()

    def run():
        try:
            box["value"] = request()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err
        finally:
            finished.set()

    threading.Thread(target=run, daemon=True, name="huggingtweets-request").start()
    if not finished.wait(seconds):
        raise Transient(f"{what} did not finish a request within {seconds:g}s (source.timeout)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def reset_time(headers, now: float | None = None) -> float | None:
    """The epoch second a 429 ends, from whichever header the server sent: Retry-After (seconds
    or an HTTP date) wins, then X's `x-rate-limit-reset` (epoch seconds), Bluesky's
    `ratelimit-reset` (epoch seconds, or seconds from now) and Mastodon's `x-ratelimit-reset` (ISO
    8601). Absolute times are moved by the server's clock offset (its Date header)."""
    now = time.time() if now is None else now
    h = {str(k).lower(): str(v).strip() for k, v in dict(headers or {}).items()}
    skew = now - (_epoch(h["date"], http=True) or now) if "date" in h else 0.0
    if not math.isfinite(skew) or abs(skew) > MAX_CLOCK_SKEW_S:
        skew = 0.0  # a Date hours off is a broken header, not a clock to correct for

    def sane(epoch: float) -> float | None:  # nan, inf, 1e300: no reset we can use
        return epoch if math.isfinite(epoch) and abs(epoch) < 1e11 else None

    for key in ("retry-after", "x-rate-limit-reset", "ratelimit-reset", "x-ratelimit-reset"):
        if key not in h:
            continue
        try:
            number = float(h[key])
        except ValueError:
            when = _epoch(h[key], http=key == "retry-after")
            found = None if when is None else sane(when + skew)
            if when is not None and key == "retry-after":
                return found
        else:
            # nan first: max(0.0, nan) is 0.0, which would hammer the server
            relative = key == "retry-after" or number <= 1e9
            found = (sane(now + max(0.0, number) if relative else number + skew)
                     if math.isfinite(number) else None)
        if found is not None:
            return found
    return None


def _epoch(value: str, http: bool) -> float | None:
    """An HTTP date (`http`) or an ISO 8601 time as epoch seconds; None when it is neither."""
    try:
        if http:
            return parsedate_to_datetime(value).timestamp()
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def http_client(timeout: float):
    from importlib.metadata import PackageNotFoundError, version

    import httpx

    try:
        agent = f"huggingtweets/{version('huggingtweets')}"
    except PackageNotFoundError:
        agent = "huggingtweets"
    # httpx logs each request at INFO, with the server's reason phrase: the progress bar says
    # what happened, and a log level chosen by the user still gets lines made printable.
    logger = logging.getLogger("httpx")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    if not any(isinstance(f, Printable) for f in logger.filters):
        logger.addFilter(Printable())
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_S)),
                        follow_redirects=True,
                        headers={"User-Agent": agent, "Accept": "application/json"})


class Printable(logging.Filter):
    """Make every record of the logger it is attached to printable (servers' words in it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage(), keep_newlines=True), None
        return True


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or None when the body is not JSON
    headers: dict
    links: dict  # the Link header by rel: {"next": {"url": ...}}


class TooLarge(UserError):
    """A response body over source.max_body_bytes: not read further, not retried."""


def too_large(label: str, limit: int) -> TooLarge:
    return TooLarge(f"{label} sent a response over {limit:,} bytes (source.max_body_bytes); "
                    "stopped reading it. If the server is right, raise source.max_body_bytes")


def read_capped(chunks, limit: int, deadline: float, label: str, length: str | None) -> bytes:
    """The body from (decoded) chunks, stopping past `limit` bytes (or a Content-Length over it)
    or the deadline."""
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise too_large(label, limit)
    body, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(label, limit)
        body.append(chunk)
        if time.monotonic() > deadline:
            raise Transient(f"{label} did not finish a request in time (source.timeout)")
    return b"".join(body)


def get_json(client, url: str, params: dict | None = None, label: str = "the API",
             max_bytes: int = MAX_BODY_BYTES) -> Reply:
    """GET `url`: RateLimited on 429, Transient on 5xx, network trouble or a 2xx that is not JSON,
    other statuses to the caller. The body is cut at `max_bytes` (decoded: a gzip bomb too) and at
    the client's timeout over the whole request; request headers (a token) are never printed."""
    import httpx

    deadline = time.monotonic() + (client.timeout.read or 30.0)
    try:
        with client.stream("GET", url, params={k: v for k, v in (params or {}).items()
                                               if v is not None}) as response:
            data = read_capped(response.iter_bytes(), max_bytes, deadline, label,
                               response.headers.get("content-length"))
    except httpx.TimeoutException:
        raise Transient(f"{label} did not answer within {client.timeout.read}s") from None
    except (httpx.TransportError, httpx.DecodingError) as err:
        raise (unreachable(err, url) or Transient(
            f"cannot reach {label} ({type(err).__name__}: {printable(err, limit=200)})")) from None
    headers = dict(response.headers)
    if response.status_code == 429:
        raise RateLimited(reset_time(headers))
    if response.status_code >= 500:
        raise Transient(f"{label} answered HTTP {response.status_code} "
                        f"{printable(response.reason_phrase, limit=100)}")
    try:
        body = json.loads(data) if data else None
    except (ValueError, RecursionError):
        body = None
    if 200 <= response.status_code < 300 and body is None:
        raise Transient(f"{label} sent a response that is not valid JSON")
    return Reply(response.status_code, body, headers, response.links)
