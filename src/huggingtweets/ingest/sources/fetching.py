"""The engine every API source runs on: journaled pages, retries, rate limits, a progress bar.

A source (x.py, bluesky.py, mastodon.py) says how to look an account up, fetch one page given a
cursor and turn items into records; this module does the rest, over http.py (docs/data.md, "How a
fetch behaves"): each page is validated (`posts.check_record`) and journaled atomically with its cursor
under `data/partial/`, so a killed fetch resumes with exactly the posts of an uninterrupted one,
and a journal that no longer reads is set aside, never replayed or deleted; a cache is updated
incrementally (`since`); 429s wait for the announced reset up to `max_wait`, other faults are
retried with backoff; and every fetch ends: http.py's bounds, a page cap, no repeated cursor.
"""

import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

import huggingtweets.ingest.sources.http as http  # not via sources/__init__, which imports us
from huggingtweets.errors import UserError, printable
from huggingtweets.files import atomic_path
from huggingtweets.ingest import posts
from huggingtweets.ingest.handles import validate_handle

JOURNAL_VERSION = 1
RATE_LIMIT_FALLBACK_S = 60.0  # a 429 without any reset header: wait this long
MAX_BACKOFF_S = 60.0
MAX_RATE_LIMIT_WAITS = 50  # consecutive 429s on one request: a server that never lets us in

# Defaults of the bounds (conf/source/{x,bluesky,mastodon}.yaml set them too).


class Unreadable(Exception):
    """A journal that does not read back (damaged, or from another version)."""


@dataclass
class Page:
    records: list[dict]  # canonical records; created_at as an ISO string (JSON-able)
    next: Any = None  # cursor of the next page; None: there is no next page
    items: int = 0  # how many items the API returned (reposts and all)
    rejected: Counter = field(default_factory=Counter)  # items left out, by reason


def parse_items(items: list, parse) -> tuple[list[dict], Counter]:
    """`parse` each item of a page into a record; an item it cannot read is counted, not fatal:
    one odd post (or a server's garbage) must neither crash the fetch nor stop it for good."""
    records, rejected = [], Counter()
    for item in items:
        if not isinstance(item, dict):
            rejected["not an object"] += 1
            continue
        try:
            record = parse(item)
        except (http.Malformed, KeyError, TypeError, AttributeError, ValueError):
            rejected["malformed item"] += 1
            continue
        if record is not None:
            records.append(record)
    return records, rejected


def validate(records: list, max_chars: int) -> tuple[list[dict], Counter]:
    """The records that are canonical posts (`posts.check_record`), and the others by reason."""
    whys = [posts.check_record(record, max_chars) for record in records]
    kept = [record for record, why in zip(records, whys, strict=True) if why is None]
    rejected = Counter(why for why in whys if why is not None)
    try:
        posts.to_frame(kept)
    except UserError as err:
        raise http.Transient(f"a page that does not parse into posts ({err})") from None
    return kept, rejected


@dataclass(kw_only=True)
class Policy:
    """An API source's bounds: conf/source/api/bounds.yaml holds the values and their reasons,
    schema.ApiSource their types (checked as Hydra composes); here only what no type says."""
    timeout: float  # seconds per request, the whole request (a deadline, not per read)
    max_retries: int  # per request, for 5xx / timeouts / malformed bodies
    backoff: float  # first retry waits this long, then doubles (capped at a minute)
    on_rate_limit: str  # wait: count down to the reset | stop: save and exit
    max_posts: int | None  # stop after this many posts (None: all the server gives)
    max_pages: int  # pages per fetch
    max_wait: float  # the longest rate-limit wait; past it: save and stop
    max_body_bytes: int  # bytes per response body; past it: stop reading
    max_post_chars: int  # longer posts are left out (and counted)

    def __post_init__(self):
        for name in ("timeout", "max_pages", "max_wait", "max_body_bytes", "max_post_chars"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise UserError(f"source.{name}={value!r}: use a positive number")


class Remote:
    """An API source for one account. Subclasses set `name`/`label` and implement the hooks."""

    name = "remote"  # the source name written to the cache's sidecar
    label = "the API"  # the service, for messages: "X", "Bluesky", "Mastodon"

    def __init__(self, handle: str, base_url: str, progress: bool, **policy):
        """`policy`: Policy's fields (timeout, max_retries, ..., max_post_chars)."""
        if handle is None:
            raise UserError(f"source={self.name} fetches one account: pass user=<handle>")
        self.handle = validate_handle(handle)
        self.base_url = str(base_url).rstrip("/")
        self.policy = Policy(**policy)
        self.progress = progress

    def since(self, cached: pd.DataFrame) -> Any:
        """A JSON-able marker of the newest cached post, so a fetch asks only for newer ones."""
        return None

    def start(self, since: Any) -> dict:
        """Look the account up (UserError: missing, suspended...); JSON-able state for `page`."""
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
    resumed: bool = False
    notes: list[str] = field(default_factory=list)  # the warnings this fetch printed


@dataclass
class Journal:
    """Pages of one unfinished fetch: `state.json` plus `page-000001.json`, `page-000002.json`..."""

    folder: Path

    def state(self) -> dict | None:
        """The journal's state; None without a journal; Unreadable when it does not read back."""
        if not self.folder.exists():
            return None
        if not (self.folder / "state.json").exists() and not any(self.folder.glob("page-*")):
            self.discard()  # killed between creating the folder and writing into it
            return None
        try:
            state = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError) as err:
            raise Unreadable(f"state.json: {type(err).__name__}") from None
        if not isinstance(state, dict) or state.get("version") != JOURNAL_VERSION:
            raise Unreadable("state.json is not a journal of this version")
        if not {"source", "base_url", "refresh", "since", "account"} <= set(state):
            raise Unreadable("state.json lacks keys")
        if not isinstance(state["account"], dict):
            raise Unreadable("state.json has no account")
        return state

    def begin(self, state: dict) -> None:
        self.discard()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write("state.json", {"version": JOURNAL_VERSION, **state})

    def pages(self, max_chars: int = posts.MAX_POST_CHARS) -> list[dict]:
        """The journaled pages, each checked again (a journal from before validation, or a
        damaged one, must not reach the cache): Unreadable when one is not right."""
        pages = []
        for number, path in enumerate(sorted(self.folder.glob("page-*.json")), start=1):
            try:
                page = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise Unreadable(f"{path.name}: {type(err).__name__}") from None
            if (not isinstance(page, dict) or path.name != f"page-{number:06d}.json"
                    or not isinstance(page.get("records"), list) or "next" not in page
                    or not isinstance(page.get("last"), bool)):
                raise Unreadable(f"{path.name} is not a journal page")
            for record in page["records"]:
                why = posts.check_record(record, max_chars)
                if why is not None:
                    raise Unreadable(f"{path.name} holds a post that is {why}")
            pages.append(page)
        return pages

    def set_aside(self) -> Path:
        """Rename the journal out of the way (kept for a look, never replayed); its new path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.folder.with_name(f"{self.folder.name}.set-aside-{stamp}-{os.getpid()}")
        os.replace(self.folder, target)
        return target

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
        with atomic_path(self.folder / name) as tmp:  # a full disk: one line naming it
            tmp.write_text(json.dumps(data, ensure_ascii=False))




def _clock(epoch: float) -> str:
    try:
        when = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, ValueError, OSError):
        return "an unknown time"
    same_day = abs(epoch - time.time()) < 20 * 3600
    return when.strftime("%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    if minutes < 48 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes // (24 * 60):,}d"


class Progress:
    """One progress line per user: pages, posts, rate-limit waits, and the countdown of a wait."""

    def __init__(self, remote: Remote):
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.console = Console(stderr=True)
        self.enabled = remote.progress
        self.pages = self.posts = self.waits = 0
        self.notes: list[str] = []
        self.status = ""
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(),
                       TextColumn("{task.fields[counts]}"), TextColumn("{task.fields[status]}"),
                       TimeElapsedColumn(), console=self.console, disable=not self.enabled)
        self.task = self.bar.add_task(f"{remote.label} @{remote.handle}", counts="", status="")

    def __enter__(self):
        self.bar.start()
        self.update()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    # Every line below may carry a server's words (a reason phrase, an error body): shown only
    # through printable, so no escape sequence reaches the terminal.
    def update(self, status: str | None = None, total: int | None = None) -> None:
        self.status = self.status if status is None else printable(status)
        waits = f" · {self.waits} rate-limit waits" if self.waits else ""
        self.bar.update(self.task, total=total, completed=self.posts, status=self.status,
                        counts=f"{self.pages} pages · {self.posts:,} posts{waits}")

    def note(self, message: str) -> None:
        """A line worth seeing wherever the output goes."""
        message = printable(message)
        if self.enabled:
            self.console.print(message, highlight=False, markup=False)

    def warn(self, message: str) -> None:
        """A warning, always shown (stderr, above the bar when there is one), and recorded."""
        message = printable(message)
        self.notes.append(message)
        if self.enabled:
            self.console.print(f"warning: {message}", highlight=False, markup=False)
        else:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def wait(self, seconds: float, why: str) -> None:
        """Sleep, counting down on the bar."""
        why = printable(why)
        end = time.monotonic() + seconds
        if self.enabled and not self.console.is_terminal:  # no bar drawn: logs, CI, pipes
            print(f"{why}: waiting {_duration(seconds)}", file=sys.stderr, flush=True)
        while (left := end - time.monotonic()) > 0:
            self.update(f"{why}: resuming in {_duration(left)}")
            time.sleep(min(1.0, left))
        self.update("")


def fetch(remote: Remote, data_dir: str | Path, refresh: str = "merge",
          missing_only: bool = False, confirm_shrink: bool = False,
          lock_timeout: float | None = None) -> Result:
    """Fetch `remote`'s account into the cache (resuming an interrupted fetch), return the result.
    missing_only: do nothing when the cache exists (after waiting for a concurrent fetch)."""
    if refresh not in ("merge", "full"):
        raise UserError(f"refresh={refresh!r}: use merge (default) or full")
    # One fetch per user at a time (sweep jobs may all miss the same user): the others wait here,
    # then find the cache written. write_posts re-enters the same lock.
    with posts.user_lock(data_dir, remote.handle, lock_timeout):
        if missing_only and posts.tweets_path(data_dir, remote.handle).exists():
            cached = posts.read_posts(data_dir, remote.handle)
            return Result(new=posts.to_frame([]), merged=cached)
        # Offline, say so now: not after a round of retries, nor as a failure of the fetch.
        http.check_connection(remote.base_url, remote.label)
        journal = Journal(posts.partial_dir(data_dir, remote.handle))
        return _fetch(remote, data_dir, refresh, journal, confirm_shrink)


def _cursor_key(cursor) -> str:
    return json.dumps(cursor, sort_keys=True, default=str)


def _fetch(remote: Remote, data_dir, refresh: str, journal: Journal,
           confirm_shrink: bool = False) -> Result:
    policy = remote.policy
    with Progress(remote) as bar:
        try:
            state = journal.state()
            pages = journal.pages(policy.max_post_chars) if state is not None else []
        except Unreadable as err:
            moved = journal.set_aside()
            bar.warn(f"@{remote.handle}: the unfinished fetch saved in {journal.folder} does not "
                     f"read back ({err}); it is set aside as {moved} and the fetch starts over")
            state, pages = None, []
        if state is not None and (state.get("source"), state.get("base_url"),
                                  state["refresh"]) != (remote.name, remote.base_url, refresh):
            bar.note(f"@{remote.handle}: dropping an unfinished {state['refresh']} fetch from "
                     f"{state.get('source')} at {state.get('base_url')}")
            state, pages = None, []
        resumed = state is not None
        if resumed:
            refresh, since, account = state["refresh"], state["since"], state["account"]
            bar.note(f"@{remote.handle}: resuming an interrupted fetch ({len(pages)} pages saved)")
        else:
            since = None
            if refresh == "merge" and posts.tweets_path(data_dir, remote.handle).exists():
                cached = posts.read_posts(data_dir, remote.handle)
                # A post dated in the future (cached before those were left out) would be the
                # "newest" one: every later fetch would think it reached the cache on page one.
                cached = cached[cached["created_at"] <= posts.future_cutoff()]
                since = remote.since(cached) if len(cached) else None
            account = _call(remote, bar, lambda: remote.start(since))
            journal.begin({"source": remote.name, "base_url": remote.base_url,
                           "handle": remote.handle, "refresh": refresh, "since": since,
                           "account": account, "started_at": datetime.now(UTC).isoformat()})

        count = sum(len(p["records"]) for p in pages)
        done = bool(pages) and pages[-1]["last"]
        cursor = pages[-1]["next"] if pages else None
        seen = {_cursor_key(p.get("cursor")) for p in pages}  # cursors already asked for
        rejected = sum((Counter(p.get("rejected") or {}) for p in pages), Counter())
        total = account.get("total") if since is None else None  # unknown for an update
        if total is not None and policy.max_posts is not None:
            total = min(total, policy.max_posts)
        bar.pages, bar.posts = len(pages), count
        bar.update("resumed" if resumed else "",
                   total if isinstance(total, int) and total >= 0 else None)
        while not done:
            page = _call(remote, bar, lambda: _checked(remote, account, cursor, since))
            seen.add(_cursor_key(cursor))
            nxt = page.next
            if nxt is not None and _cursor_key(nxt) in seen:
                bar.warn(f"{remote.label} sent a page cursor it had sent before ({str(nxt)[:40]!r}) "
                         f"for @{remote.handle}: following it would loop forever, so the fetch "
                         f"ends here with the {count + len(page.records):,} posts so far")
                nxt = None
            elif nxt is not None and len(pages) + 1 >= policy.max_pages:
                bar.warn(f"@{remote.handle}: stopped after {policy.max_pages:,} pages "
                         f"(source.max_pages) with {count + len(page.records):,} posts; raise "
                         f"source.max_pages and run with refresh=full to fetch further back")
                nxt = None
            count += len(page.records)
            rejected.update(page.rejected)
            done = nxt is None or (policy.max_posts is not None and count >= policy.max_posts)
            journal.add(len(pages) + 1, {"cursor": cursor, "next": nxt, "last": done,
                                         "items": page.items, "records": page.records,
                                         "rejected": dict(page.rejected)})
            pages.append({"records": page.records})
            cursor = nxt
            bar.pages, bar.posts = len(pages), count
            bar.update()
        if rejected:
            reasons = ", ".join(f"{n:,} {why}" for why, n in rejected.most_common())
            bar.warn(f"@{remote.handle}: left out {sum(rejected.values()):,} item(s) of "
                     f"{remote.label}'s answers that are not valid posts ({reasons})")

    records = [r for p in journal.pages(policy.max_post_chars) for r in p["records"]]
    try:
        remote.finish(account, records, since)
    except UserError:
        journal.discard()  # nothing worth resuming
        raise
    new = posts.to_frame(records)
    if policy.max_posts is not None and len(new) > policy.max_posts:
        new = new.iloc[len(new) - policy.max_posts :]  # the newest max_posts
    new = new.drop_duplicates("id", keep="last").reset_index(drop=True)
    # A refused shrink keeps the journal: confirm_shrink=true then replays it, no refetch.
    merged = posts.write_posts(data_dir, remote.handle, new, source=remote.name,
                               refresh=refresh, confirm_shrink=confirm_shrink)
    journal.discard()
    return Result(new, merged, resumed, bar.notes)


def _checked(remote: Remote, account: dict, cursor, since) -> Page:
    """One page, parsed and validated: what is journaled is only ever canonical posts."""
    page = remote.page(account, cursor, since)
    records, rejected = validate(page.records, remote.policy.max_post_chars)
    return Page(records, next=page.next, items=page.items, rejected=page.rejected + rejected)




def _call(remote: Remote, bar: Progress, request):
    """Run one request under the policy: retry transient failures, honour rate limits."""
    policy, attempt, waits, refused = remote.policy, 0, 0, 0
    while True:
        try:
            return http.bounded(request, policy.timeout, remote.label)
        except http.TooLarge as err:  # not retried: it would be again
            raise http.TooLarge(f"{err}; {http.resume_hint(bar.pages)}") from None
        except http.Unreachable as err:  # retrying with backoff would only delay saying so
            refused += 1
            if not (err.retry_once and refused == 1):
                raise http.no_connection(remote.label, err, bar.pages) from None
            bar.wait(min(policy.backoff, http.REFUSED_RETRY_S), f"{err}; trying once more")
        except http.RateLimited as limited:
            waits += 1
            now = time.time()
            until = limited.until if limited.until is not None else now + RATE_LIMIT_FALLBACK_S
            until = max(until, now + 1.0)  # a reset already past: a short pause, not a hammer
            stop = policy.on_rate_limit == "stop"
            if stop or until - now > policy.max_wait:
                why = "" if stop else f", longer than source.max_wait={policy.max_wait:g}s"
                hint = " (or set source.on_rate_limit=wait to wait it out)" if stop else ""
                raise UserError(f"{remote.label} rate limit reached while fetching "
                                f"@{remote.handle}; it resets at {_clock(until)} (in "
                                f"{_duration(until - now)}{why}); "
                                f"{http.resume_hint(bar.pages)} after that{hint}") from None
            if waits > MAX_RATE_LIMIT_WAITS:
                raise UserError(f"{remote.label} kept answering 'too many requests' "
                                f"({waits} times in a row) for @{remote.handle}; try again "
                                f"later: {http.resume_hint(bar.pages)}") from None
            bar.waits += 1
            bar.wait(until - now, f"{remote.label} rate limit (resets {_clock(until)})")
        except http.Transient as err:
            attempt += 1
            if attempt > policy.max_retries:
                raise UserError(f"{remote.label} keeps failing for @{remote.handle}: "
                                f"{err} ({attempt} attempts); {http.resume_hint(bar.pages)}"
                                ) from None
            bar.wait(min(policy.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S),
                     f"{err}; retry {attempt}/{policy.max_retries}")




def newest_numeric_id(cached: pd.DataFrame) -> str | None:
    """The largest all-digit id in the cache (X and Mastodon ids grow with time)."""
    ids = [i for i in cached["id"].dropna().astype(str) if i.isdigit()]
    return max(ids, key=lambda i: (len(i.lstrip("0")), i.lstrip("0"))) if ids else None
