"""Fine-tune a causal LM on one person's (or a mix's) posts: compose -> prepare -> fit -> publish.

    python train.py user=demo_ada model=scratch    # -m: a sweep (python train.py -m optim.lr=1e-4,3e-4)
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from huggingtweets import config  # registers the ${ht.*} resolvers
from huggingtweets.errors import reported, run_cli
from huggingtweets.ingest.prepare import prepare


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    run_dir = HydraConfig.get().runtime.output_dir
    with reported():
        try:
            return run(cfg, run_dir)
        except BaseException as err:  # Hydra's callback never sees a SystemExit or a Ctrl-C
            from huggingtweets.sweep.callbacks import failed

            failed(run_dir, err)
            raise


def run(cfg: DictConfig, run_dir: str) -> float:
    config.check(cfg)  # handles and settings, before anything runs (also in a multirun)
    prepared = prepare(**cfg.data, source=cfg.source)  # fetch what is missing, clean, split
    from huggingtweets.train import hub

    # a Hub model not cached and no network: one line now, not after a minute of retries
    hub.ensure_available(cfg.model.get("tokenizer"), "tokenizer")
    hub.ensure_available(cfg.model.get("name_or_path"), "model")
    from huggingtweets.train import numerics

    numerics.pin(**cfg.numerics)  # before torch starts: it picks its kernels once
    from huggingtweets.publish.export import publish_run
    from huggingtweets.train import console, tracking

    console.setup(cfg.verbose)
    from huggingtweets.train.fit import fit

    try:
        trainer, module, dm, metrics = fit(cfg, prepared, run_dir)
        if trainer.is_global_zero:  # model dir, evaluation, card, W&B artifacts
            publish_run(cfg, trainer, module, dm, metrics, run_dir)
        print(f"final val/loss: {metrics['val/loss']:.4f} (val/ppl {metrics['val/ppl']:.2f})")
        return metrics["val/loss"]  # what a sweeper minimises
    finally:
        tracking.finish()


if __name__ == "__main__":
    run_cli(main)  # a config error: one line naming the key
