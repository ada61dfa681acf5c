"""The Hydra callback registered in conf/train.yaml for every run and multirun: each job's status
file (running with pid and host / completed / failed, for report.py) and, when the sweep ends, its
report (table + plots). train.py writes "failed" itself for the errors Hydra never sees (a
UserError leaves as SystemExit, and Ctrl-C)."""

import json
import os
import socket
import time
from pathlib import Path

from hydra.experimental.callback import Callback

from huggingtweets.files import atomic_path
from huggingtweets.sweep.report import STATUS_FILE, summary_line


def _rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def write_status(run_dir, status: str, **fields) -> None:
    """`<run>/status.json`: the status, this process's pid and host (a reader that finds "running"
    with a dead pid on this host knows the run died: a SIGKILL leaves no chance to say so)."""
    if _rank() == 0:
        info = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), **fields,
                "time": time.time()}
        with atomic_path(Path(run_dir) / STATUS_FILE) as tmp:
            tmp.write_text(json.dumps(info) + "\n")


def failed(run_dir, err: BaseException) -> None:
    """status.json: failed, with the one-line reason (a UserError's message as it is)."""
    from huggingtweets.errors import UserError, printable

    text = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    write_status(run_dir, "failed", error=printable(text, limit=500))


class JobStatus(Callback):
    """`<job>/status.json`: running (pid, host), completed or failed (the error), so a report can
    tell a running job from a dead one; and when the sweep ends, the sweep's report."""

    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            from huggingtweets.sweep.plots import write_report

            rep = write_report(config.hydra.sweep.dir)
            print(f"{summary_line(rep)}; report: {rep.sweep_dir}/report.md")
        except Exception as err:  # the sweep's results stand without the report
            print(f"warning: no sweep report ({type(err).__name__}: {err}); "
                  f"run: python report.py {config.hydra.sweep.dir}")

    def on_job_start(self, config, **kwargs) -> None:
        write_status(config.hydra.runtime.output_dir, "running")

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.utils import JobStatus as HydraJobStatus

        if job_return.status == HydraJobStatus.COMPLETED:
            write_status(config.hydra.runtime.output_dir, "completed")
        else:
            failed(config.hydra.runtime.output_dir, getattr(job_return, "_return_value", None))
