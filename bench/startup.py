"""(4) Sweep overhead: seconds from process start to the first optimizer step of a sweep job, with
warm caches, and what each part costs (interpreter, imports, Hydra, prepare, tokenizer, model
build, Trainer, W&B, validation sanity check).

It runs the real entry point as a user would (`python train.py -m ...`, a two-job sweep of
model=scratch on the newest 3,200 posts of the largest real timeline) under this script's
`--trace` mode, which timestamps the product's functions and each top-level import without
changing them. One cold run fills the caches (posts, the cleaned split, the fitted tokenizer,
token ids, .pyc files); then warm runs alternate the default logger (W&B, offline), logger=csv,
and logger=csv with two levers not taken in the product: no sanity-check validation
(trainer.num_sanity_val_steps=0) and torchmetrics told that scipy and matplotlib are absent
(`lazy_torchmetrics_deps`). Job 1 pays the imports; job 2 runs in the same process.

    python bench/startup.py --trace OUT.json train.py -m ...   # the child: time one sweep
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

WALL0, T0 = time.time(), time.perf_counter()  # the child's start (--trace)

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
    cmd = [sys.executable, __file__, "--trace", str(out), "train.py", "-m",
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


def parts_rows(b: dict) -> list[list]:
    """[part, job 1 s, job 2 s] rows of a run's breakdown, the biggest first."""
    pre, j1, j2 = b["before job (Hydra, config, imports)"], b["job 1"], b["job 2"]
    rows = [["interpreter start-up", b["interpreter"], None],
            ["before job 1: imports", pre.get("imports", 0.0), None],
            ["before job 1: Hydra compose, sweep setup",
             sum(v for k, v in pre.items() if k != "imports"), None]]
    for k in sorted(set(j1) | set(j2), key=lambda x: -j1.get(x, 0)):
        rows.append([{"other": "other (Hydra job, Lightning setup)",
                      "imports": "imports in the job"}.get(k, k), j1.get(k, 0.0), j2.get(k)])
    return rows


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    handle, df, desc, tmp = common.workload(args.posts, "startup")
    base = [f"user={handle}", "model=scratch", "model.scratch.arch=gpt2", f"data.data_dir={tmp / 'data'}",
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

    summary = {}
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
    rows = parts_rows(w["breakdown"]) + [["= process start -> first optimizer step",
                                          w["to_first_step_s_best"], w["job2_to_first_step_s"]]]
    top = ", ".join(f"{k} {v:.1f}s" for k, v in list(
        w["breakdown"]["imports_by_package_job1"].items())[:6])
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
           "target": "<= 8 s to the first step, warm",
           "met": w["to_first_step_s_median"] <= 8.0}
    common.save("startup", out)
    return out


# -- the child: `startup.py --trace OUT.json train.py ARGS` ------------------------------------
EVENTS: list = []  # [seconds since T0, name, "B" | "E" | "P"]
IMPORTS: list = []  # [top-level package, start, end]
TOP = {"torch", "lightning", "transformers", "wandb", "hydra", "omegaconf", "pandas", "pyarrow",
       "numpy", "tokenizers", "torchmetrics", "scipy", "sklearn", "huggingtweets", "rich",
       "safetensors", "huggingface_hub", "yaml", "PIL", "matplotlib", "accelerate", "sympy",
       "pytorch_lightning", "lightning_fabric", "lightning_utilities", "fsspec", "requests"}
PATCHES = {  # module: [(owner attribute or "", function, event name)]
    "hydra.core.utils": [("", "run_job", "job")],
    "huggingtweets.ingest.prepare": [("", "prepare", "prepare: read + clean + split (or cache)")],
    "huggingtweets.train.data": [("TweetDataModule", "_flat_tokens", "tokens: tokenize or cache"),
                                 ("TweetDataModule", "setup", "data setup: oversample + pack")],
    "huggingtweets.train.module": [("TweetLM", "build", "model build (init)"),
                                   ("TweetLM", "configure_optimizers", "optimizer + schedule")],
    "huggingtweets.train.tokenizer": [("", "train_tokenizer", "tokenizer: train or cache")],
    "huggingtweets.train.tracking": [("", "log_inputs", "W&B: log input artifacts")],
    "lightning.pytorch.trainer.trainer": [("Trainer", "__init__", "Trainer()"),
                                          ("Trainer", "fit", "fit")],
    "lightning.pytorch.loops.fit_loop": [("_FitLoop", "run", "fit: setup + first forward/backward")],
    "lightning.pytorch.loops.evaluation_loop": [("_EvaluationLoop", "run",
                                                 "validation (sanity check)")],
    "lightning.pytorch.loggers.wandb": [("WandbLogger", "experiment", "W&B: start the run")],
}


def now() -> float:
    return time.perf_counter() - T0


def wrap(owner, attr: str, name: str) -> None:
    """Record when owner.attr (a function or a property) starts and ends."""
    real = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr)
    fn = real.fget if isinstance(real, property) else real

    def timed(*a, **k):
        EVENTS.append([now(), name, "B"])
        try:
            return fn(*a, **k)
        finally:
            EVENTS.append([now(), name, "E"])

    setattr(owner, attr, property(timed, real.fset) if isinstance(real, property) else timed)


def patch(name: str, module) -> None:
    for owner, attr, event in PATCHES.get(name, []):
        wrap(getattr(module, owner) if owner else module, attr, event)
    if name == "torch.optim.optimizer":
        module.register_optimizer_step_post_hook(
            lambda opt, a, k: EVENTS.append([now(), "optimizer step", "P"]))


def trace() -> None:
    """Run the script with an import hook that times the top-level packages as they are imported
    and, once a module of PATCHES has loaded, wraps its functions. OUT.json gets the events and
    the start on the wall clock (time.time), so the parent can add the interpreter's start-up."""
    import atexit
    import importlib.abc
    import runpy

    watched = set(PATCHES) | {"torch.optim.optimizer"}

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            timed = name in TOP
            if not timed and name not in watched:
                return None
            start = now()
            spec = next((s for f in sys.meta_path if f is not self and hasattr(f, "find_spec")
                         for s in [f.find_spec(name, path, target)] if s is not None), None)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            real_exec = spec.loader.exec_module

            def exec_module(module):
                try:
                    real_exec(module)
                finally:
                    if timed:
                        IMPORTS.append([name, start, now()])
                if name in watched:
                    patch(name, module)

            try:
                spec.loader.exec_module = exec_module
            except (AttributeError, TypeError):
                pass
            return spec

    out, script, *args = sys.argv[2:]
    if os.environ.get("BENCH_LAZY_TORCHMETRICS_DEPS") == "1":
        lazy_torchmetrics_deps()
    sys.meta_path.insert(0, Hook())
    atexit.register(lambda: Path(out).write_text(json.dumps(
        {"wall0": WALL0, "events": EVENTS, "imports": IMPORTS, "end": now()})))
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


def lazy_torchmetrics_deps() -> None:
    """The lever: torchmetrics (imported by Lightning at start-up) imports scipy.signal and
    matplotlib.pyplot whenever they are installed; training never uses them. Telling torchmetrics
    they are absent skips both imports."""
    import lightning_utilities.core.imports as lui

    real = lui.package_available
    lui.package_available = lambda name: False if name in ("scipy", "matplotlib") else real(name)


if __name__ == "__main__":
    trace() if sys.argv[1:2] == ["--trace"] else main()
