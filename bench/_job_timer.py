"""Run a script (train.py) with timestamps of what happens before each job's first optimizer step.

    python bench/_job_timer.py OUT.json train.py -m user=... optim.lr=1e-3,2e-3

Nothing of the product is imported early or changed: an import hook times the top-level packages
as they are imported and, once a module of interest has loaded, wraps a few of its functions to
record when they start and end (Hydra's run_job, TweetDataModule, TweetLM.build, the Lightning
Trainer, the W&B run, the token cache, setup, and the global optimizer step hook). OUT.json gets
the events on the wall clock (time.time) so the parent can add the interpreter's start-up.
"""

from __future__ import annotations

import atexit
import importlib.abc
import json
import runpy
import sys
import time

WALL0 = time.time()
T0 = time.perf_counter()
EVENTS: list = []  # [seconds since T0, name, "B" | "E"]
IMPORTS: list = []  # [top-level package, start, end]
TOP = {"torch", "lightning", "transformers", "wandb", "hydra", "omegaconf", "pandas", "pyarrow",
       "numpy", "tokenizers", "torchmetrics", "scipy", "sklearn", "huggingtweets", "rich",
       "safetensors", "huggingface_hub", "yaml", "PIL", "matplotlib", "accelerate", "sympy",
       "pytorch_lightning", "lightning_fabric", "lightning_utilities", "fsspec", "requests"}


def now() -> float:
    return time.perf_counter() - T0


def wrap(owner, attr: str, name: str) -> None:
    real = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr)
    if isinstance(real, property):
        fget = real.fget

        def timed_get(self):
            EVENTS.append([now(), name, "B"])
            try:
                return fget(self)
            finally:
                EVENTS.append([now(), name, "E"])

        setattr(owner, attr, property(timed_get, real.fset))
        return

    def timed(*a, **k):
        EVENTS.append([now(), name, "B"])
        try:
            return real(*a, **k)
        finally:
            EVENTS.append([now(), name, "E"])

    setattr(owner, attr, timed)


def patch(module_name: str, module) -> None:
    if module_name == "hydra.core.utils":
        wrap(module, "run_job", "job")
    elif module_name == "huggingtweets.train.data":
        wrap(module.TweetDataModule, "__init__", "data: read + clean + split")
        wrap(module.TweetDataModule, "_tokens", "tokens: tokenize or load the cache")
        wrap(module.TweetDataModule, "setup", "data setup: oversample + pack")
    elif module_name == "huggingtweets.train.module":
        wrap(module.TweetLM, "build", "model build (init)")
        wrap(module, "train_tokenizer", "tokenizer: train or load the cache")
        wrap(module.TweetLM, "configure_optimizers", "optimizer + schedule")
    elif module_name == "huggingtweets.train.tracking":
        wrap(module, "log_inputs", "W&B: log input artifacts")
    elif module_name == "lightning.pytorch.trainer.trainer":
        wrap(module.Trainer, "__init__", "Trainer()")
        wrap(module.Trainer, "fit", "fit")
    elif module_name == "lightning.pytorch.loops.fit_loop":
        wrap(module._FitLoop, "run", "fit: setup + first forward/backward")
    elif module_name == "lightning.pytorch.loops.evaluation_loop":
        wrap(module._EvaluationLoop, "run", "validation (sanity check)")
    elif module_name == "lightning.pytorch.loggers.wandb":
        wrap(module.WandbLogger, "experiment", "W&B: start the run")
    elif module_name == "torch.optim.optimizer":
        module.register_optimizer_step_post_hook(
            lambda opt, a, k: EVENTS.append([now(), "optimizer step", "P"]))


PATCHED = {"hydra.core.utils", "huggingtweets.train.data", "huggingtweets.train.module",
           "huggingtweets.train.tracking", "lightning.pytorch.trainer.trainer",
           "lightning.pytorch.loggers.wandb", "torch.optim.optimizer",
           "lightning.pytorch.loops.fit_loop", "lightning.pytorch.loops.evaluation_loop"}


class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        timed = name in TOP
        if not timed and name not in PATCHED:
            return None
        start = now()
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, real_exec = spec.loader, spec.loader.exec_module

        def exec_module(module):
            try:
                real_exec(module)
            finally:
                if timed:
                    IMPORTS.append([top, start, now()])
            if name in PATCHED:
                patch(name, module)

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            return spec
        return spec


def dump(out: str) -> None:
    with open(out, "w") as f:
        json.dump({"wall0": WALL0, "events": EVENTS, "imports": IMPORTS,
                   "end": now()}, f)


def lazy_torchmetrics_deps() -> None:
    """The measured lever: torchmetrics (imported by Lightning at start-up) imports scipy.signal
    and matplotlib.pyplot whenever they are installed (scikit-learn and report.py bring them);
    training never uses them. Telling torchmetrics they are absent skips both imports."""
    import lightning_utilities.core.imports as lui

    real = lui.package_available

    def package_available(name: str) -> bool:
        return False if name in ("scipy", "matplotlib") else real(name)

    lui.package_available = package_available


def main() -> None:
    import os

    out, script, *args = sys.argv[1:]
    if os.environ.get("BENCH_LAZY_TORCHMETRICS_DEPS") == "1":
        lazy_torchmetrics_deps()
    sys.meta_path.insert(0, Hook())
    atexit.register(dump, out)
    sys.argv = [script, *args]
    sys.path.insert(0, str(__import__("pathlib").Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
