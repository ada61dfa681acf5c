import os
import sys
from pathlib import Path

import pytest

# Tests never touch the network: no Hub downloads, W&B offline, no tokenizer thread pools.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.pop("WANDB_API_KEY", None)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# A model small enough that an epoch takes a second or two on 2 CPU cores.
TINY = [
    "model=scratch",
    "model.scratch.vocab_size=512",
    "model.scratch.n_layer=2",
    "model.scratch.n_embd=32",
    "model.scratch.n_head=2",
    "model.scratch.n_positions=64",
    "data.block_size=32",
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "logger=csv",
]


def run_cli(script: str, *args: str, cwd=ROOT, timeout=600, env=None):
    """Run an entry point the way a user does, in a subprocess."""
    import subprocess

    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture
def compose_cfg(tmp_path):
    """Compose the real train config (as `python train.py ...` would) with Hydra's runtime set."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import huggingtweets.config  # noqa: F401

    def _compose(*overrides: str, name: str = "train"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(name, overrides=[f"data_dir={tmp_path}/data" if name == "fetch"
                                           else f"data.data_dir={tmp_path}/data", *overrides],
                          return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        HydraConfig.instance().set_config(cfg)
        if name == "train":
            write_demo(cfg.data.data_dir, cfg.user)  # as `fetch.py source=demo` would
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def write_demo(data_dir, user: str) -> None:
    """Cache the demo personas of `user` (a mix) as `fetch.py source=demo` does: the DataModule
    only reads prepared posts, it never fetches or generates them."""
    from huggingtweets.ingest import posts
    from huggingtweets.ingest.sources import demo

    for h in posts.parse_users(user):
        if h in demo.PERSONAS and not posts.tweets_path(data_dir, h).exists():
            posts.write_posts(data_dir, h, demo.generate(h), source="demo")
