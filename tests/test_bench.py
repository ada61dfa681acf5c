"""The benchmark suite (bench/) stays runnable: every script answers --help, and the pieces that
compute results (curve arithmetic, the run clock, BENCHMARKS.md) are right. The suite
itself (`make bench`, ~20 min) and its --quick smoke (minutes) are too slow for the test run."""

import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

BENCH = ROOT / "bench"
SCRIPTS = ["quality", "throughput", "pipeline", "startup", "generation", "lora", "pretrained",
           "run_all"]


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help(name):
    res = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout
    assert "--quick" in res.stdout
    if name in ("quality", "throughput", "generation"):  # the GPU runs: --device cuda
        assert "--device" in res.stdout


def test_benchmarks_md_renders_every_section_from_the_results_and_keeps_the_record(tmp_path):
    import run_all

    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# old\n\nstale numbers\n\n" + run_all.LEVERS + "\n\nmeasured once at abc1234\n")
    run_all.markdown(out, "make bench", 600.0, quick=False)
    text = out.read_text()
    for section in ("## Against the targets", "## (1) Time to quality", "## (2) Training throughput",
                    "## (3) Data pipeline", "## (4) Sweep overhead", "## (5) Generation",
                    "## (6) LoRA", "## (7) From a pretrained start"):
        assert section in text
    assert "Command: `make bench` (10.0 min)" in text
    assert "stale numbers" not in text and text.rstrip().endswith("measured once at abc1234")
    gpu = [n for n in run_all.SCRIPTS if (BENCH / "results" / f"{n}-cuda.json").exists()]
    assert ("## GPU" in text) == bool(gpu)  # only a GPU run's own results make that section
    present = [n for n in {**run_all.SCRIPTS, **run_all.REAL_BASE}
               if (BENCH / "results" / f"{n}.json").exists()]
    assert len(run_all.ratios()) == len(present)  # one row per target with results on disk
    for name, (title, section) in run_all.REAL_BASE.items():  # the real base's only when measured
        assert (f"## {section}" in text) == (name in present)


def test_curve_arithmetic():
    from quality import curve_at, time_to

    curve = [(1.0, 6.0), (2.0, 5.0), (4.0, 4.0)]
    assert time_to(curve, 5.0) == 2.0
    assert time_to(curve, 4.5) == pytest.approx(3.0)
    assert time_to(curve, 3.0) is None
    assert curve_at(curve, 3.0) == pytest.approx(4.5)
    assert curve_at(curve, 0.5) is None and curve_at(curve, 9.0) == 4.0


def test_runner_times_each_optimizer_step_and_keeps_the_metric_off_the_clock():
    import time

    import torch
    from common import Runner

    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)

    def body():
        for _ in range(4):
            (w ** 2).sum().backward()
            opt.step()
            opt.zero_grad()

    def slow_metric():
        time.sleep(0.3)
        return float(w.sum())

    r = Runner(body, evaluate=slow_metric, points={2, 4}).run()
    assert r.steps == 4 and len(r.step_times) == 4
    assert [step for *_, step in r.curve] == [2, 4]
    assert r.curve[-1][1] < r.curve[0][1] < 2.0  # evaluated after those steps: the loss fell
    assert r.clock < 0.3  # two 0.3 s evaluations happened, none on the run's clock
