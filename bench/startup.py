"""(4) Sweep overhead: seconds from process start to the first optimizer step of a sweep job, with
warm caches, and what each part costs (interpreter, imports, Hydra, data, tokenizer, model build,
Trainer, W&B, validation sanity check).

It runs the real entry point as a user would (`python train.py -m ...`, a two-job sweep of
model=scratch on the newest 3,200 posts of the largest real timeline) under bench/_job_timer.py, which timestamps the
product's functions and each top-level import without changing them. One cold run fills the
caches (posts, the fitted tokenizer, token ids, .pyc files); then warm runs alternate the default
logger (W&B, offline), logger=csv, and logger=csv with two levers: no sanity-check validation
(trainer.num_sanity_val_steps=0) and torchmetrics told that scipy and matplotlib are absent (it
imports both at start-up whenever they are installed; training uses neither). Job 1 pays the
imports; job 2 runs in the same process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=1, help="warm runs per variant")
    p.add_argument("--posts", type=int, default=3200, help="newest posts (0: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.posts = 0, 1000  # one run: the cold one
    return args


def attribute(events, imports, start, end) -> dict:
    """Seconds of [start, end) by the innermost open interval (product call or import)."""
    marks = []
    for t, name, kind in events:
        if kind in ("B", "E"):
            marks.append((t, kind, name))
    for pkg, t0, t1 in imports:
        marks += [(t0, "B", f"import {pkg}"), (t1, "E", f"import {pkg}")]
    marks.sort(key=lambda m: (m[0], m[1] == "B"))  # ends before begins at the same instant
    stack, out, last = [], defaultdict(float), start
    for t, kind, name in marks:
        lo, hi = max(last, start), min(t, end)
        if hi > lo:
            out[stack[-1] if stack else "other"] += hi - lo
        last = max(last, t)
        if kind == "B":
            stack.append(name)
        elif name in stack:
            stack.reverse()
            stack.remove(name)
            stack.reverse()
    if end > last:
        out[stack[-1] if stack else "other"] += end - max(last, start)
    return dict(out)


def jobs_of(trace) -> list[dict]:
    ev = trace["events"]
    begins = [t for t, n, k in ev if n == "job" and k == "B"]
    steps = [t for t, n, k in ev if n == "optimizer step"]
    out = []
    for i, b in enumerate(begins):
        first = next((s for s in steps if s > b), None)
        if first is None:
            continue
        parts = attribute(ev, trace["imports"], b, first)
        out.append({"begin": b, "first_step": first, "seconds": first - b, "parts": parts})
    return out


def run_once(tag: str, overrides: list[str], tmp: Path, env_extra: dict | None = None) -> dict:
    out = tmp / f"trace-{tag}.json"
    cmd = [sys.executable, str(common.BENCH / "_job_timer.py"), str(out), "train.py", "-m",
           *overrides, f"hydra.sweep.dir={tmp / ('sweep-' + tag)}"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1",
           **(env_extra or {})}
    wall = time.time()
    res = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True, env=env,
                         timeout=900)
    total = time.time() - wall
    if res.returncode != 0:
        raise RuntimeError(f"sweep failed ({tag}):\n{res.stderr[-3000:]}")
    trace = json.loads(out.read_text())
    startup = trace["wall0"] - wall  # interpreter start-up until the timer's first line
    jobs = jobs_of(trace)
    if not jobs:
        raise RuntimeError(f"no optimizer step seen in {tag}:\n{res.stdout[-2000:]}")
    first = jobs[0]
    pre = attribute(trace["events"], trace["imports"], 0.0, first["begin"])
    return {"tag": tag, "process_s": total, "interpreter_s": startup,
            "to_first_step_s": startup + first["first_step"], "before_job_s": first["begin"],
            "before_job_parts": pre, "jobs": jobs}


def group(parts: dict) -> dict:
    """Imports summed (and the biggest packages named), product calls as they are."""
    out = defaultdict(float)
    for k, v in parts.items():
        out["imports" if k.startswith("import ") else k] += v
    return dict(out)


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    handle, df, desc, tmp = common.workload(args.posts, "startup")
    base = [f"user={handle}", "model=scratch", f"data.data_dir={tmp / 'data'}",
            "optim.lr=1e-3,2e-3", "+trainer.max_steps=2", "eval=none", "export=false",
            "trainer.enable_progress_bar=false",
            "+trainer.limit_val_batches=2"]  # shortens the jobs' ends, not their starts
    runs = {"cold": run_once("cold", base, tmp)}
    variants = {  # name: (overrides, environment)
        "wandb": ([], {}),
        "csv": (["logger=csv"], {}),
        # the levers: no sanity-check validation, torchmetrics without scipy/matplotlib
        "csv+levers": (["logger=csv", "+trainer.num_sanity_val_steps=0"],
                       {"BENCH_LAZY_TORCHMETRICS_DEPS": "1"}),
    }
    for rep in range(args.repeats):
        for name in (list(variants) if rep % 2 == 0 else list(variants)[::-1]):
            extra, env = variants[name]
            runs.setdefault(f"warm/{name}", []).append(
                run_once(f"warm-{name}-{rep}", base + extra, tmp, env))
    runs["cold"] = [runs["cold"]]

    summary, rows = {}, []
    for key, rs in runs.items():
        best = min(rs, key=lambda r: r["to_first_step_s"])
        job1, job2 = best["jobs"][0], best["jobs"][1] if len(best["jobs"]) > 1 else None
        summary[key] = {
            "to_first_step_s_median": common.median([r["to_first_step_s"] for r in rs]),
            "to_first_step_s_best": best["to_first_step_s"],
            "job2_to_first_step_s": job2["seconds"] if job2 else None,
            "runs": rs,
        }
        pre = group(best["before_job_parts"])
        j1 = group(job1["parts"])
        j2 = group(job2["parts"]) if job2 else {}
        first_imports = sorted(((k[7:], v) for k, v in {**best["before_job_parts"],
                                                        **job1["parts"]}.items()
                                if k.startswith("import ")), key=lambda kv: -kv[1])
        summary[key]["breakdown"] = {
            "interpreter": best["interpreter_s"], "before job (Hydra, config, imports)": pre,
            "job 1": j1, "job 2": j2, "imports_by_package_job1": dict(first_imports),
        }
    w = summary.get("warm/wandb") or summary["cold"]
    brk = w["breakdown"]
    pre = brk["before job (Hydra, config, imports)"]
    j1, j2 = brk["job 1"], brk["job 2"]
    keys = sorted(set(j1) | set(j2), key=lambda k: -(j1.get(k, 0)))
    rows.append(["interpreter start-up", brk["interpreter"], None])
    rows.append(["before job 1: imports", pre.get("imports", 0.0), None])
    rows.append(["before job 1: Hydra compose + sweep setup", pre.get("other", 0.0)
                 + sum(v for k, v in pre.items() if k not in ("imports", "other")), None])
    for k in keys:
        label = {"other": "Hydra job setup, Lightning internals (other)",
                 "imports": "imports during the job"}.get(k, k)
        rows.append([label, j1.get(k, 0.0), j2.get(k, 0.0) if j2 else None])
    rows.append(["= process start -> first optimizer step", w["to_first_step_s_best"],
                 w["job2_to_first_step_s"]])
    top = ", ".join(f"{k} {v:.1f}s" for k, v in list(brk["imports_by_package_job1"].items())[:6])
    common.table(
        f"Sweep overhead, {'warm' if 'warm/wandb' in summary else 'COLD'} ({desc}, "
        "model=scratch, logger=wandb offline)",
        ["part", "job 1 (s)", "job 2 (s)"], rows,
        caption=f"imports (exclusive): {top}")
    common.table("Process start -> first optimizer step", ["run", "median s", "best s",
                                                           "job 2 s"],
                 [[k, v["to_first_step_s_median"], v["to_first_step_s_best"],
                   v["job2_to_first_step_s"]] for k, v in summary.items()])
    out = {"data": desc, "command": "python train.py -m " + " ".join(base), "runs": summary,
           "machine": common.machine_info(), "target": "<= 8 s to the first step, warm",
           "met": w["to_first_step_s_median"] <= 8.0}
    common.save("startup", out)
    return out


if __name__ == "__main__":
    main()
