"""The canonical post table every source writes, and its per-user parquet cache.

One parquet per user (`<data_dir>/tweets/<handle>.parquet`) plus a JSON sidecar with where the
posts came from and what is in them. Every write goes to a temp file in the same folder and is
renamed into place, so a crash never leaves a half-written cache; a re-fetch merges by id.
"""

from __future__ import annotations

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

# The canonical schema. `text` is kept exactly as posted (entities still escaped, URLs in place):
# cleaning is a separate, configurable step, so changing the cleaning never needs a re-fetch.
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
}

# X handles: 1-15 letters, digits or underscores. Nothing else can reach a file name, so no handle
# can escape data/ ("../x", "a/b", "" and "." are all rejected here).
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")


def validate_handle(handle: str) -> str:
    handle = str(handle).strip().removeprefix("@")
    if not X_HANDLE.fullmatch(handle):
        raise UserError(
            f"invalid handle {handle!r}: X handles are 1-15 letters, digits or underscores "
            "(a mix joins handles with '-', e.g. user=alice-bob)"
        )
    return handle


def parse_users(user: str) -> list[str]:
    """`alice-bob-carol` -> ["alice", "bob", "carol"] (validated, duplicates dropped, order kept)."""
    if user is None or str(user).strip() in ("", "???"):
        raise UserError("no user given: pass user=<handle>, or user=a-b-c for a mix")
    handles = [validate_handle(h) for h in str(user).split("-")]
    return list(dict.fromkeys(handles))


def tweets_path(data_dir: str | Path, handle: str) -> Path:
    return Path(data_dir) / "tweets" / f"{validate_handle(handle)}.parquet"


def sidecar_path(data_dir: str | Path, handle: str) -> Path:
    return tweets_path(data_dir, handle).with_suffix(".json")


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
    for col in ("text", "handle", "display_name", "lang", "source"):
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
        raise UserError(
            f"no posts cached for @{handle} (looked for {path}). Import them first, e.g. "
            f"`python fetch.py user={handle} source=archive source.path=<your X archive .zip>` "
            f"or source=csv / source=jsonl with source.path=<file>; "
            "demo users (demo_ada, demo_bo, demo_cy) are generated on demand"
        )
    return to_frame(pd.read_parquet(path))


def read_meta(data_dir: str | Path, handle: str) -> dict:
    path = sidecar_path(data_dir, handle)
    return json.loads(path.read_text()) if path.exists() else {"handle": handle}
