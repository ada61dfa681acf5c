"""How far the reference study's numbers move with what differs between machines.

Runs the reference sweep (`train.py experiment=lr_epochs_mix`, 8 jobs, ~1 min) once per machine
condition, each in a fresh process with that condition's environment:

- threads: 1, 2, 4 intra-op threads (a laptop, this project's 2-core machine, a workstation);
- CPU kernels: torch's ATen vector kernels (ATEN_CPU_CAPABILITY: avx512 where the CPU has it,
  avx2, or `default`, plain C++), MKL's code path (MKL_CBWR) and oneDNN's (ONEDNN_MAX_CPU_ISA):
  another CPU type picks other kernels, which sum in another order.

and prints every job's val/loss under each, the spread with nothing pinned (what a reference table
made on one machine meets on another) and the spread with the pins that `experiment=lr_epochs_mix`
applies (`numerics.threads=2 numerics.cpu_isa=avx2`). Each job's tolerance for `make reproduce`
(`report.py --check`) is derived from its own unpinned spread, what it meets where the pins cannot
apply: twice the spread, at least 0.001 nats, rounded up to 0.001; written beside the results
(results/lr_epochs_mix.tolerance.csv).

    python bench/reproducibility.py                 # ~8 runs of ~1 min on 2 cores
    python bench/reproducibility.py --from-json     # only re-derive the tolerances from the JSON
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "reproducibility"

# name -> (train.py overrides, environment)
UNPINNED = ["numerics.threads=null", "numerics.cpu_isa=null"]
CONDITIONS = {
    "threads=1": (UNPINNED, {"OMP_NUM_THREADS": "1"}),
    "threads=2": (UNPINNED, {"OMP_NUM_THREADS": "2"}),
    "threads=4": (UNPINNED, {"OMP_NUM_THREADS": "4"}),
    "avx2 kernels, threads=2": (UNPINNED, {"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "avx2",
                                           "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "plain C++ kernels, threads=2": (UNPINNED, {"OMP_NUM_THREADS": "2",
                                                "ATEN_CPU_CAPABILITY": "default",
                                                "MKL_CBWR": "COMPATIBLE",
                                                "ONEDNN_MAX_CPU_ISA": "SSE41"}),
    # the reference run's pins, under what differs between machines
    "pinned, 1 core free": ([], {"OMP_NUM_THREADS": "1"}),
    "pinned, 4 cores free": ([], {"OMP_NUM_THREADS": "4"}),
    "pinned": ([], {}),
}
PINNED = [k for k in CONDITIONS if k.startswith("pinned")]


def sweep(name: str, overrides: list[str], env: dict, reuse: bool = False) -> dict[str, dict]:
    """{job: {loss column: value}} of one sweep under one condition."""
    out = OUT / re.sub(r"[^A-Za-z0-9]+", "_", name)
    if reuse and out.is_dir():
        return _losses(out)
    cmd = [sys.executable, str(ROOT / "train.py"), "experiment=lr_epochs_mix", "logger=csv",
           f"hydra.sweep.dir={out}", *overrides]
    clean_env = {k: v for k, v in os.environ.items()
                 if k not in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR",
                              "ONEDNN_MAX_CPU_ISA", "MKL_NUM_THREADS")}
    subprocess.run(cmd, cwd=ROOT, env={**clean_env, **env}, check=True, capture_output=True)
    return _losses(out)


def _losses(out: Path) -> dict[str, dict]:
    return {job.name: {k: v for k, v in json.loads((job / "metrics.json").read_text()).items()
                       if k.startswith("val/loss")}
            for job in sorted(out.iterdir()) if (job / "metrics.json").exists()}


def spread(results: dict[str, dict[str, dict]], names: list[str]) -> float:
    """The largest difference of one loss column of one job between the conditions `names`."""
    first = results[names[0]]
    return max(max(results[n][j][c] for n in names) - min(results[n][j][c] for n in names)
               for j in first for c in first[j])


def tolerances(results: dict[str, dict[str, dict]]) -> dict[str, tuple[float, float]]:
    """{job: (tolerance, unpinned spread)}: twice the spread, at least 0.001, rounded up to 0.001."""
    unpinned = [n for n in results if n not in PINNED]
    out = {}
    for job in results[unpinned[0]]:
        s = spread({n: {job: results[n][job]} for n in unpinned}, unpinned)
        out[job] = (max(1, math.ceil(round(2 * s * 1000, 6))) / 1000, s)
    return out


def write_tolerances(results: dict[str, dict[str, dict]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["job", "tolerance", "unpinned_spread"])
        for job, (tol, s) in sorted(tolerances(results).items()):
            w.writerow([job, f"{tol:g}", f"{s:.6f}"])
    print(f"wrote {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "reproducibility.json"))
    p.add_argument("--reuse", action="store_true", help="read sweeps already in outputs/")
    p.add_argument("--tolerances", default=str(ROOT / "results" / "lr_epochs_mix.tolerance.csv"))
    p.add_argument("--from-json", action="store_true", help="no sweeps: derive the tolerances "
                   "from the measurements already in --json")
    args = p.parse_args(argv)
    if args.from_json:
        write_tolerances(json.loads(Path(args.json).read_text())["results"], Path(args.tolerances))
        return 0
    results = {}
    for name, (overrides, env) in CONDITIONS.items():
        t0 = time.time()
        results[name] = sweep(name, overrides, env, args.reuse)
        print(f"{name}: {len(results[name])} jobs in {time.time() - t0:.0f} s", flush=True)
    jobs = list(results["pinned"])
    print("\n| job | " + " | ".join(CONDITIONS) + " |\n|---|" + "---|" * len(CONDITIONS))
    for j in jobs:
        print(f"| {j} | " + " | ".join(f"{results[n][j]['val/loss']:.4f}" for n in CONDITIONS) + " |")
    unpinned = [n for n in CONDITIONS if n not in PINNED]
    summary = {"unpinned_spread": spread(results, unpinned), "pinned_spread": spread(results, PINNED),
               "results": results}
    print(f"\nlargest spread of one loss (val/loss or a user's) of one job: "
          f"{summary['unpinned_spread']:.4f} with nothing pinned, {summary['pinned_spread']:.4f} pinned")
    Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    write_tolerances(results, Path(args.tolerances))
    return 0


if __name__ == "__main__":
    sys.exit(main())
