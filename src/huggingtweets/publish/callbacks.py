"""The Hydra callback registered in conf/train.yaml for every multirun: each job's status file
(running with pid and host / completed / failed, for report.py) and, when the sweep ends, its
report (table + plots)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from hydra.experimental.callback import Callback

from huggingtweets.ingest.posts import atomic_path
from huggingtweets.publish.report import STATUS_FILE, summary_line


def _rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


class JobStatus(Callback):
    """`<job>/status.json`: running (pid, host), completed or failed (the error), so a report can
    tell a running job from a dead one; and when the sweep ends, the sweep's report."""

    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            from huggingtweets.publish.plots import write_report

            rep = write_report(config.hydra.sweep.dir)
            print(f"{summary_line(rep)}; report: {rep.sweep_dir}/report.md")
        except Exception as err:  # the sweep's results stand without the report
            print(f"warning: no sweep report ({type(err).__name__}: {err}); "
                  f"run: python report.py {config.hydra.sweep.dir}")

    def _write(self, config, **fields) -> None:
        if _rank() == 0:
            with atomic_path(Path(config.hydra.runtime.output_dir) / STATUS_FILE) as tmp:
                tmp.write_text(json.dumps({**fields, "time": time.time()}) + "\n")

    def on_job_start(self, config, **kwargs) -> None:
        self._write(config, status="running", pid=os.getpid(), host=socket.gethostname())

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.utils import JobStatus as HydraJobStatus

        if job_return.status == HydraJobStatus.COMPLETED:
            self._write(config, status="completed")
        else:
            err = getattr(job_return, "_return_value", None)
            self._write(config, status="failed", error=f"{type(err).__name__}: {err}"[:500])
