"""report.py: one table + plots for a sweep, including running and failed jobs; --check; W&B."""

import json
import os
import time

import pytest
import yaml
from conftest import ROOT

from huggingtweets.sweep import plots, report


def load_cli():
    """The root entry point report.py (not a package module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("report_cli", ROOT / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


AXES = {"optim.lr": ["1e-3", "3e-3"], "trainer.max_epochs": ["2", "4"],
        "user": ["demo_ada-demo_bo", "demo_ada-demo_bo-demo_cy"]}


def fake_loss(lr, epochs, user):
    return 6.0 - 0.2 * int(epochs) - (0.1 if lr == "3e-3" else 0) + 0.05 * user.count("-")


def make_job(sweep, lr, epochs, user, state="done"):
    name = f"optim.lr={lr},trainer.max_epochs={epochs},user={user}"
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"optim.lr={lr}", f"trainer.max_epochs={epochs}", f"user={user}", "model=scratch"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"trainer": {"max_epochs": int(epochs)}, "logger": {"wandb": {"project": "ht-test"}}}))
    final = fake_loss(lr, epochs, user)
    n = int(epochs) if state == "done" else 1
    rows = ["epoch,step,train/loss_epoch,train/loss_step,val/loss,val/loss_demo_ada"]
    for e in range(n):
        v = final + 0.3 * (int(epochs) - 1 - e)
        rows += [f"{e},{e * 10 + 4},,{v + 0.5},,", f"{e},{e * 10 + 9},,,{v},{v - 0.01}",
                 f"{e},{e * 10 + 9},{v + 0.4},,,"]
    if state == "done":  # train.py's final validate() of the best checkpoint: not a curve point
        rows.append(f"{n},{n * 10},,,{final},{final - 0.01}")
    (job / "csv").mkdir()
    (job / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    if state == "done":
        (job / "metrics.json").write_text(json.dumps(
            {"val/loss": final, "val/ppl": 2.718 ** final, "val/loss_demo_ada": final - 0.01}))
        (job / "status.json").write_text(json.dumps({"status": "completed"}))
    elif state == "running":  # this very process is the job's process: alive
        (job / "status.json").write_text(json.dumps(
            {"status": "running", "pid": os.getpid(), "host": __import__("socket").gethostname()}))
    elif state == "failed":
        (job / "status.json").write_text(json.dumps(
            {"status": "failed", "error": "UserError: @demo_cy: too few tweets"}))
    elif state == "stale":  # no status file, nothing written for an hour
        old = time.time() - 3600
        for p in job.rglob("*"):
            os.utime(p, (old, old))
    return name


@pytest.fixture
def sweep(tmp_path):
    sweep = tmp_path / "2026-01-01_00-00-00"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweeper": {"params": {k: ",".join(v) for k, v in AXES.items()}},
        "overrides": {"task": ["experiment=lr_epochs_mix"]}}}))
    states = iter(["done"] * 4 + ["failed", "stale", "running"])
    names = {}
    for user in AXES["user"]:
        for epochs in AXES["trainer.max_epochs"]:
            for lr in AXES["optim.lr"]:
                state = next(states, None)
                if state:  # the 8th job has not started yet
                    names[state, lr, epochs, user] = make_job(sweep, lr, epochs, user, state)
    return sweep


def test_report_of_a_sweep_with_done_running_failed_and_unstarted_jobs(sweep):
    rep = plots.write_report(sweep, wandb="off")
    assert rep.axes == ["optim.lr", "trainer.max_epochs", "user"]
    assert rep.expected == 8
    assert rep.counts == {"done": 4, "running": 1, "failed": 2}
    assert report.summary_line(rep) == "8 jobs: 4 done, 1 running, 2 failed, 1 not started"
    t = rep.table
    assert list(t.columns[:4]) == ["best", "optim.lr", "trainer.max_epochs", "user"]
    best = t[t["best"] == report.BEST]
    assert len(best) == 1
    assert (best["optim.lr"].item(), best["trainer.max_epochs"].item()) == ("3e-3", "4")
    assert best["val/loss"].item() == pytest.approx(fake_loss("3e-3", "4", "demo_ada-demo_bo"))
    done = t[t["status"] == "done"]
    assert (done["epochs"] == done["trainer.max_epochs"].map(lambda e: f"{e}/{e}")).all()
    failed = t[t["status"] == "failed"]
    assert "too few tweets" in " ".join(failed["note"]) and "no activity" in " ".join(failed["note"])
    assert t[t["status"] == "running"]["note"].item().startswith("latest val/loss")

    csv = (sweep / "report.csv").read_text()
    assert csv.count("\n") == 8  # header + 7 jobs
    md = (sweep / "report.md").read_text()
    assert "8 jobs: 4 done, 1 running, 2 failed, 1 not started" in md
    assert "## Failed jobs" in md and "too few tweets" in md and "## Running jobs" in md
    assert f"| **{report.BEST}** | **3e-3** | **4** |" in md
    for png in ("val_loss_vs_lr.png", "curves.png"):
        data = (sweep / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
        assert f"![{png}]({png})" in md
    assert rep.images == ["val_loss_vs_lr.png", "curves.png"]


def test_curves_skip_the_final_validate_of_the_best_checkpoint(sweep):
    job = next(j for j in report.collect(sweep) if j.status == "done")
    assert [c["epoch"] for c in job.curve] == list(range(job.max_epochs))
    assert all("train/loss" in c for c in job.curve)


def test_check_passes_on_its_own_results_and_fails_loudly_on_a_difference(sweep, tmp_path, capsys):
    cli = load_cli()
    plots.write_report(sweep, wandb="off")
    expected = tmp_path / "results.csv"
    expected.write_text((sweep / "report.csv").read_text())
    assert cli.main([str(sweep), "--check", str(expected), "--wandb", "off"]) == 0
    assert "OK: matches" in capsys.readouterr().out

    rows = report.read_expected(expected)
    row = next(r for r in rows if (r["optim.lr"], r["trainer.max_epochs"], r["user"])
               == ("1e-3", "2", "demo_ada-demo_bo"))
    row["val/loss"] = str(float(row["val/loss"]) + 0.01)
    _write_csv(expected, rows)
    assert cli.main([str(sweep), "--check", str(expected), "--wandb", "off"]) == 1
    err = capsys.readouterr().err
    assert "FAIL" in err and "optim.lr=1e-3, trainer.max_epochs=2, user=demo_ada-demo_bo" in err
    assert "(diff -0.0100, tolerance 0.001)" in err and "got:" in err
    rep = report.build(sweep)
    assert report.check(rep, rows, tolerance=0.02) == []  # within the tolerance: passes
    assert len(report.check(rep, rows, tolerance=0.001)) == 1
    (tmp_path / "README.md").write_text("# not a results file\n")
    with pytest.raises(report.UserError, match="no results rows"):
        report.read_expected(tmp_path / "README.md")
    with pytest.raises(report.UserError, match="cannot read it"):
        report.read_expected(tmp_path / "missing.csv")


def test_check_holds_each_job_to_its_own_tolerance_and_prints_the_largest_difference(sweep, tmp_path,
                                                                                      capsys):
    cli = load_cli()
    plots.write_report(sweep, wandb="off")
    expected = tmp_path / "results.csv"
    rows = report.read_expected(sweep / "report.csv")
    stable, unstable = (r for r in rows if r["status"] == "done" and r["optim.lr"] == "1e-3")
    unstable["val/loss_demo_ada"] = str(float(unstable["val/loss_demo_ada"]) + 0.05)
    _write_csv(expected, rows)
    tolerances = tmp_path / "results.tolerance.csv"
    tolerances.write_text("job,tolerance\n" + "".join(
        f'"{r["job"]}",{0.1 if r is unstable else 0.001}\n' for r in rows))
    assert cli.main([str(sweep), "--check", str(expected), "--wandb", "off"]) == 0
    out = capsys.readouterr().out
    where = ", ".join(f"{a}={unstable[a]}" for a in AXES)
    assert f"largest difference: 0.050000 nats (val/loss_demo_ada of {where})" in out
    assert f"OK: matches the results in {expected} within each job's tolerance in {tolerances}" in out

    stable["val/loss"] = str(float(stable["val/loss"]) + 0.002)  # a stable job's 0.002 fails
    _write_csv(expected, rows)
    assert cli.main([str(sweep), "--check", str(expected), "--wandb", "off"]) == 1
    captured = capsys.readouterr()
    assert "largest difference: 0.050000 nats" in captured.out
    stable_where = ", ".join(f"{a}={stable[a]}" for a in AXES)
    [problem] = [ln for ln in captured.err.splitlines() if ln.startswith("  ")]
    assert problem.startswith(f"  {stable_where}: val/loss") and "tolerance 0.001" in problem
    # --tolerance still sets one for every job
    assert cli.main([str(sweep), "--check", str(expected), "--wandb", "off", "--tolerance", "0.1"]) == 0


def _write_csv(path, rows):
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_check_asserts_the_conclusion_best_job_and_order(sweep, tmp_path):
    plots.write_report(sweep, wandb="off")
    rows = report.read_expected(sweep / "report.csv")
    rep = report.build(sweep)
    done = sorted((r for r in rows if r["status"] == "done"), key=lambda r: float(r["val/loss"]))
    best, second = done[0], done[1]
    # swap the two best results: every value still within a loose tolerance, the conclusion not
    gap = float(second["val/loss"]) - float(best["val/loss"])
    best["val/loss"], second["val/loss"] = second["val/loss"], best["val/loss"]
    best["best"], second["best"] = second["best"], best["best"]
    problems = report.check(rep, rows, tolerance=gap / 2.5)
    assert any(p.startswith("the best job is") for p in problems)
    assert any(p.startswith("order:") for p in problems)


def test_check_reports_missing_and_extra_rows(sweep):
    plots.write_report(sweep, wandb="off")
    rows = report.read_expected(sweep / "report.csv")
    rep = report.build(sweep)
    assert any("not in the expected results" in p for p in report.check(rep, rows[:-1]))
    extra = {**rows[0], "optim.lr": "9e-3", "best": ""}
    assert any("missing from this sweep" in p for p in report.check(rep, rows + [extra]))


def test_wandb_report_run_in_the_sweeps_group(sweep, tmp_path, monkeypatch):
    import wandb

    calls = {}

    class FakeRun:
        summary = {}

        def log(self, payload):
            calls["log"] = payload

        def finish(self):
            calls["finished"] = True

    def fake_init(**kwargs):
        calls["init"] = kwargs
        return FakeRun()

    monkeypatch.setattr(wandb, "init", fake_init)
    rep = report.build(sweep)
    assert report.log_to_wandb(rep, tmp_path, [], "auto") is None  # tests run W&B offline
    assert "init" not in calls
    monkeypatch.setenv("WANDB_MODE", "online")
    assert report.log_to_wandb(rep, tmp_path, [], "auto") == "online"
    init = calls["init"]
    assert (init["project"], init["group"], init["job_type"]) == ("ht-test", sweep.name, "report")
    table = calls["log"]["sweep"]
    assert isinstance(table, wandb.Table) and len(table.data) == 7
    assert FakeRun.summary["best_job"] == rep.best and calls["finished"]


def test_no_jobs_is_a_clear_error(tmp_path):
    from huggingtweets.errors import UserError

    with pytest.raises(UserError, match="no job folders"):
        report.build(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        report.build(tmp_path / "missing")


def test_per_user_columns_come_from_the_projects_own_reading_of_user(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    users = {"demo_ada+demo_bo": None, "demo_ada-demo_bo": None, "demo_cy": "demo_cy",
             "bo-b.bsky.social": "bo-b.bsky.social"}
    for user in users:
        job = sweep / make_job(sweep, "1e-3", "2", user)
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({**cfg, "user": user}))
        metrics = json.loads((job / "metrics.json").read_text())
        metrics.pop("val/loss_demo_ada")
        (job / "metrics.json").write_text(json.dumps(metrics))
    jobs = {j.overrides["user"]: j for j in report.collect(sweep)}
    for user, single in users.items():
        per_user = sorted(k for k in jobs[user].metrics if k.startswith("val/loss_"))
        assert per_user == ([f"val/loss_{single}"] if single else []), (user, per_user)
