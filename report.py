"""Turn a Hydra multirun folder into one table (CSV + Markdown, best marked) and plots.

    python report.py outputs/multirun/<time>             # no argument: the newest sweep
    python report.py outputs/reproduce --check results/lr_epochs_mix.csv   # fail if they differ
      (each job within its tolerance, results/lr_epochs_mix.tolerance.csv, when that file exists)
"""

import argparse
import sys

from huggingtweets.errors import reported


def main(argv=None) -> int:
    from huggingtweets.sweep import plots, report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("sweep_dir", nargs="?", help="a multirun folder (default: newest in outputs/multirun)")
    p.add_argument("--metric", default="val/loss", help="lower is better (default val/loss)")
    p.add_argument("--out", help="where to write report.* and the plots (default: the sweep folder)")
    p.add_argument("--check", metavar="CSV", help="compare with committed results (a report.csv): "
                   "every loss within its job's tolerance, the same best job and ordering")
    p.add_argument("--tolerance", type=float, help="for --check: max |difference| of every val/loss "
                   "column, in nats, for every job (default: per job from <CSV name>.tolerance.csv "
                   "beside it, else 0.001)")
    p.add_argument("--wandb", choices=["auto", "online", "offline", "off"], default="auto",
                   help="log the table to the sweep's W&B group (auto: when W&B is online)")
    p.add_argument("--top", type=int, default=3, help="curves of this many best jobs (default 3)")
    p.add_argument("--stale-minutes", type=float, default=30, help="a job without status file, "
                   "metrics or activity for this long counts as failed (default 30)")
    args = p.parse_args(argv)
    with reported():
        sweep = args.sweep_dir or report.latest_sweep()
        rep = plots.write_report(sweep, args.out, args.metric, args.wandb, args.top, args.stale_minutes)
        out = args.out or rep.sweep_dir
        print(report.markdown_table(rep.table))
        print(f"\n{report.summary_line(rep)}")
        for j in rep.jobs:
            if j.status == "failed":
                print(f"failed: {j.name}: {j.error}")
        print(f"wrote {out}/report.csv, {out}/report.md" + "".join(f", {out}/{i}" for i in rep.images)
              + (f"; W&B ({rep.wandb}) group {rep.sweep_dir.name}" if rep.wandb else ""))
        if args.check:
            expected = report.read_expected(args.check)
            per_job = report.tolerance_path(args.check)
            if args.tolerance is None and per_job.exists():
                tolerance, said = report.read_tolerances(per_job), f"each job's tolerance in {per_job}"
            else:
                tolerance = 1e-3 if args.tolerance is None else args.tolerance
                said = f"tolerance {tolerance:g}"
            problems = report.check(rep, expected, tolerance)
            largest = report.largest_difference(rep, expected)
            if largest:
                diff, where, col = largest
                print(f"\nlargest difference: {diff:.6f} nats ({col} of {where})")
            if problems:
                print(f"\nFAIL: this sweep does not reproduce the results in {args.check} "
                      f"({said}):", file=sys.stderr)
                for line in problems:
                    print(f"  {line}", file=sys.stderr)
                print(f"\ngot:\n{report.markdown_table(rep.table)}", file=sys.stderr)
                return 1
            print(f"\nOK: matches the results in {args.check} within {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
