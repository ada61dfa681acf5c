"""What a training run prints: the project's own lines by default, the libraries' with verbose=true,
no log line twice, W&B's summary as one line with the run's path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TINY

BAR = ("epoch ", "Epoch ", "Validation", "Sanity Checking")  # progress bars, Lightning's or ours


def train(tmp_path, *args):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # as a user runs it
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), "experiment=demo", "user=demo_ada-demo_bo",
                          *TINY, "+trainer.limit_train_batches=10", "eval.n=1", f"data.data_dir={tmp_path}/data",
                          f"hydra.run.dir={run}", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip() and not ln.startswith(BAR)]
    return run, lines


@pytest.mark.slow
@pytest.mark.parametrize("logger", ["wandb", "csv"])
def test_a_run_prints_its_own_lines_and_where_the_files_are(tmp_path, logger):
    run, lines = train(tmp_path, f"logger={logger}")
    text = "\n".join(lines)
    assert len(lines) <= 25, text
    assert f"model: {run / 'model'}" in lines, text
    assert any(ln.startswith("final val/loss: ") for ln in lines), text
    assert "INFO" not in text and "wandb:" not in text and "Warning" not in text, text
    assert (run / "train.log").read_text().count("Seed set to") == 1  # the chatter is kept, once
    if logger == "wandb":
        [line] = [ln for ln in lines if ln.startswith("W&B: ")]
        assert "offline run" in line and Path(line.split()[3]).parent == run / "wandb"


@pytest.mark.slow
def test_verbose_brings_the_library_lines_back_once_each(tmp_path):
    _, lines = train(tmp_path, "logger=wandb", "verbose=true")
    text = "\n".join(lines)
    assert sum("Seed set to" in ln for ln in lines) == 1, text  # Lightning's, not also Hydra's copy
    assert any(ln.startswith("wandb:") for ln in lines), text
    assert "Trainable params" in text, text
