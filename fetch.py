"""Import a user's posts into the cache (data/tweets/<handle>.parquet) and print the data table.

    python fetch.py user=smithjd source=archive source.path=~/Downloads/twitter-2022-11-03.zip
    python fetch.py user=alice source=csv source.path=alice.csv source.columns.id=tweet_id
    python fetch.py source=demo            # the three synthetic demo personas
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import huggingtweets.config  # noqa: F401  (registers the ${ht.*} resolvers)
from huggingtweets.errors import UserError, reported


@hydra.main(version_base="1.3", config_path="conf", config_name="fetch")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from huggingtweets import clean, posts

    source = HydraConfig.get().runtime.choices.source
    with reported():
        handles = posts.parse_users(cfg.user) if cfg.user else [None]
        if len(handles) > 1 and "path" in cfg.source.keys():
            raise UserError(f"source={source} reads one file for one user; got the mix {cfg.user!r}")
        if "path" in cfg.source.keys() and OmegaConf.is_missing(cfg.source, "path"):
            raise UserError(f"source={source} needs the file: add source.path=<path to it>")
        tables = {}
        for handle in handles:
            new = instantiate(cfg.source, handle=handle)
            handle = handle or posts.validate_handle(new["handle"].iloc[0])
            merged = posts.write_posts(cfg.data_dir, handle, new, source=source, refresh=cfg.refresh)
            print(f"@{handle}: {len(new):,} posts read, {len(merged):,} cached in "
                  f"{posts.tweets_path(cfg.data_dir, handle)}")
            tables[handle] = clean.clean_posts(merged, cfg.clean).table
        clean.print_table(tables, title=f"Data table (clean={HydraConfig.get().runtime.choices.clean})")


if __name__ == "__main__":
    main()
