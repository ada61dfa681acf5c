"""Fetch or import a user's posts into the cache (data/tweets/<handle>.parquet), print the data table.

    python fetch.py user=alice.bsky.social                   # Bluesky, public (source=auto)
    python fetch.py user=Gargron@mastodon.social             # Mastodon, public
    X_BEARER_TOKEN=... python fetch.py user=smithjd source=x # X API v2
    python fetch.py user=smithjd source=archive source.path=~/Downloads/twitter-2022-11-03.zip
    python fetch.py user=alice source=csv source.path=alice.csv source.columns.id=tweet_id
    python fetch.py source=demo                              # the three synthetic demo personas

A second fetch asks only for newer posts (refresh=full refetches); an interrupted fetch resumes.
A refresh=full that brings far fewer posts than are cached keeps the cache (confirm_shrink=true
replaces it).
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import huggingtweets.config  # noqa: F401  (registers the ${ht.*} resolvers)
from huggingtweets.errors import UserError, reported, run_cli


@hydra.main(version_base="1.3", config_path="conf", config_name="fetch")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from huggingtweets.ingest import clean, posts, sources
    from huggingtweets.ingest.handles import parse_users

    choice = HydraConfig.get().runtime.choices.source
    with reported():
        handles = posts.distinct_accounts(cfg.data_dir, parse_users(cfg.user)) if cfg.user else [None]
        if len(handles) > 1 and "path" in cfg.source.keys():
            raise UserError(f"source={choice} reads one file for one user; got the mix {cfg.user!r}")
        if "path" in cfg.source.keys() and OmegaConf.is_missing(cfg.source, "path"):
            raise UserError(f"source={choice} needs the file: add source.path=<path to it>")
        tables = {}
        for handle in handles:
            got = sources.fetch_user(cfg.source, handle, cfg.data_dir, refresh=cfg.refresh,
                                     name=choice, confirm_shrink=cfg.get("confirm_shrink", False),
                                     lock_timeout=cfg.get("lock_timeout"))
            verb = "fetched" if got.source in ("x", "bluesky", "mastodon") else "read"
            changes = posts.import_summary(cfg.data_dir, got.handle)
            print(f"@{got.handle}: {len(got.new):,} posts {verb} ({got.source}), "
                  f"{len(got.merged):,} cached in {posts.tweets_path(cfg.data_dir, got.handle)}"
                  + (f" ({changes})" if changes else ""))
            tables[got.handle] = clean.clean_posts(got.merged, cfg.clean).table
        clean.print_table(tables, title=f"Data table (clean={HydraConfig.get().runtime.choices.clean})")


if __name__ == "__main__":
    run_cli(main)  # a config error: one line naming the key
