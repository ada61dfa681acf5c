"""Checkpoints a run can be resumed from, giving exactly the uninterrupted run's result.

Each checkpoint records whose posts trained it and which model and tokenizer (`RECORD`), so a
`ckpt_path` of another user's run, or of another model, is refused before a run starts.
`RunCheckpoint` saves `last.ckpt` after every epoch (Lightning's rewrites it only with a new best,
so a run killed after its best epoch would redo epochs) and, resumed into a new run folder, brings
the best checkpoints along with their scores (Lightning's forgets the scores there, so a worse
later epoch would become "best" and be exported).
"""

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from huggingtweets.errors import UserError, printable

RECORD = "huggingtweets"  # the checkpoint's key for record()


def model_spec(model: Mapping) -> dict:
    """What a checkpoint's weights fit: the pretrained model or the scratch architecture (dropout
    aside: it shapes no weight), the tokenizer and the LoRA rank. From cfg.model or its hparams."""
    def plain(x):
        return OmegaConf.to_container(x, resolve=True, enum_to_str=True) if isinstance(x, DictConfig) else x

    name = model.get("name_or_path")
    scratch = None if name else {k: v for k, v in (plain(model.get("scratch")) or {}).items()
                                 if k != "dropout"}
    return {"name_or_path": name, "tokenizer": model.get("tokenizer"), "scratch": scratch,
            "lora_r": int((plain(model.get("lora")) or {}).get("r") or 0)}


def record(hparams: Mapping, users: list[str], tokenizer_key: str) -> dict:
    """What a checkpoint says about itself: its users, its model and its tokenizer's identity."""
    return {"users": list(users), "model": model_spec(hparams), "tokenizer_key": tokenizer_key}


def _mix(users) -> str:
    plain = all(u.replace("_", "").isalnum() for u in users)
    return ("-" if plain else "+").join(users)


def check_resume(path: str, model: Mapping, users: list[str]) -> None:
    """A UserError unless `path` is a checkpoint of these users and this model, whose best
    checkpoint (which the resumed run exports, unless it finds a better one) still exists."""
    import torch

    where = f"ckpt_path={printable(path)}"
    if not Path(path).is_file():
        raise UserError(f"{where}: no such file (resume from <run>/checkpoints/last.ckpt)")
    try:  # mmap: the weights stay on disk; weights_only: a checkpoint file runs no code
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:
        first = printable(str(err).strip().splitlines()[0] if str(err).strip() else "", limit=120)
        raise UserError(f"{where}: not a checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "loops" not in ckpt:
        raise UserError(f"{where}: not a checkpoint of a training run (no training state in it)")
    saved = ckpt.get(RECORD)
    if not isinstance(saved, dict):
        raise UserError(f"{where}: the checkpoint does not record whose posts trained it "
                        "(written before checkpoints did): start a new run without ckpt_path")
    if [str(u) for u in saved.get("users", [])] != list(users):
        raise UserError(f"{where}: a checkpoint of user={_mix(saved.get('users', []))}, not "
                        f"user={_mix(users)}: resume a run of the same users, or leave out ckpt_path")
    there, here = saved.get("model", {}), model_spec(model)
    if there != here:
        diff = [f"model.{k}={there.get(k)!r} there, {here.get(k)!r} here" for k in here
                if k not in ("scratch", "lora_r") and there.get(k) != here.get(k)]
        diff += [f"model.scratch.{k}={(there.get('scratch') or {}).get(k)!r} there, {v!r} here"
                 for k, v in (here.get("scratch") or {}).items()
                 if (there.get("scratch") or {}).get(k) != v]
        diff += [f"model.lora.r={there.get('lora_r')} there, {here['lora_r']} here"] * (
            there.get("lora_r") != here["lora_r"])
        raise UserError(f"{where}: a checkpoint of another model ({'; '.join(diff) or 'model'}): "
                        "resume with the model settings it was trained with")
    for state in (ckpt.get("callbacks") or {}).values():
        best = state.get("best_model_path") if isinstance(state, dict) else None
        if best and not Path(best).is_file():
            raise UserError(f"{where}: its run's best checkpoint {printable(best)} is gone, and "
                            "the resumed run would export another epoch: restore that file")


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint, plus: `last.ckpt` after every epoch, and a resume into a new folder that
    keeps the best checkpoints and their scores (copied into this run's folder)."""

    # Lightning saves last.ckpt only when it saved a best: after it (at the epoch's end, or after
    # each validation when that runs within epochs), save last unless saved at this step already
    # (or in a sanity check, fast_dev_run, validate()).
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_too(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_too(trainer)

    def _save_last_too(self, trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def load_state_dict(self, state_dict: dict) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and os.path.realpath(old) != os.path.realpath(self.dirpath):
            state_dict = self._adopt(state_dict)
        super().load_state_dict(state_dict)

    def _adopt(self, state: dict) -> dict:
        """`state` of a run in another folder, its best checkpoints copied here (atomically: every
        rank of a DDP run copies)."""
        os.makedirs(self.dirpath, exist_ok=True)
        moved = {}
        for path in state.get("best_k_models", {}):
            new = os.path.join(self.dirpath, os.path.basename(path))
            if os.path.isfile(path):
                tmp = f"{new}.{os.getpid()}.tmp"
                shutil.copyfile(path, tmp)
                os.replace(tmp, new)
                moved[path] = new
        return {**state, "dirpath": self.dirpath, "last_model_path": "",
                "best_k_models": {moved[p]: s for p, s in state["best_k_models"].items()
                                  if p in moved},
                "best_model_path": moved.get(state.get("best_model_path"), ""),
                "kth_best_model_path": moved.get(state.get("kth_best_model_path"), "")}
