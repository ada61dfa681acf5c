"""A sweep's report and plots: val/loss vs the learning rate, the best jobs' curves (no pyplot)."""

import math
import re
from pathlib import Path

from huggingtweets.sweep import report


def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None, metric: str = "val/loss",
                 wandb: str = "auto", top: int = 3, stale_minutes: float = 30) -> report.Report:
    """Build the report of a sweep and write report.csv, report.md and the plots."""
    rep = report.build(sweep_dir, metric, stale_minutes)
    out = Path(out_dir) if out_dir else rep.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    rep.table.to_csv(out / "report.csv", index=False)
    images = [i for i in (plot_vs_x(rep, out), plot_curves(rep, out, top)) if i]
    (out / "report.md").write_text(report.markdown(rep, images))
    rep.images = images
    rep.wandb = report.log_to_wandb(rep, out, images, wandb)
    return rep


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key.split(".")[-1] if "." in key else key).strip("_")


def _label(job: report.Job, axes: list[str]) -> str:
    return ", ".join(f"{a.split('.')[-1]}={job.overrides.get(a)}" for a in axes) or job.name


def plot_vs_x(rep: report.Report, out_dir: Path) -> str | None:
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    x, line, panels = report.plot_roles(rep.axes, rep.jobs)
    done = [j for j in rep.jobs if j.status == "done" and rep.metric in j.metrics]
    if not x or not done:
        return None
    keys = sorted({tuple(j.overrides.get(a) for a in panels) for j in done},
                  key=lambda k: tuple(report.sort_key(v) for v in k))
    fig = Figure(figsize=(4.6 * len(keys), 3.8))
    axs = fig.subplots(1, len(keys), sharey=True, sharex=True, squeeze=False)
    numeric_x = all(report.parse_number(j.overrides.get(x)) is not None for j in done)
    xvals = sorted({j.overrides.get(x) for j in done}, key=report.sort_key)
    where = {v: (report.parse_number(v) if numeric_x else i) for i, v in enumerate(xvals)}
    groups = sorted({j.overrides.get(line) for j in done} if line else {None},
                    key=lambda v: report.sort_key(v or ""))
    colors = {g: f"C{i}" for i, g in enumerate(groups)}  # the same colour in every panel
    panel_best = set(rep.panel_best.values())
    for ax, key in zip(axs[0], keys, strict=True):
        in_panel = [j for j in done if tuple(j.overrides.get(a) for a in panels) == key]
        for g in groups:
            pts = sorted((j for j in in_panel if not line or j.overrides.get(line) == g),
                         key=lambda j: report.sort_key(j.overrides.get(x)))
            if not pts:
                continue
            xs = [where[j.overrides.get(x)] for j in pts]
            ys = [j.metrics[rep.metric] for j in pts]
            ax.plot(xs, ys, marker="o", color=colors[g],
                    label=f"{line.split('.')[-1]}={g}" if line else None)
            for j, xv, yv in zip(pts, xs, ys, strict=True):
                if j.name == rep.best:
                    ax.scatter([xv], [yv], s=260, marker="*", color="gold", edgecolor="black",
                               zorder=5, label=f"{report.BEST} best")
                elif j.name in panel_best and len(keys) > 1:
                    ax.scatter([xv], [yv], s=140, facecolors="none", edgecolors="black",
                               zorder=5, label=f"{report.PANEL_BEST} best of panel")
        ax.set_title(", ".join(f"{a}={v}" for a, v in zip(panels, key, strict=True)) or "all jobs",
                     fontsize=9)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax0 = axs[0][0]
    if numeric_x and min(where.values()) > 0 and (x == report.X_AXIS or max(where.values()) /
                                                 min(where.values()) >= 10):
        ax0.set_xscale("log")
    ax0.set_xticks([where[v] for v in xvals], xvals)  # the values as the sweep wrote them
    ax0.minorticks_off()
    ax0.set_ylabel(rep.metric)
    fig.suptitle(f"{rep.sweep_dir.name}: {rep.metric} of the best checkpoint vs {x}", fontsize=10)
    fig.tight_layout()
    name = f"{_slug(rep.metric)}_vs_{_slug(x)}.png"
    fig.savefig(out_dir / name, dpi=110)
    return name


def plot_curves(rep: report.Report, out_dir: Path, top: int = 3) -> str | None:
    from matplotlib.figure import Figure

    ranked = sorted((j for j in rep.jobs if j.status == "done" and rep.metric in j.metrics),
                    key=lambda j: j.metrics[rep.metric])
    names = list(dict.fromkeys([j.name for j in ranked[:top]] + list(rep.panel_best.values())))
    names += [j.name for j in rep.jobs if j.status == "running"]  # progress of running jobs
    shown = [j for j in rep.jobs if j.name in names and j.curve][:8]
    if not shown:
        return None
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    for i, j in enumerate(sorted(shown, key=lambda j: j.metrics.get(rep.metric, math.inf))):
        color = f"C{i}"
        epochs = [c["epoch"] + 1 for c in j.curve if rep.metric in c]
        label = _label(j, rep.axes) + (" (running)" if j.status == "running" else "")
        if j.name == rep.best:
            label = f"{report.BEST} " + label
        ax.plot(epochs, [c[rep.metric] for c in j.curve if rep.metric in c], marker="o",
                color=color, label=label, linewidth=2.2 if j.name == rep.best else 1.4)
        tr = [(c["epoch"] + 1, c["train/loss"]) for c in j.curve if "train/loss" in c]
        if tr and rep.metric == "val/loss":
            ax.plot(*zip(*tr, strict=True), linestyle="--", color=color, alpha=0.5, linewidth=1)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(rep.metric + (" (dashed: train/loss)" if rep.metric == "val/loss" else ""))
    ax.set_title(f"{rep.sweep_dir.name}: {rep.metric} per epoch, best jobs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(out_dir / "curves.png", dpi=110)
    return "curves.png"
