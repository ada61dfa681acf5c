"""Fit: prepared posts + the composed config -> a trained TweetLM, validated at its best checkpoint."""

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from huggingtweets.errors import UserError
from huggingtweets.ingest.prepare import Prepared
from huggingtweets.train import tracking
from huggingtweets.train.console import RunProgress
from huggingtweets.train.tracking import redact


def fit(cfg: DictConfig, prepared: Prepared, run_dir: str):
    """Build the data, model and trainer from `cfg`, train, then validate the best checkpoint (by
    val/loss: it is what gets exported). Returns (trainer, module, dm, metrics)."""
    L.seed_everything(cfg.seed, workers=True)
    dm = instantiate(cfg.data, _partial_=True)(prepared=prepared)
    module = instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)  # scratch: a tokenizer fitted to the tweets
    if module.max_positions and dm.block_size > module.max_positions:
        raise UserError(f"data.block_size={dm.block_size} is longer than the model takes "
                        f"({module.max_positions} positions): use data.block_size<="
                        f"{module.max_positions}")
    trainer = make_trainer(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(redact(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))
    tracking.log_inputs(trainer, dm, run_dir)
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    metrics = trainer.validate(module, datamodule=dm, ckpt_path=best or None, verbose=False)[0]
    return trainer, module, dm, {k: float(v) for k, v in metrics.items()}


def make_trainer(cfg: DictConfig) -> L.Trainer:
    """The Trainer of cfg.trainer with cfg.logger's loggers and cfg.trainer.callbacks (a dict by
    name: an experiment adds one without restating the rest, `<name>=null` drops one)."""
    callbacks = [instantiate(c) for c in (cfg.trainer.get("callbacks") or {}).values() if c]
    loggers = [instantiate(lg) for lg in (cfg.logger or {}).values() if lg]
    if cfg.trainer.enable_progress_bar:
        callbacks.append(RunProgress())  # Lightning's bars count one epoch at a time
    rest = {k: v for k, v in cfg.trainer.items() if k != "callbacks"}
    return instantiate(rest, logger=loggers or False, callbacks=callbacks)
