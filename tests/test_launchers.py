"""Scale-out through Hydra's launchers and sweepers: joblib (local parallel jobs, run for real),
SLURM via submitit (composes: no cluster here), Optuna (2 trials for real)."""

import json

import pytest
from conftest import TINY, run_cli


@pytest.mark.slow
def test_joblib_runs_a_2_job_sweep_in_parallel_and_report_reads_it(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli("train.py", "-m", "user=demo_ada,demo_bo", *TINY, "export=false", "eval=none",
                  "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                  f"data.data_dir={tmp_path}/data", f"hydra.sweep.dir={sweep}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in res.stdout + res.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["user=demo_ada", "user=demo_bo"]
    for job in jobs:
        assert json.loads((sweep / job / "metrics.json").read_text())["val/loss"] > 0
        status = json.loads((sweep / job / "status.json").read_text())
        assert status["status"] == "completed"
    res = run_cli("report.py", str(sweep), "--wandb", "off")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 jobs: 2 done, 0 running, 0 failed" in res.stdout
    md = (sweep / "report.md").read_text()
    assert "| best | user | status | val/loss |" in md and "demo_bo" in md
    assert (sweep / "curves.png").exists() and (sweep / "val_loss_vs_user.png").exists()
    header = (sweep / "report.csv").read_text().splitlines()[0]
    assert "val/loss_demo_ada" in header  # a single user's val/loss, comparable with mixes'


def test_slurm_launcher_composes_with_its_knobs(compose_cfg):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose_cfg("user=demo_ada", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                      "trainer.num_nodes=2", "hydra.launcher.partition=gpu")
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    for knob in ("partition", "timeout_min", "gpus_per_node", "tasks_per_node", "mem_gb",
                 "cpus_per_task", "nodes", "account", "array_parallelism", "setup"):
        assert knob in launcher, knob
    # one SLURM task per DDP rank: the launcher follows the trainer
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert launcher["partition"] == "gpu"
    assert launcher["submitit_folder"].endswith("/.submitit/%j")
    obj = instantiate(cfg.hydra.launcher)  # the plugin accepts every key (no SLURM needed)
    assert type(obj).__name__ == "SlurmLauncher"
    plain = compose_cfg("user=demo_ada", "hydra/launcher=slurm")  # trainer=default: 1 task
    assert OmegaConf.to_container(plain.hydra.launcher, resolve=True)["tasks_per_node"] == 1


def test_optuna_search_composes(compose_cfg):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_cfg("user=demo_ada", "+hparams_search=optuna")
    sw = cfg.hydra.sweeper
    assert sw._target_.endswith("OptunaSweeper") and sw.storage is None
    assert sw.direction == "minimize" and set(sw.params) >= {"optim.lr", "trainer.max_epochs"}


@pytest.mark.slow
def test_optuna_runs_trials_and_returns_the_best(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    res = run_cli("train.py", "+hparams_search=optuna", "user=demo_ada", *TINY, "export=false",
                  "eval=none", "hydra.sweeper.n_trials=2",
                  "hydra.sweeper.params={optim.lr: 'tag(log, interval(1e-4, 1e-2))'}",
                  f"data.data_dir={tmp_path}/data", f"hydra.sweep.dir={sweep}")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "Best parameters" in out and "Best value" in out
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2 and all((j / "metrics.json").exists() for j in jobs)
    assert jobs[0].name.startswith("0_optim.lr=") and jobs[1].name.startswith("1_optim.lr=")
    best = min(json.loads((j / "metrics.json").read_text())["val/loss"] for j in jobs)
    assert f"{best:.4f}"[:5] in out  # the sweeper read val/loss back from train.py
    assert (sweep / "optimization_results.yaml").exists()
