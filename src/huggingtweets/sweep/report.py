"""One table and two plots for a whole Hydra multirun, instead of forty run directories.

    python report.py outputs/multirun/2026-01-01_12-00-00      # or no argument: the newest sweep

Reads every job's overrides, `metrics.json` and `csv/metrics.csv`, and writes `report.csv`,
`report.md` (best job marked, failed and running jobs named) and the plots (sweep/plots.py) into
the sweep folder, for a finished sweep or one still running. `check` compares a report with
committed results (`--check`); `log_to_wandb` logs it to the sweep's W&B group.
"""

import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from huggingtweets.errors import UserError

STATUS_FILE = "status.json"
# Preferred plot axes: x, then one line per value of the second.
X_AXIS, LINE_AXIS = "optim.lr", "trainer.max_epochs"
BEST, PANEL_BEST = "★", "●"


@dataclass
class Job:
    name: str
    path: Path
    overrides: dict[str, str]
    status: str  # done | running | failed
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)  # one row per validation: epoch, val/loss...
    max_epochs: int | None = None
    minutes: float | None = None
    error: str = ""


def parse_number(value):
    """'1e-3' -> 0.001, '4' -> 4, 'demo_ada' -> None."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() and re.fullmatch(r"[+-]?\d+", str(value).strip()) else f


def _read_curve(path: Path) -> list[dict]:
    """Validation rows of Lightning's CSV log, merged with the epoch's train/loss."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception:  # missing, or a half-written file of a running job
        return []
    if "val/loss" not in df or "epoch" not in df:
        return []
    rows = []
    train = df.dropna(subset=["train/loss_epoch"]) if "train/loss_epoch" in df else None
    # Epochs that trained: the final trainer.validate() of the best checkpoint logs one more
    # val/loss row, at epoch == max_epochs with no training; it is not a point of the curve.
    trained = {int(e) for col in ("train/loss_epoch", "train/loss_step") if col in df
               for e in df.dropna(subset=[col])["epoch"]}
    for _, r in df.dropna(subset=["val/loss"]).iterrows():
        if trained and int(r["epoch"]) not in trained:
            continue
        row = {k: float(v) for k, v in r.items() if k.startswith("val/") and v == v}
        row["epoch"] = int(r["epoch"])
        t = train[train["epoch"] == r["epoch"]] if train is not None else ()
        if len(t):
            row["train/loss"] = float(t["train/loss_epoch"].iloc[-1])
        rows.append(row)
    return rows


def _load(path: Path, parse, errors) -> dict:
    """`parse` of the file's text; {} when it is missing or does not parse (`errors`)."""
    try:
        return parse(path.read_text()) if path.exists() else {}
    except errors:
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _status(job_dir: Path, has_metrics: bool, stale_minutes: float) -> tuple[str, str]:
    if has_metrics:
        return "done", ""
    info = _load(job_dir / STATUS_FILE, json.loads, ValueError)
    if info.get("status") == "failed":
        return "failed", info.get("error", "")
    if info.get("status") == "completed":  # finished without metrics.json: train.py crashed late
        return "failed", "completed without writing metrics.json"
    if info.get("status") == "running" and info.get("host") == socket.gethostname():
        if _pid_alive(int(info.get("pid", 0))):
            return "running", ""
        return "failed", "its process is gone (killed, or the sweep stopped)"
    # No status file (a sweep without the JobStatus callback) or another host: judge by activity.
    newest = max((p.stat().st_mtime for p in job_dir.rglob("*") if p.is_file()), default=0.0)
    if time.time() - newest < stale_minutes * 60:
        return "running", ""
    return "failed", f"no metrics.json and no activity for {stale_minutes:g} minutes"


def _users(user) -> list[str]:
    """A job's handles, read as train.py reads `user=` (a '+' or '-' mix, Bluesky handles with
    dashes); [] when the job's config has none, or one train.py would have refused."""
    from huggingtweets.ingest.handles import parse_users

    try:
        return parse_users(str(user)) if user else []
    except UserError:
        return []


def collect(sweep_dir: str | Path, stale_minutes: float = 30) -> list[Job]:
    """Every job of a sweep folder (any folder holding `<job>/.hydra/overrides.yaml`)."""
    sweep = Path(sweep_dir)
    if not sweep.is_dir():
        raise UserError(f"{sweep} is not a folder: pass a multirun folder, e.g. outputs/multirun/<time>")
    jobs = []
    for d in sorted(p for p in sweep.iterdir() if (p / ".hydra" / "overrides.yaml").exists()):
        items = yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text()) or []
        overrides = {k.lstrip("+~"): v for k, _, v in (str(i).partition("=") for i in items)}
        metrics_path, cfg_path = d / "metrics.json", d / ".hydra" / "config.yaml"
        metrics = _load(metrics_path, lambda t: {k: float(v) for k, v in json.loads(t).items()},
                        ValueError)
        status, error = _status(d, bool(metrics), stale_minutes)
        cfg = _load(cfg_path, lambda text: yaml.safe_load(text) or {}, yaml.YAMLError)
        users = _users(cfg.get("user"))
        if len(users) == 1 and "val/loss" in metrics:
            # a single user's val/loss is its per-user loss: comparable with the mixes'
            metrics.setdefault(f"val/loss_{users[0]}", metrics["val/loss"])
        minutes = ((metrics_path.stat().st_mtime - cfg_path.stat().st_mtime) / 60
                   if metrics and cfg_path.exists() else None)
        jobs.append(Job(d.name, d, overrides, status, metrics, _read_curve(d / "csv" / "metrics.csv"),
                        (cfg.get("trainer") or {}).get("max_epochs"), minutes, error))
    return jobs


def _sweep_overrides(sweep_dir: str | Path) -> tuple[dict, list]:
    """(the sweep's hydra config, its parsed overrides: sweeper params, then the command line)."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.exists():
        return {}, []
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra", {})
        params = (hydra.get("sweeper") or {}).get("params") or {}
        args = {key: f"{key}={value}" for key, value in params.items()}
        for o in hydra.get("overrides", {}).get("task", []):  # the command line wins
            args[str(o).split("=", 1)[0]] = str(o)
        return hydra, OverridesParser.create().parse_overrides(list(args.values()))
    except Exception:
        return {}, []


def expected_jobs(sweep_dir: str | Path) -> int | None:
    """How many jobs the sweep will have (from its multirun.yaml), or None when unknown."""
    hydra, overrides = _sweep_overrides(sweep_dir)
    if not hydra:
        return None
    sweeper = hydra.get("sweeper") or {}
    if sweeper.get("n_trials"):  # optuna and friends
        return int(sweeper["n_trials"])
    try:
        return math.prod(len(list(o.sweep_string_iterator())) for o in overrides
                         if o.is_sweep_override())
    except Exception:  # interval() and other sweeps that cannot be counted
        return None


def swept_axes(jobs: list[Job], sweep_dir: str | Path | None = None) -> list[str]:
    """The overrides the sweep varies (multirun.yaml's order), then others that differ."""
    keys = list(dict.fromkeys(k for j in jobs for k in j.overrides))
    varying = [k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1]
    declared = ([o.key_or_group for o in _sweep_overrides(sweep_dir)[1] if o.is_sweep_override()]
                if sweep_dir is not None else [])
    axes = [k for k in declared if k in keys and not k.startswith("hydra.")]
    axes += sorted(k for k in varying if k not in axes)
    return axes


def sort_key(value):
    n = parse_number(value)
    return (0, n, "") if n is not None else (1, 0, str(value))


def plot_roles(axes: list[str], jobs: list[Job]) -> tuple[str | None, str | None, list[str]]:
    """(x axis, line axis, panel axes) for the plots."""
    numeric = [a for a in axes if all(parse_number(j.overrides.get(a)) is not None for j in jobs)]
    x = X_AXIS if X_AXIS in numeric else (numeric[0] if numeric else (axes[0] if axes else None))
    line = LINE_AXIS if LINE_AXIS in axes and LINE_AXIS != x else None
    panels = [a for a in axes if a not in (x, line)]
    return x, line, panels


@dataclass
class Report:
    sweep_dir: Path
    jobs: list[Job]
    axes: list[str]
    metric: str
    expected: int | None
    table: object  # pandas.DataFrame
    best: str | None  # job name
    panel_best: dict  # panel values -> job name
    images: list[str] = field(default_factory=list)  # the plots written
    wandb: str | None = None  # the W&B mode the report was logged in, if it was

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(j.status == s for j in self.jobs) for s in ("done", "running", "failed")}


def build(sweep_dir: str | Path, metric: str = "val/loss", stale_minutes: float = 30) -> Report:
    import pandas as pd

    sweep = Path(sweep_dir)
    jobs = collect(sweep, stale_minutes)
    if not jobs:
        raise UserError(f"{sweep} holds no job folders (<job>/.hydra/overrides.yaml): is it a "
                        "multirun folder, e.g. outputs/multirun/<time>?")
    axes = swept_axes(jobs, sweep)
    x, line, panels = plot_roles(axes, jobs)
    order = [a for a in (panels + [line, x]) if a]
    jobs.sort(key=lambda j: tuple(sort_key(j.overrides.get(a, "")) for a in order))

    done = [j for j in jobs if j.status == "done" and metric in j.metrics]
    best = min(done, key=lambda j: j.metrics[metric]).name if done else None
    panel_best = {}
    for j in sorted(done, key=lambda j: j.metrics[metric]):  # stable: ties go to the first job
        panel_best.setdefault(tuple(j.overrides.get(a) for a in panels), j.name)

    metric_cols = list(dict.fromkeys(k for j in jobs for k in j.metrics))
    metric_cols.sort(key=lambda k: (k != metric, not k.startswith(metric), k))
    rows = []
    for j in jobs:
        mark = BEST if j.name == best else (PANEL_BEST if j.name in panel_best.values() else "")
        row = {"best": mark}
        row.update({a: j.overrides.get(a, "") for a in axes})
        row["status"] = j.status
        row.update({m: j.metrics.get(m, math.nan) for m in metric_cols})
        done_epochs = max((c["epoch"] for c in j.curve), default=-1) + 1
        row["epochs"] = f"{done_epochs}/{j.max_epochs}" if j.max_epochs else str(done_epochs)
        row["minutes"] = round(j.minutes, 2) if j.minutes is not None else math.nan
        note = j.error
        if j.status == "running" and j.curve:
            note = f"latest {metric} {j.curve[-1].get(metric, math.nan):.4f}"
        row["note"] = note
        row["job"] = j.name
        rows.append(row)
    return Report(sweep, jobs, axes, metric, expected_jobs(sweep), pd.DataFrame(rows), best,
                  panel_best)


def _fmt(v, col: str = "") -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        digits = 1 if col == "minutes" else 2 if col.endswith("ppl") else 4
        return f"{v:.{digits}f}"
    return str(v).replace("|", "\\|")


def markdown_table(table) -> str:
    cols = [c for c in table.columns if c not in ("note", "job")]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        cells = [_fmt(r[c], c) for c in cols]
        if r["best"] == BEST:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_line(rep: Report) -> str:
    c, n = rep.counts, len(rep.jobs)
    parts = [f"{c['done']} done", f"{c['running']} running", f"{c['failed']} failed"]
    if rep.expected and rep.expected > n:
        parts.append(f"{rep.expected - n} not started")
    total = f"{rep.expected} jobs" if rep.expected and rep.expected >= n else f"{n} jobs"
    return f"{total}: " + ", ".join(parts)


def markdown(rep: Report, images: list[str]) -> str:
    c = rep.counts
    out = [f"# Sweep `{rep.sweep_dir.name}`", "", summary_line(rep) + ".", ""]
    if rep.best:
        b = next(j for j in rep.jobs if j.name == rep.best)
        out += [f"Best {rep.metric}: **{b.metrics[rep.metric]:.4f}** — `{b.name}` ({BEST}). "
                f"{PANEL_BEST} marks the best of each panel (same values of the axes that are "
                "neither x nor line) when it is not the overall best. Lower is better.", ""]
    out += [markdown_table(rep.table), ""]
    if c["failed"]:
        out += ["## Failed jobs", "", *(f"- `{j.name}`: {j.error or 'no metrics.json'}"
                                        for j in rep.jobs if j.status == "failed"), ""]
    if c["running"]:
        out += ["## Running jobs", ""]
        for j in rep.jobs:
            if j.status == "running":
                last = j.curve[-1].get(rep.metric) if j.curve else None
                got = f", latest {rep.metric} {last:.4f}" if last is not None else ""
                out.append(f"- `{j.name}`: {len(j.curve)} validation(s) so far{got}")
        out.append("")
    for img in images:
        out += [f"![{img}]({img})", ""]
    return "\n".join(out)


def log_to_wandb(rep: Report, out_dir: Path, images: list[str], mode: str = "auto") -> str | None:
    """Log the table and plots as a run of job_type "report" in the sweep's W&B group."""
    from huggingtweets.train.tracking import wandb_mode

    cfg_path = rep.jobs[0].path / ".hydra" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text()) if cfg_path.exists() else {}
    wb = ((cfg or {}).get("logger") or {}).get("wandb")
    if mode == "auto":
        mode = "online" if wb and wandb_mode() == "online" else "off"
    if mode == "off":
        return None
    import wandb

    project = (wb or {}).get("project") or "huggingtweets"
    group = rep.sweep_dir.name  # the group every job of the sweep logged to (ht.sweep_group)
    run = wandb.init(project=project, group=group, job_type="report", name=f"report-{group}",
                     dir=str(out_dir), mode=mode, reinit="finish_previous",
                     config={"sweep_dir": str(rep.sweep_dir), "metric": rep.metric})
    table = rep.table.apply(lambda col: col.astype(str) if col.dtype == object else col)
    run.log({"sweep": wandb.Table(dataframe=table),
             **{Path(i).stem: wandb.Image(str(out_dir / i)) for i in images}})
    if rep.best:
        b = next(j for j in rep.jobs if j.name == rep.best)
        run.summary.update({"best_job": b.name, f"best_{rep.metric}": b.metrics[rep.metric],
                            **{f"best/{a}": b.overrides.get(a) for a in rep.axes}})
    run.summary.update(rep.counts)
    run.finish()
    return mode


def read_expected(path: str | Path, required: str = "status") -> list[dict[str, str]]:
    """The committed reference results, a reference sweep's report.csv (values as text)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"--check {path}: cannot read it ({err}); it should be a report.csv") from None
    if not rows or required not in rows[0]:
        raise UserError(f"--check {path}: no results rows with a {required!r} column")
    return rows


def tolerance_path(results: str | Path) -> Path:
    """Where the per-job tolerances of a results CSV live: <name>.tolerance.csv beside it."""
    results = Path(results)
    return results.with_name(f"{results.stem}.tolerance.csv")


def read_tolerances(path: str | Path) -> dict[str, float]:
    """{job: tolerance in nats} from a tolerance CSV (columns job, tolerance; written by
    bench/reproducibility.py from each job's measured spread across machines)."""
    rows = read_expected(path, required="tolerance")
    try:
        return {r["job"]: float(r["tolerance"]) for r in rows}
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: needs a job and a numeric tolerance per row ({err})") from None


def _matches(rep: Report, expected: list[dict[str, str]]):
    """(where, expected row, this sweep's job or None) per expected row, matched by the swept
    axes; then (where, None, job) for each job the expected results lack."""
    got = {tuple(str(j.overrides.get(a, "")) for a in rep.axes): j for j in rep.jobs}
    for w in expected:
        key = tuple(w[a] for a in rep.axes)
        yield ", ".join(f"{a}={v}" for a, v in zip(rep.axes, key, strict=True)), w, got.pop(key, None)
    for key, job in got.items():
        yield ", ".join(f"{a}={v}" for a, v in zip(rep.axes, key, strict=True)), None, job


def _losses(expected: list[dict[str, str]]) -> list[str]:
    return [c for c in expected[0] if re.fullmatch(r"val/loss(_\w+)?", c)]


def largest_difference(rep: Report, expected: list[dict[str, str]]) -> tuple[float, str, str] | None:
    """(|difference|, job, loss column) of the loss that differs most from the expected results."""
    diffs = [(abs(float(job.metrics[c]) - float(parse_number(w[c]))), where, c)
             for where, w, job in _matches(rep, expected) if w is not None and job is not None
             for c in _losses(expected) if parse_number(w.get(c)) is not None and c in job.metrics]
    return max(diffs, key=lambda d: d[0], default=None)  # ties: the first job


def check(rep: Report, expected: list[dict[str, str]], tolerance: float | dict[str, float] = 1e-3,
          default: float = 1e-3) -> list[str]:
    """Differences between a fresh report and the expected results ([] when they agree), rows
    matched by the swept axes: every loss column both have must agree within the job's tolerance
    (nats: `tolerance`, or `tolerance[job]` and `default` for a job it lacks), and the conclusions
    must hold: the same best job, and every two jobs whose expected val/loss differ by more than
    their two tolerances together in the same order."""
    axes = [a for a in rep.axes if a in expected[0]]
    if axes != rep.axes:
        return [f"the expected results have the axes {[a for a in expected[0] if '.' in a or a == 'user']}, "
                f"this sweep {rep.axes}"]
    problems, pairs = [], []
    for where, w, job in _matches(rep, expected):
        if w is None:
            problems.append(f"{where}: in this sweep, not in the expected results")
            continue
        if job is None:
            problems.append(f"{where}: in the expected results, missing from this sweep")
            continue
        if job.status != "done":
            if w.get("status") == "done":
                problems.append(f"{where}: {job.status} ({job.error or 'no metrics'})")
            continue
        tol = tolerance.get(w.get("job"), default) if isinstance(tolerance, dict) else tolerance
        for col in _losses(expected):
            wv, gv = parse_number(w.get(col)), job.metrics.get(col)
            if wv is None and gv is None:
                continue
            if wv is None or gv is None or abs(float(wv) - float(gv)) > tol:
                shown = f"{float(gv):.4f}" if gv is not None else "-"
                diff = f" (diff {float(gv) - float(wv):+.4f}, tolerance {tol:g})" if wv is not None and gv is not None else ""
                problems.append(f"{where}: {col} expected {wv if wv is None else f'{float(wv):.4f}'}, "
                                f"got {shown}{diff}")
        if parse_number(w.get(rep.metric)) is not None and rep.metric in job.metrics:
            pairs.append((where, float(w[rep.metric]), job.metrics[rep.metric], w.get("best") == BEST, tol))
    want_best = next((p[0] for p in pairs if p[3]), None)
    got_best = min(pairs, key=lambda p: p[2])[0] if pairs else None
    if want_best and got_best != want_best:
        problems.append(f"the best job is {got_best}, expected {want_best}")
    for a, b in ((a, b) for a in pairs for b in pairs if a[1] + a[4] + b[4] < b[1]):
        if not a[2] < b[2]:
            problems.append(f"order: {a[0]} ({a[2]:.4f}) should beat {b[0]} ({b[2]:.4f})")
    return problems


def latest_sweep(root: str | Path = "outputs/multirun") -> Path:
    dirs = sorted((p for p in Path(root).glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if not dirs:
        raise UserError(f"no sweep under {root}: pass the multirun folder, e.g. "
                        "python report.py outputs/multirun/<time>")
    return dirs[-1]
