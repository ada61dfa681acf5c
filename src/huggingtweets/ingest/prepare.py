"""The prepare step: every user of a mix cached (fetched when missing and a source can), cleaned,
split into train and validation, with the data table. train.py calls `prepare` before torch is
imported (a missing user is said in a second); the DataModule only reads what it returns. The
split is cached by the raw cache's bytes, the cleaning code and the settings, so every run after
the first (every job of a sweep) skips reading and cleaning the posts.
"""

import contextlib
import functools
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.files import atomic_path
from huggingtweets.ingest import clean as cleaning
from huggingtweets.ingest import posts
from huggingtweets.ingest.handles import parse_users


@dataclass
class Prepared:
    """Each user's cleaned train and validation tweets, data table, sidecar meta and cache key."""

    handles: list[str]
    train: dict[str, pd.DataFrame] = field(default_factory=dict)
    val: dict[str, pd.DataFrame] = field(default_factory=dict)
    tables: dict[str, dict] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    raw_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def train_texts(self) -> list[str]:
        return [t for h in self.handles for t in self.train[h]["text"]]


def prepare(user: str, clean: Mapping, data_dir: str | Path = "data", val_share: float = 0.1,
            split: str = "time", seed: int = 1234, source=None, quiet: bool = False,
            **_training_keys) -> Prepared:
    """Prepared posts for `user` (a handle or a mix); `source` (a source config node) fetches the
    users not cached yet. Takes the whole `data` node: the DataModule's keys are ignored."""
    clean = dict(clean)
    data_dir = Path(data_dir)
    handles = posts.distinct_accounts(data_dir, parse_users(user))
    if source is not None:
        fetch_missing(handles, data_dir, source)
    out = Prepared(handles)
    for h in handles:
        raw_path = posts.tweets_path(data_dir, h)
        if not raw_path.exists():
            posts.read_posts(data_dir, h)  # raises: says how to provide this user's posts
        key = hashlib.sha256(raw_path.read_bytes())
        key.update(_code_key().encode())  # a new version of the cleaning code: a new key
        key.update(json.dumps([clean, val_share, split, seed], sort_keys=True, default=str).encode())
        key = out.keys[h] = key.hexdigest()[:20]
        # Arrow IPC, uncompressed: read back in ~4 ms for 30k tweets where parquet took ~11
        path = data_dir / "cache" / f"split-{key}.arrow"
        cached = _read_split(path, path.with_suffix(".json"))
        if cached:
            out.tables[h], out.train[h], out.val[h] = cached
        else:
            cleaned = cleaning.clean_posts(posts.read_posts(data_dir, h), clean)
            out.tables[h] = cleaned.table
            cleaning.check_enough(cleaned, h, int(clean.get("min_chars", 0)))
            train, val = split_tweets(cleaned.posts, val_share, split, seed, h)
            out.train[h], out.val[h] = train.reset_index(drop=True), val.reset_index(drop=True)
            # The table first: a crash between the two writes leaves no .arrow, a cache miss.
            with atomic_path(path.with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps({"table": cleaned.table, "n_train": len(out.train[h])}))
            both = pd.concat([out.train[h], out.val[h]], ignore_index=True)
            with atomic_path(path) as tmp:
                both.to_feather(tmp, compression="uncompressed")
        out.meta[h] = posts.read_meta(data_dir, h)
        out.raw_paths[h] = raw_path
    if not quiet:
        cleaning.print_table(out.tables, title="Data")
    return out


def fetch_missing(handles: list[str], data_dir: Path, source) -> None:
    """Fetch (or generate) each user not cached yet with `source`; a user no source can provide
    is left missing: prepare() then says how to provide the posts."""
    from huggingtweets.ingest import sources

    for h in handles:
        if not posts.tweets_path(data_dir, h).exists():
            with contextlib.suppress(sources.NoSource):
                sources.fetch_user(source, h, data_dir, missing_only=True)


def split_tweets(df: pd.DataFrame, val_share: float, how: str, seed: int, handle: str):
    """Return (train, val) frames. `time`: the newest share is validation (no leakage from the
    future into training, the honest choice for a timeline); `random`: a seeded shuffle."""
    n_val = max(1, round(len(df) * val_share))
    if n_val >= len(df):
        raise UserError(f"@{handle}: {len(df)} tweets kept is too few to split off a validation set")
    if how == "time":
        df = df.sort_values(["created_at", "id"], kind="stable")
    elif how == "random":
        rng = np.random.default_rng([seed, zlib.crc32(handle.encode())])
        df = df.iloc[rng.permutation(len(df))]
    else:
        raise UserError(f"data.split={how!r}: use time or random")
    return df.iloc[:-n_val], df.iloc[-n_val:]


@functools.cache
def _code_key() -> str:
    """The code that reads, cleans and splits posts, and pandas' version: an upgrade, a new key."""
    h = hashlib.sha256(pd.__version__.encode())
    for module in (posts, cleaning, __file__):
        h.update(Path(getattr(module, "__file__", module)).read_bytes())
    return h.hexdigest()


def _read_split(path: Path, table_path: Path):
    """(table, train, val) from the cleaned-split cache; None when missing or unreadable."""
    if not (path.exists() and table_path.exists()):
        return None
    try:
        both = pd.read_feather(path)
        meta = json.loads(table_path.read_text())
        n_train = int(meta["n_train"])
        return meta["table"], both.iloc[:n_train], both.iloc[n_train:].reset_index(drop=True)
    except Exception as err:
        print(f"rebuilding the cleaned-posts cache {path.name}: {type(err).__name__}: {err}")
        return None
