"""Lightning's DDP, made safe inside a Hydra multirun (`trainer=ddp`).

Lightning starts ranks 1..N-1 by re-running the script's command line, which inside
`python train.py -m ...` is the whole sweep. This strategy starts each extra rank as a single run
of *the current job* (its overrides, `hydra.mode=RUN`, its output directory), and before the next
job undoes what the previous one left in this process (the process group, MASTER_PORT and the
other variables that would make Lightning believe a cluster manager had started the ranks).
"""

import os
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.strategies import DDPStrategy as _LightningDDP
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from huggingtweets.errors import UserError

_ENV_KEYS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# What our launcher put into this process's environment for the job that is running now.
_launched_env: dict[str, str] = {}

# Hydra flags that choose the config, kept for the re-run; -m/--multirun and the rest are dropped.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def _config_flags(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in _CONFIG_FLAGS and i + 1 < len(argv):
            out += [a, argv[i + 1]]
            i += 1
        elif a.split("=", 1)[0] in _CONFIG_FLAGS and "=" in a:
            out.append(a)
        i += 1
    return out


def job_command(local_rank: int) -> tuple[list[str], str]:
    """The command that starts `local_rank` of the running Hydra multirun job, and its cwd."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    import __main__

    hc = HydraConfig.get()
    cwd = get_original_cwd()
    if getattr(__main__, "__spec__", None) is not None:
        command = [sys.executable, "-m", __main__.__spec__.name]
    else:
        script = Path(cwd, sys.argv[0]) if sys.argv and sys.argv[0] else None
        if script is None or script.suffix != ".py" or not script.is_file():
            raise UserError("trainer=ddp cannot re-run this job for its other ranks from this "
                            "process (it is not the script's own process: "
                            f"argv[0]={sys.argv[0] if sys.argv else ''!r}); use the basic "
                            "launcher, or hydra/launcher=slurm where srun starts the ranks")
        command = [sys.executable, str(script.resolve())]
    command += _config_flags(sys.argv[1:]) + [str(o) for o in hc.overrides.task]
    # the run dir quoted: job folders are named like `optim.lr=0.001,user=a-b` (a comma sweeps)
    command += ["hydra.mode=RUN", f"hydra.run.dir='{hc.runtime.output_dir}'",
                f"hydra.job.name=train_ddp_process_{local_rank}", "hydra.output_subdir=null"]
    return command, cwd


class _JobScriptLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher, but inside a multirun each extra rank runs only this job."""

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
            super()._call_children_scripts()
        else:
            launcher = str(HydraConfig.get().launcher.get("_target_", ""))
            if not launcher.endswith("BasicLauncher"):
                # joblib / submitit_local run jobs in worker processes that are not the script
                raise UserError("trainer=ddp in a sweep starts its ranks by re-running train.py "
                                f"for the job, which {launcher.rsplit('.', 1)[-1]} cannot do: "
                                "use the default launcher (jobs one after the other, each on all "
                                "devices) or hydra/launcher=slurm (srun starts the ranks)")
            self._check_can_spawn_children()
            self.procs = []
            cluster = self.cluster_environment
            os.environ.update(MASTER_ADDR=cluster.main_address, MASTER_PORT=str(cluster.main_port),
                              NODE_RANK=str(cluster.node_rank()),
                              LOCAL_RANK=str(cluster.local_rank()),
                              WORLD_SIZE=f"{self.num_processes * self.num_nodes}")
            for local_rank in range(1, self.num_processes):
                env = {**os.environ, "LOCAL_RANK": str(local_rank)}
                command, cwd = job_command(local_rank)
                self.procs.append(subprocess.Popen(command, env=env, cwd=cwd))
        _launched_env.clear()
        _launched_env.update({k: os.environ[k] for k in _ENV_KEYS if k in os.environ})


def _forget_previous_job() -> None:
    """Drop the process group and the environment our launcher set for the previous job."""
    if not _launched_env:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for k, v in _launched_env.items():
        if os.environ.get(k) == v:
            del os.environ[k]
    _launched_env.clear()


class DDPStrategy(_LightningDDP):
    """Lightning's DDPStrategy, safe in Hydra multiruns, with the same arguments
    (`start_method="spawn"` forks workers from this process instead of re-running the script)."""

    def __init__(self, *args, **kwargs):
        _forget_previous_job()
        super().__init__(*args, **kwargs)

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if isinstance(self._launcher, _SubprocessScriptLauncher):
            self._launcher = _JobScriptLauncher(
                self.cluster_environment, self.num_processes, self.num_nodes
            )
