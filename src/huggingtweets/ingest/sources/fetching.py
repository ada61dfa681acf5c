"""The engine every API source runs on: journaled pages, retries, rate limits, a progress bar.

A source (x.py, bluesky.py, mastodon.py) only says how to look an account up, how to fetch one
page given a cursor, and how to turn items into canonical records. This module does the rest:

* **Journal.** Every page is written, as it arrives, to its own file under
  `data/partial/<cache name>/` (temp file + rename, so a page is either all there or absent),
  with the cursor of the next page. When the last page is in, the pages are merged into the
  parquet cache (`posts.write_posts`, atomic too) and the journal is removed. A fetch killed at
  any point and run again replays the journal and goes on from its last cursor, with the same
  "since" marker, so it ends with exactly the posts an uninterrupted fetch gets: merging by id
  makes every replay idempotent.
* **Incremental.** A fetch into an existing cache asks only for posts newer than the newest
  cached one (each source's `since`); `refresh=full` refetches everything and replaces the cache.
* **Faults.** HTTP 429 waits for the reset the server announces (Retry-After, or the platform's
  reset header) with a visible countdown, or, with `on_rate_limit=stop`, stops with a message
  saying when to run the command again. 5xx, timeouts, broken connections and malformed bodies
  are retried with exponential backoff, at most `max_retries` times.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts

JOURNAL_VERSION = 1
RATE_LIMIT_FALLBACK_S = 60.0  # a 429 without any reset header: wait this long
MAX_BACKOFF_S = 60.0
MAX_RATE_LIMIT_WAITS = 50  # consecutive 429s on one request: a server that never lets us in


class RateLimited(Exception):
    """HTTP 429: `until` is the epoch second the limit resets (None: the server did not say)."""

    def __init__(self, until: float | None):
        super().__init__("rate limited")
        self.until = until


class Transient(Exception):
    """A failure worth retrying: 5xx, a timeout, a dropped connection, a malformed body."""


@dataclass
class Page:
    records: list[dict]  # canonical records; created_at as an ISO string (JSON-able)
    next: Any = None  # cursor of the next page; None: there is no next page
    items: int = 0  # how many items the API returned (reposts and all)


@dataclass
class Policy:
    timeout: float = 30.0  # seconds per request
    max_retries: int = 5  # per request, for 5xx / timeouts / malformed bodies
    backoff: float = 2.0  # first retry waits this long, then doubles (capped at a minute)
    on_rate_limit: str = "wait"  # wait: count down to the reset | stop: save and exit
    max_posts: int | None = None  # stop after this many posts (X serves the newest 3,200 anyway)

    def __post_init__(self):
        if self.on_rate_limit not in ("wait", "stop"):
            raise UserError(f"source.on_rate_limit={self.on_rate_limit!r}: use wait or stop")


class Remote:
    """An API source for one account. Subclasses set `name`/`label` and implement the hooks."""

    name = "remote"  # the source name written to the cache's sidecar
    label = "the API"  # the service, for messages: "X", "Bluesky", "Mastodon"

    def __init__(
        self,
        handle: str,
        base_url: str,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 2.0,
        on_rate_limit: str = "wait",
        max_posts: int | None = None,
        progress: bool = True,
    ):
        if handle is None:
            raise UserError(f"source={self.name} fetches one account: pass user=<handle>")
        self.handle = posts.validate_handle(handle)
        self.base_url = str(base_url).rstrip("/")
        self.policy = Policy(float(timeout), int(max_retries), float(backoff), on_rate_limit,
                             None if max_posts is None else int(max_posts))
        self.progress = progress

    # --- what a source implements -------------------------------------------------------------

    def since(self, cached: pd.DataFrame) -> Any:
        """A JSON-able marker of the newest cached post, so a fetch asks only for newer ones."""
        return None

    def start(self, since: Any) -> dict:
        """Look the account up (raising UserError for missing/suspended/protected accounts);
        return JSON-able state that `page` needs (account id, display name, post count...)."""
        return {}

    def page(self, state: dict, cursor: Any, since: Any) -> Page:
        """Fetch one page. Raise RateLimited / Transient / UserError for what went wrong."""
        raise NotImplementedError

    def finish(self, state: dict, records: list[dict], since: Any) -> None:
        """A last check on the whole result (e.g. a locked account that showed nothing)."""


@dataclass
class Result:
    new: pd.DataFrame  # what this fetch brought
    merged: pd.DataFrame  # the cache after merging it
    pages: int = 0
    resumed: bool = False
    waits: int = 0


# --- the journal ------------------------------------------------------------------------------


class Journal:
    """Pages of one unfinished fetch: `state.json` plus `page-000001.json`, `page-000002.json`..."""

    def __init__(self, folder: Path):
        self.folder = folder

    def state(self) -> dict | None:
        try:
            state = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return state if state.get("version") == JOURNAL_VERSION else None

    def begin(self, state: dict) -> None:
        self.discard()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write("state.json", {"version": JOURNAL_VERSION, **state})

    def pages(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.folder.glob("page-*.json"))]

    def add(self, number: int, page: dict) -> None:
        self._write(f"page-{number:06d}.json", page)

    def discard(self) -> None:
        """Remove the journal: renamed away first (atomic), so a kill leaves all of it or none."""
        for old in self.folder.parent.glob(f".trash-{self.folder.name}-*"):
            shutil.rmtree(old, ignore_errors=True)  # left by a kill during an earlier removal
        if self.folder.exists():
            trash = self.folder.with_name(f".trash-{self.folder.name}-{os.getpid()}")
            os.replace(self.folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def _write(self, name: str, data: dict) -> None:
        with posts.atomic_path(self.folder / name) as tmp:
            tmp.write_text(json.dumps(data, ensure_ascii=False))


# --- rate limits ------------------------------------------------------------------------------


def reset_time(headers, now: float | None = None) -> float | None:
    """The epoch second a 429 ends, from whichever header the server sent.

    Retry-After (seconds or an HTTP date, RFC 9110) wins; then X's `x-rate-limit-reset` (epoch
    seconds), Bluesky's `ratelimit-reset` (epoch seconds, or seconds from now in the IETF draft)
    and Mastodon's `x-ratelimit-reset` (an ISO 8601 time). Absolute times are moved by the
    server's clock offset (its Date header), so a skewed clock neither hammers nor oversleeps.
    """
    now = time.time() if now is None else now
    h = {str(k).lower(): str(v).strip() for k, v in dict(headers or {}).items()}
    skew = 0.0
    if "date" in h:
        try:
            skew = now - parsedate_to_datetime(h["date"]).timestamp()
        except (TypeError, ValueError, IndexError):
            skew = 0.0
    if "retry-after" in h:
        value = h["retry-after"]
        try:
            return now + max(0.0, float(value))
        except ValueError:
            try:
                return parsedate_to_datetime(value).timestamp() + skew
            except (TypeError, ValueError, IndexError):
                pass
    for key in ("x-rate-limit-reset", "ratelimit-reset", "x-ratelimit-reset"):
        if key not in h:
            continue
        value = h[key]
        try:
            number = float(value)
        except ValueError:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() + skew
            except ValueError:
                continue
        return number + skew if number > 1e9 else now + max(0.0, number)
    return None


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


# --- progress ---------------------------------------------------------------------------------


class Progress:
    """One progress line per user: pages, posts, rate-limit waits, and the countdown of a wait."""

    def __init__(self, remote: Remote, total: int | None = None):
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.console = Console(stderr=True)
        self.enabled = remote.progress
        self.pages = self.posts = self.waits = 0
        self.status = ""
        self.bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.enabled,
        )
        self.task = self.bar.add_task(
            f"{remote.label} @{remote.handle}", total=total, counts="", status=""
        )

    def __enter__(self):
        self.bar.start()
        self.update()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def update(self, status: str | None = None) -> None:
        if status is not None:
            self.status = status
        counts = f"{self.pages} pages · {self.posts:,} posts" + (
            f" · {self.waits} rate-limit waits" if self.waits else ""
        )
        self.bar.update(self.task, completed=self.posts, counts=counts, status=self.status)

    def set_total(self, total: int | None) -> None:
        self.bar.update(self.task, total=total)

    def note(self, message: str) -> None:
        """A line worth seeing wherever the output goes."""
        if self.enabled:
            self.console.print(message, highlight=False, markup=False)

    def say(self, message: str) -> None:
        """A line that must be seen even where the bar is not drawn (logs, CI, pipes)."""
        if self.enabled and not self.console.is_terminal:
            print(message, file=sys.stderr, flush=True)

    def wait(self, seconds: float, why: str) -> None:
        """Sleep, counting down on the bar."""
        end = time.monotonic() + seconds
        self.say(f"{why}: waiting {_duration(seconds)}")
        while (left := end - time.monotonic()) > 0:
            self.update(f"{why}: resuming in {_duration(left)}")
            time.sleep(min(1.0, left))
        self.update("")


# --- the fetch --------------------------------------------------------------------------------


@contextmanager
def _locked(folder: Path):
    """One fetch per user at a time (parallel sweep jobs may all miss the same user): the others
    wait here, then find the cache written (or resume the same journal)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(f".{folder.name}.lock"), "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(remote: Remote, data_dir: str | Path, refresh: str = "merge",
          missing_only: bool = False) -> Result:
    """Fetch `remote`'s account into the cache (resuming an interrupted fetch), return the result.

    missing_only: do nothing when the cache exists (after waiting for a concurrent fetch).
    """
    if refresh not in ("merge", "full"):
        raise UserError(f"refresh={refresh!r}: use merge (default) or full")
    folder = posts.partial_dir(data_dir, remote.handle)
    with _locked(folder):
        if missing_only and posts.tweets_path(data_dir, remote.handle).exists():
            cached = posts.read_posts(data_dir, remote.handle)
            return Result(new=posts.to_frame([]), merged=cached)
        return _fetch(remote, data_dir, refresh, Journal(folder))


def _fetch(remote: Remote, data_dir, refresh: str, journal: Journal) -> Result:
    result = Result(new=posts.to_frame([]), merged=posts.to_frame([]))
    state = journal.state()
    with Progress(remote) as bar:
        if state is not None and (state.get("source"), state.get("base_url")) != (
            remote.name, remote.base_url
        ):
            bar.note(f"@{remote.handle}: dropping an unfinished fetch from "
                     f"{state.get('source')} at {state.get('base_url')}")
            state = None
        pages = journal.pages() if state is not None else []
        if state is not None:
            refresh, since, account = state["refresh"], state["since"], state["account"]
            result.resumed = True
            bar.note(f"@{remote.handle}: resuming an interrupted fetch ({len(pages)} pages saved)")
        else:
            since = None
            if refresh == "merge" and posts.tweets_path(data_dir, remote.handle).exists():
                cached = posts.read_posts(data_dir, remote.handle)
                since = remote.since(cached) if len(cached) else None
            account = _call(remote, bar, lambda: remote.start(since))
            journal.begin({"source": remote.name, "base_url": remote.base_url,
                           "handle": remote.handle, "refresh": refresh, "since": since,
                           "account": account, "started_at": datetime.now(UTC).isoformat()})

        count = sum(len(p["records"]) for p in pages)
        done = bool(pages) and pages[-1]["last"]
        cursor = pages[-1]["next"] if pages else None
        total = account.get("total") if since is None else None  # unknown for an update
        if total is not None and remote.policy.max_posts is not None:
            total = min(total, remote.policy.max_posts)
        bar.pages, bar.posts = len(pages), count
        bar.set_total(total)
        bar.update("resumed" if result.resumed else "")
        while not done:
            page = _call(remote, bar, lambda: remote.page(account, cursor, since))
            count += len(page.records)
            capped = remote.policy.max_posts is not None and count >= remote.policy.max_posts
            done = page.next is None or capped
            journal.add(len(pages) + 1, {"cursor": cursor, "next": page.next, "last": done,
                                         "items": page.items, "records": page.records})
            pages.append({"records": page.records})
            cursor = page.next
            bar.pages, bar.posts = len(pages), count
            bar.update()
        result.waits = bar.waits

    records = [r for p in journal.pages() for r in p["records"]]
    try:
        remote.finish(account, records, since)
    except UserError:
        journal.discard()  # nothing worth resuming
        raise
    new = posts.to_frame(records) if records else posts.to_frame([])
    if remote.policy.max_posts is not None and len(new) > remote.policy.max_posts:
        new = new.iloc[len(new) - remote.policy.max_posts :]  # the newest max_posts
    result.new = new.drop_duplicates("id", keep="last").reset_index(drop=True)
    result.merged = posts.write_posts(data_dir, remote.handle, result.new, source=remote.name,
                                      refresh=refresh)
    result.pages = len(pages)
    journal.discard()
    return result


def _call(remote: Remote, bar: Progress | None, request):
    """Run one request under the policy: retry transient failures, honour rate limits."""
    policy, attempt, waits = remote.policy, 0, 0
    while True:
        try:
            return request()
        except RateLimited as limited:
            waits += 1
            now = time.time()
            until = limited.until if limited.until is not None else now + RATE_LIMIT_FALLBACK_S
            until = max(until, now + 1.0)  # a reset already past: a short pause, not a hammer
            if policy.on_rate_limit == "stop":
                raise UserError(
                    f"{remote.label} rate limit reached while fetching @{remote.handle}; it resets "
                    f"at {_clock(until)} (in {_duration(until - now)}). Pages fetched so far are "
                    f"saved: run the same command again after that to resume "
                    f"(or set source.on_rate_limit=wait to wait it out)"
                ) from None
            if waits > MAX_RATE_LIMIT_WAITS:
                raise UserError(
                    f"{remote.label} kept answering 'too many requests' ({waits} times in a row) "
                    f"for @{remote.handle}; try again later: the pages fetched so far are saved"
                ) from None
            if bar is not None:
                bar.waits += 1
                bar.wait(until - now, f"{remote.label} rate limit (resets {_clock(until)})")
            else:
                time.sleep(until - now)
        except Transient as err:
            attempt += 1
            if attempt > policy.max_retries:
                raise UserError(
                    f"{remote.label} keeps failing for @{remote.handle}: {err} "
                    f"({attempt} attempts). The pages fetched so far are saved: run the same "
                    f"command again to resume"
                ) from None
            delay = min(policy.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
            why = f"{err}; retry {attempt}/{policy.max_retries}"
            if bar is not None:
                bar.wait(delay, why)
            else:
                time.sleep(delay)


# --- plain HTTP for the sources that need no SDK ----------------------------------------------


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"huggingtweets/{version('huggingtweets')}"
    except PackageNotFoundError:
        return "huggingtweets"


def http_client(timeout: float):
    import httpx

    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        headers={"User-Agent": user_agent(), "Accept": "application/json"},
    )


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or None when the body is not JSON
    headers: dict
    links: dict  # the Link header by rel: {"next": {"url": ...}}


def get_json(client, url: str, params: dict | None = None, label: str = "the API") -> Reply:
    """GET `url`; RateLimited on 429, Transient on 5xx / network trouble / a 2xx that is not JSON.

    Other statuses come back to the caller, which knows what a 404 or 400 means on its platform.
    Nothing here ever prints request headers (where a token would be).
    """
    import httpx

    try:
        response = client.get(url, params={k: v for k, v in (params or {}).items() if v is not None})
    except httpx.TimeoutException:
        raise Transient(f"{label} did not answer within {client.timeout.read}s") from None
    except httpx.TransportError as err:
        raise Transient(f"cannot reach {label} ({type(err).__name__}: {err})") from None
    headers = dict(response.headers)
    if response.status_code == 429:
        raise RateLimited(reset_time(headers))
    if response.status_code >= 500:
        raise Transient(f"{label} answered HTTP {response.status_code} {response.reason_phrase}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if 200 <= response.status_code < 300 and body is None:
        raise Transient(f"{label} sent a response that is not valid JSON")
    return Reply(response.status_code, body, headers, response.links)


def newest_numeric_id(cached: pd.DataFrame) -> str | None:
    """The largest all-digit id in the cache (X and Mastodon ids grow with time)."""
    ids = [i for i in cached["id"].dropna().astype(str) if i.isdigit()]
    return max(ids, key=lambda i: (len(i.lstrip("0")), i.lstrip("0"))) if ids else None
