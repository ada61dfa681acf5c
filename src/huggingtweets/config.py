"""OmegaConf resolvers the configs use, and redaction of secrets before a config leaves the process.

Importing this module registers the resolvers (entry points and tests import it before composing).
"""

from __future__ import annotations

import hashlib
import os
import re

from omegaconf import OmegaConf

SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|bearer|credential", re.I)


def precision() -> str:
    """fp32 on CPUs (bf16 matmul is 15-40x slower on CPUs without bf16 units), bf16-mixed on GPUs
    that support it, fp16-mixed on older GPUs."""
    import torch

    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def wandb_mode() -> str:
    """WANDB_MODE when set; otherwise online with an API key, offline without (sync later)."""
    return os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def sweep_group() -> str | None:
    """One W&B group per multirun (named after the sweep folder); single runs have none."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return os.path.basename(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None


def wandb_tags(overrides) -> list[str]:
    """A job's overrides as W&B tags (W&B caps tags at 64 characters; paths make poor tags)."""
    skip = ("hydra.", "data.data_dir", "ckpt_path", "experiment")
    return [str(o)[:64] for o in overrides or [] if not str(o).lstrip("+~").startswith(skip)]


SWEEP_SYNTAX = re.compile(r"[,]|^(range|choice|interval|glob|tag)\(")


def swept_keys() -> set[str]:
    """Keys a multirun varies: comma lists and sweep functions on the command line, plus the
    axes an experiment file stores in hydra.sweeper.params."""
    import sys

    from hydra.core.hydra_config import HydraConfig

    keys = {a.split("=", 1)[0].lstrip("+~") for a in sys.argv[1:]
            if "=" in a and SWEEP_SYNTAX.search(a.split("=", 1)[1])}
    if HydraConfig.initialized():
        keys |= set((HydraConfig.get().sweeper.get("params") or {}).keys())
    return keys


def job_dirname(overrides) -> str:
    """A multirun job's folder: the overrides the sweep varies (`optim.lr=0.001,user=a-b`), so
    the folders read as the sweep's grid instead of repeating every fixed override."""
    items = [str(o) for o in overrides or [] if not str(o).lstrip("+~").startswith("hydra.")]
    swept = swept_keys()
    varied = [o for o in items if o.split("=", 1)[0].lstrip("+~") in swept]
    name = ",".join(sorted(varied or items)).replace("/", "_") or "default"
    if len(name) > 120:  # file systems cap names at 255 bytes; keep it readable and unique
        name = name[:110] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def redact(node):
    """A copy of a plain config container with every secret-looking key's value replaced."""
    if isinstance(node, dict):
        return {k: "***" if SECRET_KEY.search(str(k)) and v else redact(v) for k, v in node.items()}
    if isinstance(node, list):
        return [redact(v) for v in node]
    return node


for _name, _fn in {
    "ht.precision": precision,
    "ht.wandb_mode": wandb_mode,
    "ht.sweep_group": sweep_group,
    "ht.tags": wandb_tags,
    "ht.job_dirname": job_dirname,
}.items():
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
