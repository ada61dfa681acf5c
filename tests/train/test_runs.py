"""A run's folder, checkpoints and status: two runs started at once never share a folder; a
checkpoint records its users, model and tokenizer and a foreign one is refused before any folder
exists; a run that dies says so in status.json; bad input and an unreachable Hub are one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, TINY, run_cli, write_demo

from huggingtweets.sweep.report import STATUS_FILE


def error_line(res) -> str:
    """The one `error: ...` line of a run that failed on bad input (exit 2, no traceback)."""
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-3000:]
    lines = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, res.stderr[-3000:]
    return lines[0]


def made(tmp_path) -> list:
    out = tmp_path / "outputs"
    return sorted(out.rglob("*")) if out.exists() else []


# -- run folders ---------------------------------------------------------------------------------

def test_two_runs_composed_in_the_same_second_get_two_folders(compose_cfg):
    a, b = compose_cfg("user=demo_ada"), compose_cfg("user=demo_ada")
    run_a, run_b = str(a.hydra.run.dir), str(b.hydra.run.dir)
    assert run_a != run_b and "demo_ada" in run_a
    assert str(a.hydra.run.dir) == run_a  # read again: the same folder (Hydra reads it twice)
    assert str(a.hydra.sweep.dir) != str(b.hydra.sweep.dir)  # sweeps too


def test_two_runs_started_at_once_keep_their_own_folder_and_status(tmp_path):
    """Two processes of one user started together: two folders, each with its own status.json
    that says the run failed and why (here: the user has no posts cached)."""
    args = [sys.executable, str(ROOT / "train.py"), "user=nobody_cached", *TINY,
            f"data.data_dir={tmp_path}/data"]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [2, 2], outs
    runs = sorted((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 2, runs
    for run in runs:
        status = json.loads((run / STATUS_FILE).read_text())
        assert status["status"] == "failed", status
        assert "no posts cached for @nobody_cached" in status["error"]
        assert "\n" not in status["error"]
        assert status["pid"] in [p.pid for p in procs] and status["host"] == socket.gethostname()


# -- one line instead of a traceback -------------------------------------------------------------

def test_no_user_is_one_line_before_any_folder(tmp_path):
    res = run_cli("train.py", cwd=tmp_path, timeout=60)
    assert "user=<handle>" in error_line(res)
    assert made(tmp_path) == []


@pytest.mark.parametrize("weights", ["{demo_ada: nan}", "{demo_ada: inf}", "{demo_ada: lots}",
                                     "[1, 2]", "{demo_ada: -1}"])
def test_bad_data_weights_are_one_line_before_any_folder(tmp_path, weights):
    res = run_cli("train.py", "user=demo_ada", "data.mix=weights", f"data.weights={weights}",
                  f"data.data_dir={tmp_path}/data", cwd=tmp_path, timeout=60)
    assert "data.weights" in error_line(res)
    assert made(tmp_path) == []


def test_block_size_beyond_the_models_positions_is_one_line(tmp_path):
    write_demo(tmp_path / "data", "demo_ada")
    res = run_cli("train.py", "user=demo_ada", *TINY, "data.block_size=128", "export=false",
                  f"data.data_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/run", timeout=120)
    line = error_line(res)
    assert "data.block_size=128" in line and "64" in line


# -- checkpoints ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "text", "zip"])
def test_a_ckpt_path_that_is_no_checkpoint_is_one_line_before_any_folder(tmp_path, kind):
    ckpt = tmp_path / "last.ckpt"
    if kind == "text":
        ckpt.write_text("not a checkpoint\n")
    elif kind == "zip":  # a torch file, but no Lightning checkpoint
        torch.save({"weights": torch.zeros(2)}, ckpt)
    res = run_cli("train.py", "user=demo_ada", *TINY, f"ckpt_path={ckpt}",
                  f"data.data_dir={tmp_path}/data", cwd=tmp_path, timeout=60)
    line = error_line(res)
    assert f"ckpt_path={ckpt}" in line and ("no such file" in line if kind == "missing"
                                            else "not a checkpoint" in line), line
    assert made(tmp_path) == []


@pytest.fixture(scope="module")
def ada_checkpoint(tmp_path_factory):
    """A finished one-epoch run of demo_ada (tiny scratch model): its last.ckpt."""
    base = tmp_path_factory.mktemp("ada")
    for user in ("demo_ada", "demo_bo"):
        write_demo(base / "data", user)
    res = run_cli("train.py", "user=demo_ada", *TINY, "export=false",
                  f"data.data_dir={base}/data", f"hydra.run.dir={base}/run", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return base, base / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_a_checkpoint_records_its_users_model_and_tokenizer(ada_checkpoint):
    _, ckpt = ada_checkpoint
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    run = saved["huggingtweets"]
    assert run["users"] == ["demo_ada"]
    assert run["model"]["name_or_path"] is None and run["model"]["scratch"]["n_embd"] == 32
    assert run["model"]["tokenizer"] is None  # the scratch BPE fitted to the tweets: its hash
    assert len(run["tokenizer_key"]) == 64


@pytest.mark.slow
@pytest.mark.parametrize("args,names", [
    (["user=demo_bo"], ["demo_ada", "demo_bo"]),
    (["user=demo_ada-demo_bo"], ["demo_ada", "demo_ada-demo_bo"]),
    (["user=demo_ada", "model.scratch.n_embd=64"], ["n_embd"]),
    (["user=demo_ada", "model.scratch.vocab_size=1024"], ["vocab_size"]),
])
def test_a_checkpoint_of_another_user_or_model_is_refused_before_any_folder(
        ada_checkpoint, tmp_path, args, names):
    base, ckpt = ada_checkpoint
    res = run_cli("train.py", *TINY, *args, f"ckpt_path={ckpt}", f"data.data_dir={base}/data",
                  cwd=tmp_path, timeout=60)
    line = error_line(res)
    assert all(n in line for n in names), line
    assert made(tmp_path) == []


# -- status.json ---------------------------------------------------------------------------------

def test_a_run_that_fails_says_so_in_its_status(tmp_path):
    write_demo(tmp_path / "data", "demo_ada")
    run = tmp_path / "run"
    res = run_cli("train.py", "user=demo_ada", *TINY, "data.block_size=128",
                  f"data.data_dir={tmp_path}/data", f"hydra.run.dir={run}", timeout=120)
    assert res.returncode == 2
    status = json.loads((run / STATUS_FILE).read_text())
    assert status["status"] == "failed" and "data.block_size=128" in status["error"]


# -- offline ----------------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again once the socket is: connections are refused


@pytest.mark.parametrize("env", [
    {"HF_HUB_OFFLINE": "1"},
    {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"},
], ids=["offline", "unreachable"])
def test_an_uncached_hub_model_without_network_is_one_fast_line(tmp_path, env):
    write_demo(tmp_path / "data", "demo_ada")
    started = time.monotonic()
    res = run_cli("train.py", "user=demo_ada", "model.name_or_path=nobody/not-cached-gpt",
                  "logger=csv", f"data.data_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/run",
                  timeout=120, env={"HF_HOME": str(tmp_path / "hf"), **env})
    took = time.monotonic() - started
    line = error_line(res)
    assert "nobody/not-cached-gpt" in line and "model=scratch" in line
    assert "HF_HUB_OFFLINE" in line and "model.name_or_path=" in line
    assert "thrown while requesting" not in res.stdout + res.stderr
    assert took < 10, took


@pytest.mark.slow
def test_a_cached_hub_model_loads_without_asking_an_unreachable_hub(tmp_path):
    """A model in the Hub cache trains with no network and no request: no minute of retries."""
    import transformers

    from huggingtweets.train.tokenizer import train_tokenizer

    snapshot = tmp_path / "hub" / "models--tiny--gpt" / "snapshots" / ("0" * 40)
    tok = train_tokenizer([f"tweet number {i} about things" for i in range(200)], 300)
    tok.save_pretrained(snapshot)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2)).save_pretrained(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(snapshot.name)
    write_demo(tmp_path / "data", "demo_ada")
    started = time.monotonic()
    res = run_cli("train.py", "user=demo_ada", "model.name_or_path=tiny/gpt", "data.block_size=32",
                  "trainer.fast_dev_run=true", "export=false", "logger=csv",
                  f"data.data_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/run", timeout=300,
                  env={"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "0",
                       "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "thrown while requesting" not in res.stdout + res.stderr
    assert time.monotonic() - started < 60
