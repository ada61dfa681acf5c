"""Weights & Biases: the mode, the resolved config (secrets redacted), and the data and model as
artifacts linked by lineage, like the original huggingtweets: the run *uses* each user's raw posts
and the cleaned training set, and *logs* the exported model. Imports nothing heavy at load time:
the config's resolvers use it before torch may start (train.numerics)."""

import os
import re
from pathlib import Path

from huggingtweets.ingest.posts import cache_name  # W&B names allow no '@' or ':'

SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|bearer|credential", re.I)


def redact(node):
    """A copy of a plain config container with every secret-looking key's value replaced."""
    if isinstance(node, dict):
        return {k: "***" if SECRET_KEY.search(str(k)) and v else redact(v) for k, v in node.items()}
    if isinstance(node, list):
        return [redact(v) for v in node]
    return node


def wandb_mode() -> str:
    """WANDB_MODE when set; otherwise online with an API key, offline without (sync later)."""
    return os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def wandb_logger(**kwargs):
    """Lightning's WandbLogger, W&B set up first: its settings (WANDB_SILENT, see train.console)
    apply from then on, and Lightning's `anonymous=None` would otherwise warn before they do."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    wandb.setup()
    return WandbLogger(**kwargs)


def wandb_run(trainer):
    from lightning.pytorch.loggers import WandbLogger

    return next((logger.experiment for logger in trainer.loggers
                 if isinstance(logger, WandbLogger) and trainer.is_global_zero), None)


def _use(run, artifact) -> None:
    """Mark `artifact` as an input (offline W&B cannot record a use: it logs it, to sync)."""
    (run.log_artifact if run.settings.mode == "offline" else run.use_artifact)(artifact)


def log_inputs(trainer, dm, run_dir: str | Path) -> None:
    run = wandb_run(trainer)
    if run is None:
        return
    import pandas as pd
    import wandb

    for h in dm.handles:
        art = wandb.Artifact(f"posts-{cache_name(h)}", type="raw-posts", metadata=dm.meta.get(h, {}))
        art.add_file(str(dm.raw_paths[h]))
        _use(run, art)
    data_dir = Path(run_dir) / "dataset"
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, frames in (("train", dm.train), ("val", dm.val)):
        pd.concat(frames.values()).to_parquet(data_dir / f"{split}.parquet", index=False)
    name = "dataset-" + "-".join(cache_name(h) for h in dm.handles)
    art = wandb.Artifact(name[:120], type="training-set", metadata={"table": dm.tables})
    art.add_dir(str(data_dir))
    _use(run, art)


def log_model(trainer, model_dir: Path, metrics: dict, handles: list[str]) -> None:
    run = wandb_run(trainer)
    if run is None:
        return
    import wandb

    art = wandb.Artifact(("model-" + "-".join(map(cache_name, handles)))[:120], type="model", metadata=metrics)
    art.add_dir(str(model_dir))
    run.log_artifact(art)
    run.summary.update(metrics)


def finish() -> None:
    """One W&B run per multirun job: close this job's run before the next job starts; then one
    line says where it is (W&B's own summary is off unless verbose=true)."""
    import wandb

    run = wandb.run
    if run is None:
        return
    mode, url, path = run.settings.mode, run.url, Path(run.settings.sync_dir).resolve()
    path = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    wandb.finish()
    if mode == "offline":
        print(f"W&B: offline run {path} (`wandb sync` that folder to upload it)")
    elif mode == "online":
        print(f"W&B: {url}")


def run_url(trainer) -> str | None:
    """The W&B run's page when it is online (the card links to it); None offline or without W&B."""
    run = wandb_run(trainer)
    return run.url if run is not None and run.settings.mode == "online" else None


def log_eval(trainer, predictions: list[dict], summary: dict, picture: Path | None = None) -> None:
    """The evaluation's numbers in the summary, its samples as a table, and the picture."""
    run = wandb_run(trainer)
    if run is None:
        return
    import wandb

    table = wandb.Table(columns=["prompt", "generation", "copies_training_tweet", "attributed_to"])
    for s in predictions:
        table.add_data(s["prompt"], s["text"], s["copy"] or "", s.get("attributed") or "")
    logged = {"predictions": table, **summary}
    if picture and Path(picture).exists():
        logged["predictions_picture"] = wandb.Image(str(picture))
    run.log(logged)
    run.summary.update(summary)
