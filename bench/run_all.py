"""Run the whole benchmark suite (a process per script), print the ratios against the targets and,
with --markdown, write BENCHMARKS.md: each script's row (`summary`) and section (`markdown`) from
bench/results/<name>.json (<name>-cuda.json), and the old file's hand-written part from LEVERS on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCRIPTS = {  # name: (title of the target, title of its section)
    "quality": ("(1) time to the original's final val loss", "(1) Time to quality"),
    "throughput": ("(2) training throughput vs the HF Trainer, MFU (GPT-2 small)",
                   "(2) Training throughput"),
    "pipeline": ("(3) data pipeline posts/s (cold / warm)", "(3) Data pipeline"),
    "startup": ("(4) process start -> first optimizer step of a sweep job (warm)",
                "(4) Sweep overhead"),
    "generation": ("(5) generate.py vs transformers.pipeline tokens/s", "(5) Generation"),
    "lora": ("(6) LoRA vs full fine-tuning, GPT-2-small shape", "(6) LoRA"),
    "pretrained": ("(7) time to quality from a pretrained start", "(7) From a pretrained start"),
}
REAL_BASE = {  # results of `--base gemma3` runs (the gemma3 extra), shown when present
    "lora-gemma3": ("(6) LoRA vs full fine-tuning, Gemma 3 270M", "(6) LoRA, Gemma 3 270M"),
    "pretrained-gemma3": ("(7) time to quality from Gemma 3 270M", "(7) From Gemma 3 270M")}
COLUMNS = ["benchmark", "measured", "target", "met", "detail"]
LEVERS = "## Measured once, scaffolding removed"  # BENCHMARKS.md from here on is kept


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--only", default=",".join(SCRIPTS), help="comma list of " + ",".join(SCRIPTS))
    p.add_argument("--markdown", default=None, help="write the tables to this file (BENCHMARKS.md)")
    p.add_argument("--summary-only", action="store_true",
                   help="do not run anything: summarise bench/results/*.json")
    return p.parse_args(argv)


def load(name: str) -> dict | None:
    path = common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ratios(suffix: str = "") -> list[list]:
    """[benchmark, measured, target, met, detail] rows from the results on disk."""
    return [[title, *r["summary"]] for name, (title, _) in {**SCRIPTS, **REAL_BASE}.items()
            if (r := load(name + suffix)) and r.get("summary")]


def sections(suffix: str = "", level: str = "##") -> list[str]:
    out = []
    for name, (_, title) in {**SCRIPTS, **REAL_BASE}.items():
        if (r := load(name + suffix)) and r.get("markdown"):
            out += ["", f"{level} {title}", "", f"`{r['command']}` (bench/ at "
                    f"{r.get('commit') or '?'}), {r['when']}.", "", *r["markdown"]]
    return out


def markdown(path: Path, command: str, elapsed: float | None, quick: bool) -> None:
    m = next((r["machine"] for r in map(load, SCRIPTS) if r), common.machine_info())
    loads = {n: (load(n) or {}).get("machine", {}).get("loadavg") for n in SCRIPTS}
    out = [
        "# Benchmarks", "",
        "The latest run of the benchmark suite (bench/, see bench/README.md for what each script "
        "measures and how). Every ratio is measured in one process, against its baseline run "
        "in the same process, never against a stored number.", "",
        f"- Command: `{command}`" + (f" ({elapsed / 60:.1f} min)" if elapsed else ""),
        f"- Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')} "
        f"({m.get('torch_threads')} threads), Python {m.get('python')}"
        + (f", GPU {m['cuda']}" if m.get("cuda") else ", no GPU"),
        "- Load: 1-minute load average at the end of each script: " + ", ".join(
            f"{n} {v[0]:.1f}" for n, v in loads.items() if v) + ". Absolute numbers move with the "
        "machine's load; the ratios are what to read.",
        f"- Environment: OMP_WAIT_POLICY={m.get('OMP_WAIT_POLICY')}, MALLOC_ARENA_MAX=2 (set by "
        "bench/common.py `ensure_env`).",
    ]
    if quick:
        out.append("- **--quick run (tiny sizes): a smoke test, not a measurement.**")
    out += ["", "## Against the targets", "", *common.md_table(COLUMNS, ratios()), *sections()]
    if ratios("-cuda"):
        out += ["", "## GPU", "", *common.md_table(COLUMNS, ratios("-cuda")), *sections("-cuda", "###")]
    old = path.read_text() if path.exists() else ""
    if LEVERS in old:
        out += ["", old[old.index(LEVERS):].rstrip()]
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


def main(argv=None) -> None:
    if argv is None:
        common.ensure_env()
    args = parse(argv)
    start = time.perf_counter()
    times, failed = {}, []
    for name in [] if args.summary_only else [s for s in args.only.split(",") if s]:
        cmd = [sys.executable, str(common.BENCH / f"{name}.py")] + (["--quick"] if args.quick else [])
        print(f"\n=== {name}: python bench/{name}.py {' '.join(cmd[2:])}", flush=True)
        t = time.perf_counter()
        res = subprocess.run(cmd, cwd=common.ROOT)
        times[name] = time.perf_counter() - t
        if res.returncode != 0:
            failed.append(name)
            print(f"!!! {name} failed (exit {res.returncode})", flush=True)
    elapsed = time.perf_counter() - start
    common.table("Benchmarks against the targets", COLUMNS, ratios())
    if times:
        common.save("summary", {"script_seconds": times, "elapsed_s": elapsed, "quick": args.quick},
                    [], [])
    last = load("summary") or {}  # re-rendering: the last run's duration and mode
    if args.markdown:
        markdown(common.ROOT / args.markdown, "python bench/run_all.py --quick" if last.get("quick")
                 else "make bench", last.get("elapsed_s"), last.get("quick"))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
