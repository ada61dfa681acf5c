"""Fine-tune a causal LM on one person's (or a mix's) posts.

    python train.py user=demo_ada model=scratch
    python train.py -m optim.lr=1e-4,3e-4 user=demo_ada,demo_ada-demo_bo
"""

import hydra
from omegaconf import DictConfig, OmegaConf

import huggingtweets.config  # noqa: F401  (registers the ${ht.*} resolvers)
from huggingtweets.errors import reported


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from huggingtweets.train import numerics

    numerics.pin(**cfg.numerics)  # before torch starts: it picks its kernels once
    import lightning as L
    from hydra.utils import instantiate

    from huggingtweets.publish import export
    from huggingtweets.train import tracking
    from huggingtweets.config import redact

    run_dir = hydra.core.hydra_config.HydraConfig.get().runtime.output_dir
    with reported():
        try:
            L.seed_everything(cfg.seed, workers=True)
            dm = instantiate(cfg.data)  # reads the cached posts, cleans, splits; prints the table
            module = instantiate(cfg.model)
            dm.tokenizer = module.build(dm.train_texts)  # scratch: a tokenizer fitted to the tweets
            trainer = instantiate(cfg.trainer, logger=[instantiate(lg) for lg in cfg.logger.values()])
            resolved = redact(OmegaConf.to_container(cfg, resolve=True))
            for logger in trainer.loggers:
                logger.log_hyperparams(resolved)
            tracking.log_inputs(trainer, dm, run_dir)
            trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path)
            # Report and export the best checkpoint (by val/loss), not merely the last epoch.
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            metrics = trainer.validate(module, datamodule=dm, ckpt_path=best or None, verbose=False)[0]
            metrics = {k: float(v) for k, v in metrics.items()}
            if trainer.is_global_zero:
                export.write_run_files(run_dir, metrics, resolved)
                if cfg.export:
                    hparams = {**resolved["optim"], "epochs": cfg.trainer.max_epochs,
                               "steps": trainer.global_step, "seed": cfg.seed,
                               "block_size": cfg.data.block_size, "batch_size": cfg.data.batch_size}
                    model_dir = export.export_model(module, dm, f"{run_dir}/model", metrics, hparams)
                    evaluation = None
                    if cfg.get("eval") and cfg.eval.enabled:  # vs a baseline, memorization, voice
                        from huggingtweets.publish.evaluate import evaluate_run

                        evaluation = evaluate_run(module, dm, cfg.eval, run_dir, model_dir)
                        tracking.log_eval(trainer, evaluation, model_dir / "predictions.png")
                    export.write_card(module, dm, model_dir, metrics, hparams, evaluation,
                                      tracking.run_url(trainer))
                    tracking.log_model(trainer, model_dir, metrics, dm.handles)
                    print(f"model: {model_dir}")
            print(f"final val/loss: {metrics['val/loss']:.4f} (val/ppl {metrics['val/ppl']:.2f})")
            return metrics["val/loss"]
        finally:
            tracking.finish()


if __name__ == "__main__":
    main()
