"""The canonical post table every source writes, and its per-user parquet cache.

One parquet per user (`<data_dir>/tweets/<handle>.parquet`) plus a JSON sidecar saying where the
posts came from. Every writer goes through `write_posts`: an atomic write (a temp file renamed
into place), a merge by id under the user's lock (`user_lock`), so two imports of one user at once
both land, and a refused `refresh="full"` that would leave far fewer posts than cached (unless
`confirm_shrink`): an empty or truncated answer must not wipe a timeline.
"""

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.files import atomic_path, exclusive, remove_stale_temps, write_error
from huggingtweets.ingest.handles import DID, HANDLE_RULES, identify, platform, validate_handle

# The canonical schema. `text` is as posted, in the X API's convention whatever the platform: & < >
# escaped (cleaning undoes exactly that), full URLs, a repost as "RT @author: text"; cleaning is a
# separate step, so changing it never needs a re-fetch. `content_warning`: Mastodon's, apart.
COLUMNS = {"id": "string", "created_at": "datetime64[us, UTC]", "text": "string",
           "handle": "string", "display_name": "string", "is_retweet": "bool", "is_reply": "bool",
           "is_quote": "bool", "lang": "string", "source": "string", "content_warning": "string",
           "imported_at": "datetime64[us, UTC]"}
FLAGS = ("is_retweet", "is_reply", "is_quote")
# Written by the cache, never taken from an import's values: which import and when last set the
# row's values (old caches have no import time: NaT, unknown).
PROVENANCE = ("source", "imported_at")

MAX_CACHE_NAME = 180  # file names are capped at 255 bytes; leave room for suffixes and temp names

LOCK_TIMEOUT_S = 1800.0  # how long a writer waits for another writer of the same user
SHRINK_RATIO = 0.5  # refresh=full leaving fewer than this share of the cached posts: refused
MAX_POST_CHARS = 100_000  # X long posts reach 25,000 characters; Mastodon instances set their own

AT_URI = re.compile(r"at://(did:[a-z0-9:._-]+)/app\.bsky\.feed\.post/")


def known_did(data_dir: str | Path, handle: str) -> str | None:
    """The DID a Bluesky handle's cached posts belong to (its sidecar, else its own posts' ids),
    or None when nothing is cached: without the network, the cache is all that links the two."""
    if handle.startswith("did:"):
        return handle
    did = read_meta(data_dir, handle).get("did")
    if isinstance(did, str) and DID.fullmatch(did):
        return did.lower()
    path = tweets_path(data_dir, handle)
    if not path.exists():
        return None
    try:
        return _author_did(pd.read_parquet(path, columns=["id", "is_retweet"]))
    except (OSError, ValueError, KeyError):
        return None  # read_posts says what is wrong with it when it is read


def _author_did(df: pd.DataFrame) -> str | None:
    """The DID most of the user's own posts (at://DID/app.bsky.feed.post/...) were made under."""
    own = df.loc[~df["is_retweet"].fillna(False).astype(bool), "id"].astype(str)
    dids = own.str.extract(AT_URI, expand=False).dropna()
    return str(dids.mode().iloc[0]) if len(dids) else None


def distinct_accounts(data_dir: str | Path, handles: list[str]) -> list[str]:
    """`handles` (from `handles.parse_users`), unless a Bluesky DID and a handle whose cached
    posts are that DID's are both in it: a mix would train on that account's posts twice."""
    owner: dict[str, str] = {}
    for handle in handles:
        if identify(handle)[0] != "bluesky" or (did := known_did(data_dir, handle)) is None:
            continue
        if did in owner:
            raise UserError(f"{owner[did]!r} and {handle!r} are one Bluesky account ({did}, as "
                            "its cached posts show); a mix would train on its posts twice: "
                            "name it once")
        owner[did] = handle
    return handles


def cache_name(handle: str) -> str:
    """The name a user's posts are cached under, safe as a file and a W&B artifact name: ASCII
    letters, digits and "_.-", never a leading dot, lower-case like the handle. X handles keep
    their name; the others get a prefix no X handle can have: `bsky-alice.bsky.social`,
    `did-plc-...`, `masto-bob_at_mastodon.social`. Absurdly long names are cut, plus a hash."""
    handle = validate_handle(handle)
    kind = identify(handle)[0]
    if kind == "x":
        name = handle
    elif handle.startswith("did:"):
        name = handle.replace(":", "-")
    elif kind == "bluesky":
        name = "bsky-" + handle
    else:
        user, host = handle.split("@")
        name = f"masto-{user}_at_{host}"
    if len(name) > MAX_CACHE_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name[: MAX_CACHE_NAME - 17]}-{digest}"
    # The regexes above guarantee this; checked again because it is what keeps data/ closed.
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name) or ".." in name:
        raise UserError(f"invalid handle {handle!r}: {HANDLE_RULES}")
    return name


def tweets_path(data_dir: str | Path, handle: str) -> Path:
    """The user's cache: `<data_dir>/tweets/<cache name>.parquet`, or the file an older version
    wrote under the handle's case as typed (`SmithJD.parquet`) while that is the one there."""
    return _on_disk(_cache_file(data_dir, handle, ".parquet"))


def sidecar_path(data_dir: str | Path, handle: str) -> Path:
    return _on_disk(_cache_file(data_dir, handle, ".json"))


def partial_dir(data_dir: str | Path, handle: str) -> Path:
    """Where an interrupted API fetch keeps the pages it already has (see sources/fetching.py)."""
    return _on_disk(Path(data_dir) / "partial" / cache_name(handle))


def _cache_file(data_dir: str | Path, handle: str, suffix: str) -> Path:
    return Path(data_dir) / "tweets" / f"{cache_name(handle)}{suffix}"


def _other_cases(path: Path) -> list[Path]:
    """Entries beside `path` whose names differ from its (lower-case) name only in case, oldest
    first: caches written before handles were normalised to lower case."""
    try:
        names = [n for n in os.listdir(path.parent) if n != path.name and n.lower() == path.name]
    except OSError:
        return []
    return sorted((path.parent / n for n in names), key=lambda p: (p.lstat().st_mtime, p.name))


def _on_disk(path: Path) -> Path:
    if path.exists():
        return path
    others = _other_cases(path)
    return others[-1] if others else path


def _adopt_other_cases(data_dir: str | Path, handle: str) -> None:
    """Under the user's lock: give caches written under another case of the handle the canonical
    name (a rename, atomic); where both exist, merge them (the newer file's values win) into it."""
    path = _cache_file(data_dir, handle, ".parquet")
    for old in _other_cases(path):
        sidecar = old.with_suffix(".json")
        if path.exists() and os.path.samefile(old, path):
            continue  # a file system that ignores case: one file, found under either name
        if not path.exists():
            try:
                if sidecar.exists():
                    os.replace(sidecar, path.with_suffix(".json"))
                os.replace(old, path)
            except OSError as err:
                raise write_error(path, err) from None
            continue
        older, newer = sorted((old, path), key=lambda p: p.stat().st_mtime)
        merged, _ = _merge(_read(older, handle), _read(newer, handle))
        print(f"@{handle}: merged the caches {old.name} and {path.name} (one person) into "
              f"{path.name}", file=sys.stderr)
        meta = _read_meta_file(newer.with_suffix(".json"))
        _store(data_dir, handle, merged, meta.get("source"), meta.get("last_import"))
        for gone in (old, sidecar):
            with suppress(FileNotFoundError):
                gone.unlink()


def how_to_get(handle: str) -> str:
    """How to bring a user's posts into the cache, for error messages."""
    kind = platform(handle)
    if kind in ("bluesky", "mastodon"):
        return f"Fetch them (public, no key needed): `python fetch.py user={handle}`"
    return ("Fetch them from the X API with a bearer token from the X developer portal "
            "(developer.x.com -> your app -> Keys and tokens): `export X_BEARER_TOKEN=...` then "
            f"`python fetch.py user={handle} source=x`; or import your archive: `python fetch.py "
            f"user={handle} source=archive source.path=<your X archive .zip>` (source=csv / "
            "source=jsonl / source=twarc read other exports with source.path=<file>); demo users "
            "(demo_ada, demo_bo, demo_cy) are generated on demand")


def lock_path(data_dir: str | Path, handle: str) -> Path:
    """The user's lock file, beside the journal folder of an API fetch."""
    return Path(data_dir) / "partial" / f".{cache_name(handle)}.lock"


@contextmanager
def user_lock(data_dir: str | Path, handle: str, timeout: float | None = None) -> Iterator[None]:
    """One writer per user at a time, across threads and processes, re-entrant in a thread
    (`files.exclusive`); after `timeout` s a UserError names the holder's pid."""
    timeout = LOCK_TIMEOUT_S if timeout is None else float(timeout)
    with exclusive(lock_path(data_dir, handle), timeout,
                   f"another fetch or import of @{handle}") as first:
        if first:
            _adopt_other_cases(data_dir, handle)
        yield


def to_frame(records: list[dict] | pd.DataFrame, missing: bool = False) -> pd.DataFrame:
    """Normalise records from any source to the canonical columns and dtypes. missing=True keeps
    what the records do not say as missing (NA, flags as nullable booleans): an import's fields it
    does not carry, which a merge must not let erase known values; otherwise a flag not given is
    False."""
    df = pd.DataFrame(records).copy()
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    df = df[list(COLUMNS)].astype({c: kind for c, kind in COLUMNS.items() if kind == "string"})
    if df["id"].isna().any():
        raise UserError("some posts have no id: every post needs an id (map source.columns.id)")
    try:
        created = pd.to_datetime(df["created_at"], utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as err:
        raise UserError(f"some posts have a created_at that is not a time ({err})") from None
    df["created_at"] = created.astype(COLUMNS["created_at"])
    df["imported_at"] = pd.to_datetime(df["imported_at"], utc=True).astype(COLUMNS["imported_at"])
    for col in FLAGS:
        df[col] = df[col].astype("boolean") if missing else df[col].fillna(False).astype(bool)
    df["text"] = df["text"].fillna("")
    # Same-second posts (old archives only know the day) fall back to id order; ids are numbers
    # of varying width, so compare them by length first ("999" < "1000").
    order = df.assign(_w=df["id"].str.len()).sort_values(["created_at", "_w", "id"], kind="stable")
    return order.drop(columns="_w").reset_index(drop=True)


# Times outside these are garbage, whatever a parser makes of them (and pandas' nanosecond
# timestamps end in 2262).
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# A post time this far past our clock is a wrong clock or a forged date, not clock skew: such a
# post is never cached (it would be the "newest" post, the incremental cursor, the validation set).
MAX_FUTURE = timedelta(days=1)


def future_cutoff() -> datetime:
    """Post times after this are in the future."""
    return datetime.now(UTC) + MAX_FUTURE


def parse_time(value) -> datetime | None:
    """A timezone-aware time from an ISO string or a datetime, or None when it is not one."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            try:
                when = pd.Timestamp(value).to_pydatetime()
            except (ValueError, TypeError, OverflowError):
                return None
    else:
        return None
    if not isinstance(when, datetime) or when.tzinfo is None:
        return None if not isinstance(when, datetime) else parse_time(when.replace(tzinfo=UTC))
    try:
        return when if EARLIEST <= when < LATEST else None
    except TypeError:
        return None


def check_record(record, max_chars: int = MAX_POST_CHARS) -> str | None:
    """Why `record` cannot be a canonical post (None: it can); normalises created_at in place."""
    if not isinstance(record, dict):
        return "not an object"
    post_id = record.get("id")
    if isinstance(post_id, bool) or not isinstance(post_id, str | int) or not str(post_id).strip():
        return "no id"
    if not isinstance(record.get("text", ""), str):
        return "text is not text"
    when = parse_time(record.get("created_at"))
    if when is None:
        return "no valid created_at"
    if when > future_cutoff():
        return "dated in the future"
    if len(record.get("text") or "") > max_chars:
        return f"longer than {max_chars:,} characters"
    for col in ("handle", "display_name", "lang", "source", "content_warning"):
        if record.get(col) is not None and not isinstance(record[col], str):
            return f"{col} is not text"
    record["id"] = str(post_id).strip()
    record["created_at"] = when.astimezone(UTC).isoformat()
    return None


def too_long(df: pd.DataFrame, where: str, max_chars: int, rows: pd.Index | None = None) -> None:
    """UserError when any post's text has more than `max_chars` characters (row numbers named)."""
    lengths = df["text"].fillna("").str.len()
    over = lengths > max_chars
    if over.any():
        labels = (rows if rows is not None else df["id"].astype(str))[over.to_numpy()]
        shown = ", ".join(f"{label} ({n:,} characters)" for label, n in
                          zip(list(labels)[:3], lengths[over].tolist()[:3], strict=False))
        raise UserError(f"{where}: {int(over.sum())} post(s) longer than {max_chars:,} "
                        f"characters: {shown}; raise source.max_post_chars=<n> to import them, "
                        "or remove them from the file")


def summary(df: pd.DataFrame) -> dict:
    newest = df.iloc[df["created_at"].argmax()] if len(df) else None
    return {"posts": int(len(df)), "retweets": int(df["is_retweet"].sum()),
            "replies": int(df["is_reply"].sum()), "quotes": int(df["is_quote"].sum()),
            "newest_id": None if newest is None else str(newest["id"]),
            "newest_created_at": None if newest is None else newest["created_at"].isoformat(),
            "oldest_created_at": None if newest is None else df["created_at"].min().isoformat()}


class Shrink(UserError):
    """refresh=full would replace the cache with far fewer posts: refused, the cache is kept."""


def write_posts(data_dir: str | Path, handle: str, posts: pd.DataFrame, source: str,
                refresh: str = "merge", confirm_shrink: bool = False,
                lock_timeout: float | None = None) -> pd.DataFrame:
    """Merge `posts` into the user's cache by id under the user's lock (`_merge`: the newer import
    wins per field, a value it lacks keeps the known one), write it atomically, return it.
    refresh="full" also drops the cached posts this import lacks, unless that would keep fewer
    than SHRINK_RATIO of them: then `Shrink` (unless `confirm_shrink`). The sidecar's
    `last_import` counts the new, changed and unchanged posts (`import_summary`)."""
    if refresh not in ("merge", "full"):
        raise UserError(f"refresh={refresh!r}: use merge (default) or full")
    new = to_frame(posts, missing=True)
    now = pd.Timestamp.now(tz="UTC")
    new["source"] = new["source"].fillna(source)
    new["imported_at"] = now
    with user_lock(data_dir, handle, lock_timeout):  # also adopts caches of another case
        path = _cache_file(data_dir, handle, ".parquet")
        remove_stale_temps(path)
        cached = read_posts(data_dir, handle) if path.exists() else to_frame([])
        kept = new["id"].nunique()
        if refresh == "full" and len(cached) and not confirm_shrink:
            if kept < SHRINK_RATIO * len(cached):
                raise Shrink(f"refresh=full for @{handle} got {kept:,} posts but {len(cached):,} "
                             "are cached; the cache is kept as it was. If the account really has "
                             "only these, replace it with confirm_shrink=true; otherwise run "
                             "without refresh=full to add the new posts")
        merged, counts = _merge(cached, new)
        if refresh == "full":
            keep = merged["id"].isin(new["id"])
            merged, counts["removed"] = merged[keep], int((~keep).sum())
        last = {"source": source, "at": now.isoformat(timespec="seconds"), "posts": kept, **counts}
        return _store(data_dir, handle, merged, source, last)


def _merge(cached: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """`new` (the newer import; a value it does not carry is NA) over `cached`, by id, whatever the
    posts' times: per field the import's value where it has one, else the cached value. A row the
    import changes takes the import's `source` and `imported_at`; an unchanged row keeps its own.
    Returns the rows (in to_frame(missing=True) form) and the new/changed/unchanged counts."""
    old = to_frame(cached, missing=True).drop_duplicates("id", keep="last").set_index("id")
    upd = to_frame(new, missing=True).drop_duplicates("id", keep="last").set_index("id")
    both = upd.index.intersection(old.index)
    was, merged = old.loc[both], upd.loc[both].copy()
    same = pd.Series(True, index=both)
    for col in (c for c in COLUMNS if c != "id" and c not in PROVENANCE):
        merged[col] = merged[col].where(merged[col].notna(), was[col])
        equal = (merged[col] == was[col]).fillna(False).astype(bool)
        same &= equal | (merged[col].isna() & was[col].isna())
    for col in PROVENANCE:
        merged[col] = merged[col].where(~same, was[col])
    rows = pd.concat([old.drop(both), merged, upd.drop(both)]).reset_index()
    counts = {"new": len(upd) - len(both), "changed": int((~same).sum()),
              "unchanged": int(same.sum())}
    return to_frame(rows, missing=True), counts


def _store(data_dir, handle: str, posts: pd.DataFrame, source: str | None,
           last_import: dict | None) -> pd.DataFrame:
    """Write the cache (flags as plain booleans: unknown is False to its readers) and sidecar."""
    posts = to_frame(posts)
    with atomic_path(_cache_file(data_dir, handle, ".parquet")) as tmp:
        posts.to_parquet(tmp, index=False)
    names = posts["display_name"].dropna()
    meta = {"handle": validate_handle(handle),
            "display_name": str(names.iloc[-1]) if len(names) else None, "source": source,
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"), **summary(posts),
            "last_import": last_import}
    if platform(handle) == "bluesky":  # what links a handle to its DID without the network
        meta["did"] = handle if handle.startswith("did:") else _author_did(posts)
    with atomic_path(_cache_file(data_dir, handle, ".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return posts


def import_summary(data_dir: str | Path, handle: str) -> str:
    """"12 new, 3 changed, 285 unchanged" for the user's last import ("" when not recorded)."""
    last = read_meta(data_dir, handle).get("last_import")
    if not isinstance(last, dict):
        return ""
    text = ", ".join(f"{int(last.get(k, 0)):,} {k}" for k in ("new", "changed", "unchanged"))
    return text + (f", {int(last['removed']):,} removed" if last.get("removed") else "")


def read_posts(data_dir: str | Path, handle: str) -> pd.DataFrame:
    path = tweets_path(data_dir, handle)
    if not path.exists():
        raise UserError(f"no posts cached for @{handle} (looked for {path}). {how_to_get(handle)}")
    return _read(path, handle)


def _read(path: Path, handle: str) -> pd.DataFrame:
    """One cache file as canonical posts; caches of older versions lack `imported_at` (NaT)."""
    try:
        table = pd.read_parquet(path)
        missing = [c for c in ("id", "created_at", "text") if c not in table.columns]
        if missing:
            raise ValueError(f"no column {', '.join(missing)}")
        return to_frame(table)
    except (OSError, ValueError, TypeError, KeyError, UserError) as err:
        # pyarrow's ArrowInvalid is a ValueError, its IO errors OSErrors.
        detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise UserError(f"the cache {path} is damaged ({detail}); move it away and import or fetch "
                        f"@{handle} again (e.g. `python fetch.py user={handle}`)") from None


def read_meta(data_dir: str | Path, handle: str) -> dict:
    return _read_meta_file(sidecar_path(data_dir, handle)) or {"handle": handle}


def _read_meta_file(path: Path) -> dict:
    """A sidecar's contents; {} when there is none, a UserError when it is damaged."""
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise UserError(f"the cache's sidecar {path} is damaged ({type(err).__name__}); move it "
                        "away and run again (it is rewritten on the next import)") from None
    if not isinstance(meta, dict):
        raise UserError(f"the cache's sidecar {path} is damaged (not a JSON object); move it "
                        "away and run again (it is rewritten on the next import)")
    return meta
