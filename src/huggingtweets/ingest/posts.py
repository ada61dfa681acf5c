"""The canonical post table every source writes, and its per-user parquet cache.

One parquet per user (`<data_dir>/tweets/<handle>.parquet`) plus a JSON sidecar with where the
posts came from and what is in them. Every write goes to a temp file in the same folder and is
renamed into place, so a crash never leaves a half-written cache; a re-fetch merges by id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from huggingtweets.errors import UserError

# The canonical schema. `text` is kept as posted, in the X API's convention whatever the platform:
# "&", "<" and ">" escaped as &amp; &lt; &gt; (both cleaning presets undo exactly that), links as
# full URLs in place, a repost as "RT @author: text". Cleaning is a separate, configurable step,
# so changing the cleaning never needs a re-fetch. `content_warning` is a Mastodon content warning
# (spoiler text), kept apart from the text it hides; null elsewhere.
COLUMNS = {
    "id": "string",
    "created_at": "datetime64[us, UTC]",
    "text": "string",
    "handle": "string",
    "display_name": "string",
    "is_retweet": "bool",
    "is_reply": "bool",
    "is_quote": "bool",
    "lang": "string",
    "source": "string",
    "content_warning": "string",
}

# Handles, one syntax per platform. Each maps to a cache name made only of ASCII letters, digits
# and "_.-" that never starts with a dot, so nothing a handle contains can escape data/: "../x",
# "a/b", NUL, "" and "." are all rejected before they get near a path.
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A domain: two or more labels, the last (the top-level domain) not starting with a digit.
DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?")
BLUESKY_HANDLE = DOMAIN  # alice.bsky.social, or any domain the user verified
DID = re.compile(rf"did:plc:[a-z2-7]{{24}}|did:web:{DOMAIN.pattern}")
MASTODON_HANDLE = re.compile(
    rf"(?P<user>[A-Za-z0-9_](?:[A-Za-z0-9_.-]{{0,62}}[A-Za-z0-9_])?)@(?P<host>{DOMAIN.pattern})"
)
MAX_DOMAIN = 253  # DNS names are at most 253 characters
MAX_CACHE_NAME = 180  # file names are capped at 255 bytes; leave room for suffixes and temp names
PLATFORMS = ("x", "bluesky", "mastodon")

HANDLE_RULES = (
    "use an X handle (1-15 letters, digits or _), a Bluesky handle (alice.bsky.social) or DID "
    "(did:plc:...), or a Mastodon address (user@instance.social); a mix joins handles with '+' "
    "(e.g. user=alice.bsky.social+bob@mastodon.social) or, for X handles, with '-' (user=alice-bob)"
)


def _normalise(handle: str) -> tuple[str, str] | None:
    """(platform, normalised handle), or None when `handle` is no platform's handle."""
    if X_HANDLE.fullmatch(handle):
        return "x", handle
    if len(handle) > MAX_DOMAIN + 65:
        return None
    if DID.fullmatch(handle):
        return "bluesky", handle
    if BLUESKY_HANDLE.fullmatch(handle) and len(handle) <= MAX_DOMAIN:
        return "bluesky", handle.lower()  # handles are domain names: case-insensitive
    match = MASTODON_HANDLE.fullmatch(handle)
    if match and len(match["host"]) <= MAX_DOMAIN:
        return "mastodon", f"{match['user']}@{match['host'].lower()}"
    return None


def validate_handle(handle: str) -> str:
    """The handle in its normal form (no leading @, domains lower-cased), or a UserError."""
    raw = str(handle).strip()
    found = _normalise(raw.removeprefix("@"))
    if found is None:
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise UserError(f"invalid handle {shown!r}: {HANDLE_RULES}")
    return found[1]


def platform(handle: str) -> str:
    """Where a handle lives: "x", "bluesky" (handles and DIDs) or "mastodon" (user@instance)."""
    return _normalise(validate_handle(handle))[0]


def parse_users(user: str) -> list[str]:
    """`alice-bob-carol` -> ["alice", "bob", "carol"] (validated, duplicates dropped, order kept).

    Bluesky handles contain dots and dashes, so '+' joins a mix when it is there
    (`alice.bsky.social+bob@mastodon.social`); without one, a string that is a whole Bluesky,
    DID or Mastodon handle is one user, and anything else splits on '-' like the original ids.
    """
    if user is None or str(user).strip() in ("", "???"):
        raise UserError("no user given: pass user=<handle>, or user=a-b-c for a mix")
    text = str(user).strip()
    if "+" in text:
        parts = text.split("+")
    elif (found := _normalise(text.removeprefix("@"))) is not None and found[0] != "x":
        parts = [text]
    else:
        parts = text.split("-")
    handles = [validate_handle(h) for h in parts]
    return list(dict.fromkeys(handles))


def cache_name(handle: str) -> str:
    """The name a user's posts are cached under: safe as a file name and as a W&B artifact name.

    Only ASCII letters, digits and "_.-", never a leading dot. X handles keep their name (existing
    caches and model ids stay valid); the other platforms get a prefix no X handle can have:
    `bsky-alice.bsky.social`, `did-plc-...`, `masto-bob_at_mastodon.social` (host names have no
    "_", so the last "_at_" splits it back). Absurdly long names are cut and made unique by a hash.
    """
    handle = validate_handle(handle)
    kind = _normalise(handle)[0]
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
    return Path(data_dir) / "tweets" / f"{cache_name(handle)}.parquet"


def sidecar_path(data_dir: str | Path, handle: str) -> Path:
    return tweets_path(data_dir, handle).with_suffix(".json")


def partial_dir(data_dir: str | Path, handle: str) -> Path:
    """Where an interrupted API fetch keeps the pages it already has (see sources/fetching.py)."""
    return Path(data_dir) / "partial" / cache_name(handle)


def how_to_get(handle: str) -> str:
    """How to bring a user's posts into the cache, for error messages."""
    kind = platform(handle)
    if kind in ("bluesky", "mastodon"):
        return f"Fetch them (public, no key needed): `python fetch.py user={handle}`"
    return (
        f"Fetch them from the X API with a bearer token from the X developer portal "
        f"(developer.x.com -> your app -> Keys and tokens): `export X_BEARER_TOKEN=...` then "
        f"`python fetch.py user={handle} source=x`; or import your archive: "
        f"`python fetch.py user={handle} source=archive source.path=<your X archive .zip>` "
        "(source=csv / source=jsonl / source=twarc read other exports with source.path=<file>); "
        "demo users (demo_ada, demo_bo, demo_cy) are generated on demand"
    )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path`, on failure delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def to_frame(records: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Normalise records from any source to the canonical columns and dtypes."""
    df = pd.DataFrame(records).copy()
    for col in COLUMNS:
        if col not in df:
            df[col] = False if col.startswith("is_") else None
    df = df[list(COLUMNS)]
    df["id"] = df["id"].astype("string")
    if df["id"].isna().any():
        raise UserError("some posts have no id: every post needs an id (map source.columns.id)")
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="mixed").astype(
        COLUMNS["created_at"]
    )
    for col in ("is_retweet", "is_reply", "is_quote"):
        df[col] = df[col].fillna(False).astype(bool)
    for col in ("text", "handle", "display_name", "lang", "source", "content_warning"):
        df[col] = df[col].astype("string")
    df["text"] = df["text"].fillna("")
    # Same-second posts (old archives only know the day) fall back to id order; ids are numbers
    # of varying width, so compare them by length first ("999" < "1000").
    order = df.assign(_w=df["id"].str.len()).sort_values(["created_at", "_w", "id"], kind="stable")
    return order.drop(columns="_w").reset_index(drop=True)


def summary(df: pd.DataFrame) -> dict:
    newest = df.iloc[df["created_at"].argmax()] if len(df) else None
    return {
        "posts": int(len(df)),
        "retweets": int(df["is_retweet"].sum()),
        "replies": int(df["is_reply"].sum()),
        "quotes": int(df["is_quote"].sum()),
        "newest_id": None if newest is None else str(newest["id"]),
        "newest_created_at": None if newest is None else newest["created_at"].isoformat(),
        "oldest_created_at": None if newest is None else df["created_at"].min().isoformat(),
    }


def write_posts(
    data_dir: str | Path, handle: str, posts: pd.DataFrame, source: str, refresh: str = "merge"
) -> pd.DataFrame:
    """Merge `posts` into the user's cache by id (newer fetch wins) and write it atomically.

    refresh="full" replaces the cache instead of merging. Returns the table now on disk.
    """
    if refresh not in ("merge", "full"):
        raise UserError(f"refresh={refresh!r}: use merge (default) or full")
    path = tweets_path(data_dir, handle)
    posts = to_frame(posts)
    if refresh == "merge" and path.exists():
        posts = to_frame(pd.concat([read_posts(data_dir, handle), posts], ignore_index=True))
    posts = posts.drop_duplicates("id", keep="last").reset_index(drop=True)
    with atomic_path(path) as tmp:
        posts.to_parquet(tmp, index=False)
    names = posts["display_name"].dropna()
    meta = {
        "handle": validate_handle(handle),
        "display_name": str(names.iloc[-1]) if len(names) else None,
        "source": source,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **summary(posts),
    }
    with atomic_path(sidecar_path(data_dir, handle)) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return posts


def read_posts(data_dir: str | Path, handle: str) -> pd.DataFrame:
    path = tweets_path(data_dir, handle)
    if not path.exists():
        raise UserError(f"no posts cached for @{handle} (looked for {path}). {how_to_get(handle)}")
    return to_frame(pd.read_parquet(path))


def read_meta(data_dir: str | Path, handle: str) -> dict:
    path = sidecar_path(data_dir, handle)
    return json.loads(path.read_text()) if path.exists() else {"handle": handle}
