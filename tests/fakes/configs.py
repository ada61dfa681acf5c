"""The project's config files as plain dicts: tests build objects with the values users get, and
the code under test has no defaults of its own to fall back on."""

from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[2] / "conf"


def conf(name: str, **override) -> dict:
    """conf/<name>.yaml (its own keys, not its defaults list), with `override` on top."""
    node = yaml.safe_load((CONF / f"{name}.yaml").read_text()) or {}
    node.pop("defaults", None)
    return {**node, **override}


# TweetDataModule's settings as train.py passes them (the user, the cleaning and the folder apart)
DATA = {k: v for k, v in conf("data/tweets", seed=conf("train")["seed"]).items()
        if k not in ("_target_", "user", "clean", "data_dir")}

# app.Demo's settings as app.py passes them
DEMO = {k: v for k, v in conf("app").items()
        if k not in ("model_dir", "host", "port", "max_queue", "hydra")}

# Generator.sample's options as generate.py passes them (conf/generate.yaml's values)
SAMPLING = {k: conf("generate")[k] for k in ("n", "temperature", "top_p", "top_k", "max_new_tokens",
                                              "seed")}
