"""Pin what decides the last digits of a CPU run: intra-op threads and the CPU kernels used.

A float sum depends on its order, which torch, MKL and oneDNN choose by thread count and CPU type,
so one seed gives slightly different losses on two machines; the reference study pins both
(measured across thread counts: docs/reproducibility.md). Kernel choices are read when torch starts,
so the pin must come before the first `import torch` (train.py calls this first).
"""

import os
import platform
import sys

# cpu_isa -> the environment that selects those kernels in ATen, MKL and oneDNN
ISA_ENV = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f
                         if line.startswith("flags")), set())
    except OSError:
        return set()


def pin(threads: int | None = None, cpu_isa: str | None = None) -> list[str]:
    """Apply the pins; returns what could not be pinned (said once, the run goes on)."""
    notes = []
    if cpu_isa:
        if cpu_isa not in ISA_ENV:
            from huggingtweets.errors import UserError

            raise UserError(f"numerics.cpu_isa={cpu_isa!r}: use {' or '.join(ISA_ENV)}, or null")
        env = ISA_ENV[cpu_isa]
        if platform.machine() not in ("x86_64", "AMD64") or cpu_isa not in cpu_flags():
            notes.append(f"this CPU has no {cpu_isa}: its own kernels are used")
        elif "torch" in sys.modules and any(os.environ.get(k) != v for k, v in env.items()):
            notes.append(f"torch was imported before numerics.cpu_isa={cpu_isa} could apply")
        else:
            os.environ.update(env)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    for note in notes:
        print(f"numerics: {note}; the last digits may differ from the reference table")
    return notes
