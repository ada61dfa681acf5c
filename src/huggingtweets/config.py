"""The OmegaConf resolvers the configs use (`${ht.*}`): glue for the entry points, which import
this module before Hydra composes (so do the tests). Library code never imports it."""

import hashlib
import math
import os
import re
import secrets

from omegaconf import OmegaConf

from huggingtweets import schema  # noqa: F401  registers the conf/*.yaml's schemas


def precision() -> str:
    """fp32 on CPUs (bf16 matmul is 15-40x slower without bf16 units), else bf16- or fp16-mixed."""
    import torch

    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


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
    from huggingtweets.train.tracking import SECRET_KEY

    skip = ("hydra.", "data.data_dir", "ckpt_path", "experiment")
    return [str(o)[:64] for o in overrides or [] if not str(o).lstrip("+~").startswith(skip)
            and not SECRET_KEY.search(str(o).split("=", 1)[0])]


SWEEP_SYNTAX = re.compile(r"[,]|^(range|choice|interval|glob|tag)\(")


def swept_keys() -> set[str]:
    """Keys a multirun varies: comma lists and sweep functions given, plus hydra.sweeper.params."""
    import sys

    from hydra.core.hydra_config import HydraConfig

    keys = {a.split("=", 1)[0].lstrip("+~") for a in sys.argv[1:]
            if "=" in a and SWEEP_SYNTAX.search(a.split("=", 1)[1])}
    if HydraConfig.initialized():
        keys |= set((HydraConfig.get().sweeper.get("params") or {}).keys())
    return keys


def job_dirname(overrides) -> str:
    """A multirun job's folder: the overrides the sweep varies (`optim.lr=0.001,user=a-b`)."""
    items = [str(o) for o in overrides or [] if not str(o).lstrip("+~").startswith("hydra.")]
    swept = swept_keys()
    varied = [o for o in items if o.split("=", 1)[0].lstrip("+~") in swept]
    name = ",".join(sorted(varied or items)).replace("/", "_") or "default"
    if len(name) > 120:  # file systems cap names at 255 bytes; keep it readable and unique
        name = name[:110] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


# The ranges no type says (schema.py holds the types, checked at compose): values that would
# fail deep inside torch or train nothing. (key, test, what is allowed)
RANGES = [
    ("optim.lr", lambda v: 0 < v < 1, "a number in (0, 1)"),
    ("optim.weight_decay", lambda v: 0 <= v < 10, "a number >= 0"),
    ("optim.warmup_ratio", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("data.block_size", lambda v: 2 <= v <= 1_000_000, "an integer >= 2"),
    ("data.batch_size", lambda v: 1 <= v <= 1_000_000, "an integer >= 1"),
    ("data.val_share", lambda v: 0 < v < 1, "a number in (0, 1)"),
    ("trainer.max_epochs", lambda v: 1 <= v <= 100_000, "an integer >= 1"),
    ("seed", lambda v: 0 <= v < 2**32, "an integer in [0, 2^32)"),
    ("model.input_noise", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("model.lora.r", lambda v: 0 <= v <= 65_536, "an integer >= 0 (0: full fine-tuning)"),
    ("model.loss_chunk", lambda v: v >= 0, "an integer >= 0 (0: the whole output at once)"),
    ("eval.top_p", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("eval.temperature", lambda v: v > 0, "a number > 0"),
    ("data.weights", lambda v: OmegaConf.is_dict(v) and all(  # any type: see schema.Data
        isinstance(w, int | float) and not isinstance(w, bool) and 0 < w < math.inf
        for w in v.values()), "each user's positive number, e.g. {alice: 2, bob: 1}"),
]


def check(root) -> None:
    """Refuse a missing or interpolated `user` (a secret in folder names), settings that would fail
    deep inside torch or train nothing (RANGES) and a `ckpt_path` that is no checkpoint of these
    users and this model, before any work."""
    from omegaconf import OmegaConf

    from huggingtweets.errors import UserError
    from huggingtweets.ingest.handles import parse_users

    raw = root._get_node("user")._value()
    if isinstance(raw, str) and "${" in raw:
        raise UserError("user= takes handles, not an interpolation: write the handle itself")
    users = parse_users(raw)  # `???` (none given): says to pass user=<handle>
    for key, ok, allowed in RANGES:
        value = OmegaConf.select(root, key, default=None)
        if value is not None and not ok(value):
            shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            raise UserError(f"{key}={shown!r}: must be {allowed}")
    ckpt = OmegaConf.select(root, "ckpt_path", default=None)
    if ckpt is not None:  # torch is imported for it: a resume only
        from huggingtweets.train.checkpoint import check_resume

        check_resume(str(ckpt), root.model, users)


def run_name(*, _root_) -> str:
    """The run folder's name, from the validated handles (`alice+bsky-bob.bsky.social`), never the
    raw value: `user=../../x`, `user=${oc.env:SECRET}` and `optim.lr=-1` stop here, before Hydra
    makes the folder (train.py checks again, for multiruns and an explicit hydra.run.dir)."""
    from huggingtweets.errors import reported

    with reported():  # a UserError here: one line, exit 2 (Hydra would print a traceback)
        check(_root_)
        from huggingtweets.ingest.handles import parse_users
        from huggingtweets.ingest.posts import cache_name

        name = "+".join(cache_name(h) for h in parse_users(str(_root_._get_node("user")._value())))
        return name if len(name) <= 100 else name[:90] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def unique() -> str:
    """A folder name's random part: two runs started in the same second (of one user, or two
    sweeps) get two folders. Cached per config, as Hydra's `now`: every read of one run's
    hydra.run.dir names the same folder. 6 hex digits: one clash in ~16 million same-second pairs."""
    return secrets.token_hex(3)


for _name, _fn in {
    "ht.precision": precision,
    "ht.wandb_mode": lambda: __import__("huggingtweets.train.tracking", fromlist=["x"]).wandb_mode(),
    "ht.sweep_group": sweep_group,
    "ht.tags": wandb_tags,
    "ht.job_dirname": job_dirname,
    "ht.run_name": run_name,
}.items():
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
if not OmegaConf.has_resolver("ht.unique"):
    OmegaConf.register_new_resolver("ht.unique", unique, use_cache=True)
