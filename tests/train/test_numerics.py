"""numerics.pin: the reference study's threads and CPU kernels, applied before torch starts."""

import subprocess
import sys

import pytest

from huggingtweets.errors import UserError
from huggingtweets.train.numerics import cpu_flags, pin

CODE = ("from huggingtweets.train.numerics import pin; notes = pin(threads=1, cpu_isa='avx2'); "
        "import torch; print(torch.get_num_threads(), torch.backends.cpu.get_cpu_capability(), notes)")


@pytest.mark.skipif("avx2" not in cpu_flags(), reason="the CPU has no AVX2")
def test_pin_before_torch_selects_the_kernels_and_threads():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.split()[:2] == ["1", "AVX2"] and out.stdout.strip().endswith("[]")


def test_pin_after_torch_says_it_could_not(monkeypatch, capsys):
    import torch

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    before = torch.get_num_threads()
    try:
        notes = pin(threads=1, cpu_isa="avx2")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert len(notes) == 1 and "may differ" in capsys.readouterr().out


def test_unknown_isa_is_a_user_error():
    with pytest.raises(UserError, match="numerics.cpu_isa='avx9'"):
        pin(cpu_isa="avx9")
