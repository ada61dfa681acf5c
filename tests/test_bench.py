"""The benchmark suite (bench/) stays runnable: every script answers --help, and the pieces that
compute results (curve arithmetic, time attribution, BENCHMARKS.md) are right. The suite
itself (`make bench`, ~20 min) and its --quick smoke (minutes) are too slow for the test run."""

import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

BENCH = ROOT / "bench"
SCRIPTS = ["quality", "throughput", "pipeline", "startup", "generation", "lora", "pretrained",
           "recipe", "reproducibility", "run_all"]


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help(name):
    res = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout
    assert "--quick" in res.stdout or name in ("recipe", "reproducibility")  # no tiny mode: real data
    if name in ("quality", "throughput", "generation"):  # the GPU runs: --device cuda
        assert "--device" in res.stdout


def test_benchmarks_md_renders_every_section_from_the_results(tmp_path):
    import run_all

    out = tmp_path / "BENCHMARKS.md"
    run_all.markdown(out, "make bench", 600.0, quick=False)
    text = out.read_text()
    for section in ("## Against the targets", "## (1) Time to quality", "## (2) Training throughput",
                    "## (3) Data pipeline", "## (4) Sweep overhead", "## (5) Generation",
                    "## GPU", "bench/throughput.py --device cuda"):
        assert section in text
    assert "Command: `make bench` (10.0 min)" in text
    present = [n for n in run_all.SCRIPTS if (BENCH / "results" / f"{n}.json").exists()]
    assert len(run_all.ratios()) == len(present)  # one row per target with results on disk


def test_curve_arithmetic():
    from quality import curve_at, time_to

    curve = [(1.0, 6.0), (2.0, 5.0), (4.0, 4.0)]
    assert time_to(curve, 5.0) == 2.0
    assert time_to(curve, 4.5) == pytest.approx(3.0)
    assert time_to(curve, 3.0) is None
    assert curve_at(curve, 3.0) == pytest.approx(4.5)
    assert curve_at(curve, 0.5) is None and curve_at(curve, 9.0) == 4.0


def test_startup_attribution_uses_the_innermost_interval():
    from startup import attribute

    events = [[1.0, "job", "B"], [2.0, "build", "B"], [3.0, "build", "E"], [6.0, "job", "E"]]
    imports = [["torch", 2.5, 2.8]]
    parts = attribute(events, imports, 1.0, 5.0)
    assert parts == pytest.approx({"job": 3.0, "build": 0.7, "import torch": 0.3})
