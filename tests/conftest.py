import os
import sys
from pathlib import Path

import pytest
import yaml
from fakes.configs import DATA, conf

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
    from huggingtweets.ingest import handles, posts
    from huggingtweets.ingest.sources import demo

    for h in handles.parse_users(user):
        if h in demo.PERSONAS and not posts.tweets_path(data_dir, h).exists():
            posts.write_posts(data_dir, h, demo.generate(h, 400), source="demo")


@pytest.fixture
def api():
    """The honest fake X, Bluesky and Mastodon servers of fakes/servers.py, on a loopback port."""
    from fakes.servers import serve

    with serve() as router:
        yield router


# -- the trained tiny run that the publish tests share -------------------------------------

_RUN: dict = {}


EVAL = conf("eval/default", n=4, prompts=["My dream is", "I think that", ""], max_new_tokens=24)


def tiny_run(tmp_path_factory) -> dict:
    """{run, model, dm, module, metrics, results}: demo_ada + demo_bo, 1 epoch of a tiny GPT-2."""
    if _RUN:
        return _RUN
    import lightning as L

    from huggingtweets.publish import export
    from huggingtweets.publish.evaluate import evaluate_run
    from huggingtweets.train.data import TweetDataModule
    from huggingtweets.train.module import TweetLM

    base = tmp_path_factory.mktemp("tiny")
    run = base / "run"
    clean = yaml.safe_load((ROOT / "conf" / "clean" / "default.yaml").read_text())
    L.seed_everything(0)
    write_demo(base / "data", "demo_ada-demo_bo")
    dm = TweetDataModule("demo_ada-demo_bo", clean, data_dir=str(base / "data"),
                         **{**DATA, "block_size": 32, "batch_size": 32, "mix": "balanced", "seed": 0})
    module = TweetLM(name_or_path=None, optim=conf("optim/adamw", lr=3e-3, warmup_ratio=0.1),
                     scratch={"arch": "gpt2", "vocab_size": 512, "n_positions": 64, "n_embd": 32,
                              "n_layer": 2, "n_head": 2, "dropout": 0.0}, cache_dir=str(base / "data" / "cache"))
    dm.tokenizer = module.build(dm.train_texts)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, accelerator="cpu",
                        enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(module, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.validate(module, datamodule=dm, verbose=False)[0].items()}
    hparams = {"lr": 3e-3, "epochs": 1, "steps": trainer.global_step, "seed": 0}
    model = export.export_model(module, dm, run / "model", metrics, hparams)
    results = evaluate_run(module, dm, EVAL, run, model)
    export.write_card(module, dm, model, metrics, hparams, results, None)
    _RUN.update(run=run, model=model, dm=dm, module=module, metrics=metrics, results=results,
                hparams=hparams)
    return _RUN


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory)


# -- the baseline ----------------------------------------------------------------------------
