"""What a training run prints: the project's own lines (the data table, one progress bar for the
whole run, the result, where the files are); library chatter goes to the run's log file
(<run dir>/train.log) unless `verbose=true`, and no log line is printed twice."""

import logging
import os
import warnings

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def setup(verbose: bool) -> None:
    """Quiet by default; `verbose`: every library's messages on the console as well (once each).
    Hydra's job logging (a console and a train.log handler on the root logger) stays: Lightning's
    own console handler goes, as every Lightning record also reaches the root's."""
    lightning = logging.getLogger("lightning")
    for handler in list(lightning.handlers):
        if type(handler) is logging.StreamHandler:  # noqa: E721 (a FileHandler is a StreamHandler)
            lightning.removeHandler(handler)
    lightning.propagate = True
    logging.captureWarnings(True)  # warnings are log records too: train.log keeps them
    import transformers

    transformers.utils.logging.enable_propagation()  # into train.log, not straight to stderr
    transformers.utils.logging.disable_default_handler()
    level = logging.INFO if verbose else logging.ERROR
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)
    if verbose:
        transformers.utils.logging.enable_progress_bar()
    else:
        transformers.utils.logging.disable_progress_bar()  # "Writing model shards"
        os.environ.setdefault("WANDB_SILENT", "true")  # read by each wandb.init
    warnings.filterwarnings("default" if verbose else "ignore", category=DeprecationWarning)


class RunProgress(ProgressBar):
    """One bar for the whole run (every epoch's steps) with its ETA, the epoch and the losses."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self.progress: Progress | None = None
        self.task = None

    def disable(self) -> None:  # Lightning calls it on every rank but the first
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        if not self._enabled:
            return
        total = trainer.estimated_stepping_batches
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"))
        self.progress.start()
        # a resumed run starts part-way: the ETA counts only the steps still to go
        self.task = self.progress.add_task(self._epoch(trainer), losses="", completed=trainer.global_step,
                                           total=total if total != float("inf") else None)

    def _epoch(self, trainer: L.Trainer) -> str:
        last = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        return f"epoch {trainer.current_epoch + 1}/{last}"

    def _update(self, trainer: L.Trainer) -> None:
        if self.progress is None:
            return
        m = trainer.callback_metrics
        losses = "  ".join(f"{k} {float(m[k]):.3f}" for k in ("train/loss_step", "val/loss") if k in m)
        self.progress.update(self.task, completed=trainer.global_step, description=self._epoch(trainer),
                             losses=losses.replace("train/loss_step", "loss"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._update(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._update(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.on_train_end(trainer, pl_module)
