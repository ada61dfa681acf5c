"""(4) Sweep overhead: seconds from process start to the first optimizer step of a sweep job, with
warm caches: the real entry point (`python train.py -m ...`, a two-job sweep of model=scratch on
the newest 3,200 posts of the largest real timeline) with one Lightning callback added by override
(`first_step`); Hydra writes each job's `.hydra/` files as the job starts. A cold run fills the
caches; then warm runs alternate the default logger (W&B, offline) and logger=csv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=1, help="warm runs per logger")
    p.add_argument("--posts", type=int, default=3200, help="newest posts (0: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.posts = 0, 1000  # one run: the cold one
    return args


def first_step(out: str):
    """The Lightning callback the sweep's jobs get by override: the wall time of the job's first
    optimizer step, in <job>/first_step (Lightning is imported here, inside the timed job)."""
    import lightning as L

    class FirstStep(L.Callback):
        def on_train_batch_end(self, *_):
            path = Path(out) / "first_step"
            if not path.exists():
                path.write_text(repr(time.time()))

    return FirstStep()


def run_once(tag: str, overrides: list[str], tmp: Path) -> dict:
    sweep = tmp / f"sweep-{tag}"
    cmd = [sys.executable, "train.py", "-m", *overrides, f"hydra.sweep.dir={sweep}",
           "+trainer.callbacks.first_step._target_=startup.first_step",
           "+trainer.callbacks.first_step.out=${hydra:runtime.output_dir}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(common.BENCH), str(common.ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    start = time.time()
    res = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True, env=env, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(f"sweep failed ({tag}):\n{res.stderr[-3000:]}")
    jobs = sorted((d for d in sweep.iterdir() if (d / "first_step").exists()),
                  key=lambda d: (d / ".hydra" / "overrides.yaml").stat().st_mtime)
    if not jobs:
        raise RuntimeError(f"no optimizer step seen in {tag}:\n{res.stdout[-2000:]}")
    steps = [float((d / "first_step").read_text()) for d in jobs]
    begins = [(d / ".hydra" / "overrides.yaml").stat().st_mtime for d in jobs]
    return {"tag": tag, "process_s": time.time() - start, "to_first_step_s": steps[0] - start,
            "job1_s": steps[0] - begins[0], "job2_s": steps[-1] - begins[-1]}


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    handle, df, desc, tmp = common.workload(args.posts, "startup")
    base = [f"user={handle}", "model=scratch", "model.scratch.arch=gpt2",
            f"data.data_dir={tmp / 'data'}", "optim.lr=1e-3,2e-3", "+trainer.max_steps=2",
            "eval=none", "export=false", "trainer.enable_progress_bar=false",
            "+trainer.limit_val_batches=2"]  # shortens the jobs' ends, not their starts
    runs = {"cold": [run_once("cold", base, tmp)]}
    variants = {"wandb": [], "csv": ["logger=csv"]}
    for rep in range(args.repeats):
        for name in (list(variants) if rep % 2 == 0 else list(variants)[::-1]):
            runs.setdefault(f"warm/{name}", []).append(
                run_once(f"warm-{name}-{rep}", base + variants[name], tmp))
    summary = {k: {"to_first_step_s_median": common.median([r["to_first_step_s"] for r in rs]),
                   "to_first_step_s_best": min(r["to_first_step_s"] for r in rs),
                   "job1_s_median": common.median([r["job1_s"] for r in rs]),
                   "job2_to_first_step_s": common.median([r["job2_s"] for r in rs if r["job2_s"]]),
                   "runs": rs} for k, rs in runs.items()}
    md = common.table(
        f"Process start -> first optimizer step ({desc}, model=scratch)",
        ["run", "s (median)", "s (best)", "of which job 1 (s)", "job 2 (s)"],
        [[k, v["to_first_step_s_median"], v["to_first_step_s_best"], v["job1_s_median"],
          v["job2_to_first_step_s"]] for k, v in summary.items()],
        caption="job 1 = from its start (Hydra's .hydra/ files) to its first step, imports "
                "included; the rest is the interpreter, Hydra's compose and the sweep's set-up")
    w, c = summary.get("warm/wandb") or summary["cold"], summary.get("warm/csv")
    out = {"data": desc, "sweep": "python train.py -m " + " ".join(base), "runs": summary}
    common.save("startup", out, [
        f"{w['to_first_step_s_median']:.1f} s", "<= 8 s", w["to_first_step_s_median"] <= 8,
        f"job 2 of the sweep {w['job2_to_first_step_s']:.1f} s"
        + (f"; logger=csv {c['to_first_step_s_median']:.1f} s" if c else "")],
        [f"`{out['sweep']}`", "", *md])
    return out


if __name__ == "__main__":
    main()
