"""Sources: each turns one kind of input into the canonical post table (`posts.to_frame`).

Importers read files (`archive`, `files` for csv / jsonl, `twarc`, `demo`); API sources (`x`,
`bluesky`, `mastodon`) return a `fetching.Remote` that `fetch_user` runs; `auto` picks by the
handle. Every source config is a Hydra node whose `_target_` takes a `handle` keyword.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.ingest.handles import platform, validate_handle

DEMO_PREFIX = "demo_"


class NoSource(UserError):
    """source=auto has no way to get this user's posts (an X handle without a token)."""


def build(cfg, handle: str | None):
    """Call the config's `_target_` with its keys and `handle` (plain containers, resolved): like
    hydra.utils.instantiate, without wrapping our UserErrors in InstantiationException."""
    from hydra.utils import get_object
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # "???" stays
    if cfg.get("path", "") == "???":
        raise UserError("this source reads a file: add source.path=<path to it>")
    target = get_object(cfg["_target_"])
    kwargs = {k: v for k, v in cfg.items() if not str(k).startswith("_")}
    return target(handle=handle, **kwargs)


def auto(handle: str | None, x: dict, bluesky: dict, mastodon: dict, demo: dict,
         on_rate_limit: str = "wait"):
    """The source a handle names: demo_*, Bluesky, Mastodon, or X when X_BEARER_TOKEN is set."""
    if handle is None:
        raise UserError("source=auto picks the source from the handle: pass user=<handle>")
    handle = validate_handle(handle)
    if handle.lower().startswith(DEMO_PREFIX):
        return build(demo, handle)
    kind = platform(handle)
    if kind == "x" and not os.environ.get("X_BEARER_TOKEN", "").strip():
        raise NoSource(f"cannot fetch @{handle} from X without a token. {posts.how_to_get(handle)}")
    return build({"x": x, "bluesky": bluesky, "mastodon": mastodon}[kind], handle)


@dataclass
class Fetched:
    handle: str
    source: str  # the concrete source: "x", "bluesky", "archive", ...
    new: pd.DataFrame  # what this run read or fetched
    merged: pd.DataFrame  # the cache now
    resumed: bool = False
    notes: list[str] | None = None  # warnings printed on the way (items left out, a stop)


def fetch_user(cfg, handle: str | None, data_dir: str | Path, refresh: str = "merge",
               name: str | None = None, missing_only: bool = False,
               confirm_shrink: bool = False, lock_timeout: float | None = None) -> Fetched:
    """Run the source `cfg` (a Hydra node) for one user and merge the result into the cache.
    missing_only (API sources): leave a cache that exists alone (one a concurrent job wrote)."""
    from huggingtweets.ingest.sources import fetching

    made = build(cfg, handle)
    if isinstance(made, fetching.Remote):
        result = fetching.fetch(made, data_dir, refresh=refresh, missing_only=missing_only,
                                confirm_shrink=confirm_shrink, lock_timeout=lock_timeout)
        return Fetched(made.handle, made.name, result.new, result.merged, result.resumed,
                       result.notes)
    if handle is None:
        if not len(made):
            raise UserError("the source read no posts, so whose are they? pass user=<handle>")
        handle = str(made["handle"].iloc[0])
    handle = validate_handle(handle)
    if name in (None, "auto"):
        name = str(made["source"].dropna().iloc[0]) if made["source"].notna().any() else "auto"
    merged = posts.write_posts(data_dir, handle, made, source=name, refresh=refresh,
                               confirm_shrink=confirm_shrink, lock_timeout=lock_timeout)
    return Fetched(handle, name, made, merged)
