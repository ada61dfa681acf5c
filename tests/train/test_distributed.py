"""Lightning DDP through trainer=ddp: 2 CPU processes (gloo) for real, inside a Hydra multirun
(Lightning's own `ddp` would re-run the whole sweep for rank 1), rank 0 alone writing."""

import json
import os
import pickle
import sys

import pytest
from conftest import ROOT, TINY, run_cli

from huggingtweets.train import distributed
from huggingtweets.train.fit import make_trainer


def test_rank_commands_rerun_only_the_current_job(monkeypatch, tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    job_dir = tmp_path / "sweep" / "optim.lr=0.001,user=a-b"
    hydra = OmegaConf.create({
        "runtime": {"output_dir": str(job_dir), "cwd": str(ROOT)},
        "overrides": {"task": ["optim.lr=0.001", "user=a-b", "trainer=ddp", "data.weights={a: 2, b: 1}"]},
    })
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra))
    monkeypatch.setattr("hydra.utils.get_original_cwd", lambda: str(ROOT))
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "--config-name", "train", "optim.lr=0.001,0.003",
                                      "user=a-b", "trainer=ddp", "hydra.sweep.dir=x"])
    import __main__

    monkeypatch.setattr(__main__, "__spec__", None, raising=False)
    cmd, cwd = distributed.job_command(1)
    assert cwd == str(ROOT) and cmd[:2] == [sys.executable, str(ROOT / "train.py")]
    args = cmd[2:]
    assert "-m" not in args and not any("," in a and a.startswith("optim.lr") for a in args)
    assert args[:2] == ["--config-name", "train"]
    assert "optim.lr=0.001" in args and "data.weights={a: 2, b: 1}" in args
    assert "hydra.mode=RUN" in args and f"hydra.run.dir='{job_dir}'" in args
    assert "hydra.output_subdir=null" in args


def test_a_new_job_forgets_the_previous_jobs_environment(monkeypatch):
    for k in distributed._ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MASTER_PORT", "12345")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(distributed, "_launched_env", {"MASTER_PORT": "12345", "LOCAL_RANK": "0"})
    monkeypatch.setenv("NODE_RANK", "3")  # set by someone else (a cluster): kept
    distributed._forget_previous_job()
    assert "MASTER_PORT" not in os.environ and "LOCAL_RANK" not in os.environ
    assert os.environ["NODE_RANK"] == "3" and distributed._launched_env == {}
    assert "LOCAL_RANK" not in os.environ  # else Lightning thinks the ranks exist already


def test_ddp_config_builds_the_sweep_safe_strategy(compose_cfg):

    cfg = compose_cfg("user=demo_ada", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                      "logger=csv")
    trainer = make_trainer(cfg)
    assert isinstance(trainer.strategy, distributed.DDPStrategy)
    assert trainer.world_size == 2 and trainer.is_global_zero
    assert isinstance(trainer.strategy.launcher, distributed._JobScriptLauncher)


def test_module_and_datamodule_pickle_for_ddp_spawn(compose_cfg):
    from hydra.utils import instantiate

    cfg = compose_cfg("user=demo_ada-demo_bo", *TINY, "data.condition=true")
    dm = instantiate(cfg.data)
    module = instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)
    dm.setup("fit")
    dm2, module2 = pickle.loads(pickle.dumps(dm)), pickle.loads(pickle.dumps(module))
    assert len(dm2.tokenizer) == len(dm.tokenizer) and dm2.control_ids == dm.control_ids
    assert dm2.train_set.blocks.equal(dm.train_set.blocks)
    assert module2.model.config.vocab_size == module.model.config.vocab_size


@pytest.mark.slow
def test_ddp_inside_a_multirun_2_processes_per_job_rank_0_exports(tmp_path):
    """2 jobs x 2 gloo processes, started from a clean folder with the default sweep dir: exactly
    one multirun folder with exactly the 2 job folders; each job's model loads with pipeline."""
    res = run_cli("train.py", "-m", "user=demo_ada,demo_bo", *TINY, "trainer=ddp", "verbose=true",
                  "trainer.devices=2", "trainer.accelerator=cpu", "logger=wandb", "eval=none",
                  f"data.data_dir={tmp_path}/data", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-4000:]
    out = res.stdout + res.stderr
    assert out.count("Starting with 2 processes") >= 2, out[-3000:]  # both jobs, both ranks
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1, sweeps
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["user=demo_ada", "user=demo_bo"]
    assert not (tmp_path / "outputs" / "runs").exists()  # rank 1 wrote no run folder of its own

    from transformers import pipeline

    for job in jobs:
        d = sweeps[0] / job
        assert (d / "train_ddp_process_1.log").exists()  # rank 1 ran in this job's folder
        assert json.loads((d / "metrics.json").read_text())["val/loss"] > 0
        assert len(list((d / "wandb").glob("offline-run-*"))) == 1  # one W&B run: rank 0's
        assert (d / "model" / "README.md").exists()
        gen = pipeline("text-generation", model=str(d / "model"))
        assert len(gen("I think", max_new_tokens=5)[0]["generated_text"]) > len("I think")
