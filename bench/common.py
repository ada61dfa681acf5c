"""What every benchmark shares: set-up (`start`), the workload, the product built as train.py
builds it (`product_run`), baselines' precision, MFU, tables, results (`save`), and `Runner`, which
times a run's optimizer steps (one after another in one process). bench/ only *uses* the package."""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SHARED = ROOT.parent / "shared" / "data"
TRUMP = SHARED / "timelines" / "trump-archive-2009-2017"
GPT2_TOKENIZER = SHARED / "tokenizer"
HANDLE = "realDonaldTrump"

# No network: no Hub downloads, no W&B sync. cuBLAS: deterministic mode on a GPU needs it set
# before CUDA starts (Lightning sets the same value).
for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline",
               "WANDB_SILENT": "true", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}.items():
    os.environ.setdefault(_k, _v)
if str(ROOT / "src") not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))


def ensure_env() -> None:
    """Re-run this script with the environment the suite measures in, unless already set:
    OMP_WAIT_POLICY=PASSIVE (spinning OpenMP threads wait for descheduled ones on a shared
    machine), MALLOC_ARENA_MAX=2 (extra arenas keep freed activations mapped)."""
    want = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_ARENA_MAX": "2"}
    missing = {k: v for k, v in want.items() if k not in os.environ}
    if missing and "torch" not in sys.modules:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})


def parser(doc: str, device: bool = False) -> argparse.ArgumentParser:
    """A script's argument parser: its docstring's first paragraph as the description, and the
    options every script has (--quick, --threads; --device where a GPU number matters)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: one per core)")
    if device:
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda: the "
                       "product's GPU defaults (bf16-mixed), the baselines in bf16; writes "
                       "results/<name>-cuda.json")
    return p


def start(parse, argv):
    """A script's arguments, with its process set up: the measuring environment (when run as a
    script), torch's thread count, the device checked, quiet libraries (readable tables)."""
    if argv is None:
        ensure_env()
    args = parse(argv)
    import logging
    import warnings

    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    if getattr(args, "device", "cpu") == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device cuda: no CUDA device here (torch {torch.__version__})")
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    return args


def silent():
    """Hide the product's and the frameworks' prints while a measurement runs."""
    return contextlib.redirect_stdout(io.StringIO())


def have_real_data() -> bool:
    return bool(glob.glob(str(TRUMP / "condensed_*.json.zip")))


def trump_records() -> list[dict]:
    """The 2009-2017 timeline (the `condensed_*` files: id_str, text, created_at, is_retweet,
    in_reply_to_user_id_str) as canonical records, through the product's own v1.1 mapping."""
    from huggingtweets.ingest.sources.x import v1_record

    records = []
    for path in sorted(glob.glob(str(TRUMP / "condensed_*.json.zip"))):
        with zipfile.ZipFile(path) as z:
            statuses = [s for n in z.namelist() if n.endswith(".json") for s in json.loads(z.read(n))]
        for status in statuses:
            rec = v1_record({**status, "user": {"screen_name": HANDLE}})
            rec["is_retweet"] = bool(status.get("is_retweet")) or rec["is_retweet"]
            rec["is_reply"] = bool(status.get("in_reply_to_user_id_str"))
            records.append(rec)
    return records


def workload(n_posts: int | None, name: str):
    """(handle, posts, description, tmp dir): the newest `n_posts` (None or 0: all) of the largest
    real timeline (../shared/data), else of the 3 demo personas under one handle, in tmp/data."""
    import tempfile

    import pandas as pd

    from huggingtweets.ingest import posts
    from huggingtweets.ingest.sources import demo

    if have_real_data():
        handle, df = HANDLE, posts.to_frame(trump_records())
        desc = f"@{HANDLE} 2009-2017 (condensed v1.1 JSON, {len(df):,} posts)"
    else:
        handle, df = "demo_mix", pd.concat([demo.generate(h, n=4000) for h in
                                            ("demo_ada", "demo_bo", "demo_cy")], ignore_index=True)
        df["handle"] = handle
        desc = f"demo personas (no ../shared/data; {len(df):,} generated posts)"
    df["source"] = "bench"
    if n_posts and n_posts < len(df):  # the newest (the original could download the newest 3,200)
        df = df.sort_values("created_at").iloc[-n_posts:].reset_index(drop=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    posts.write_posts(tmp / "data", handle, df, source="bench", refresh="full")
    return handle, df, desc, tmp


def gpt2_tokenizer(save_to: str | Path | None = None):
    """GPT-2's real byte-level BPE from ../shared/data/tokenizer (saved to `save_to`, a directory
    that `model.tokenizer=` can load, when given); None without those files."""
    if not (GPT2_TOKENIZER / "vocab.json").exists():
        return None
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast(vocab=str(GPT2_TOKENIZER / "vocab.json"),
                            merges=str(GPT2_TOKENIZER / "merges.txt"))
    if save_to:
        tok.save_pretrained(save_to)
    return tok


def product_run(overrides: list[str], run_dir: str | Path, extra_callbacks=()):
    """(cfg, datamodule, module, trainer) built exactly as train.py builds them (logger=csv),
    with the datamodule already set up (tokenized and packed) so that timing starts at fit."""
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import open_dict

    import huggingtweets.config  # noqa: F401  (the ${ht.*} resolvers)
    from huggingtweets.ingest.prepare import prepare
    from huggingtweets.train.fit import make_trainer

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["logger=csv", "trainer.enable_progress_bar=false",
                                          *overrides], return_hydra_config=True)
    with open_dict(cfg):  # as in a real run: ${hydra:runtime.output_dir} is run_dir
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    prepared = prepare(**cfg.data, source=cfg.source, quiet=True)
    dm = instantiate(cfg.data, _partial_=True)(prepared=prepared)
    module = instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)
    trainer = make_trainer(cfg)
    trainer.callbacks.extend(extra_callbacks)
    dm.setup("fit")
    return cfg, dm, module, trainer


def scratch_overrides(handle, tmp, device="cpu", n_layer=None, n_embd=None, n_head=None,
                      block=None, batch=None, tokenizer=None) -> list[str]:
    """train.py overrides for a model=scratch run of `handle` in `tmp`, sized as given: GPT-2
    without input noise (what the baselines build), whatever model=scratch's preset says."""
    sizes = {"model.scratch.n_layer": n_layer, "model.scratch.n_embd": n_embd,
             "model.scratch.n_head": n_head, "data.block_size": block, "data.batch_size": batch,
             "model.tokenizer": tokenizer}
    return [f"user={handle}", "model=scratch", "model.scratch.arch=gpt2", "model.input_noise=0",
            f"data.data_dir={tmp / 'data'}", f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
            *(f"{k}={v}" for k, v in sizes.items() if v is not None)]


def half(device: str):
    """The baselines' mixed precision, as the product's: bf16 on a GPU (older: fp16), else none."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def hf_args(device: str, **kw):
    """transformers.TrainingArguments on `device`, in the product's precision there."""
    import torch
    import transformers

    return transformers.TrainingArguments(
        use_cpu=device != "cuda", bf16=half(device) == torch.bfloat16,
        fp16=half(device) == torch.float16, report_to=[], disable_tqdm=True, save_strategy="no",
        eval_strategy="no", logging_steps=5, dataloader_num_workers=0, **kw)


def autocast(device: str):
    """The plain loop's and the metric's mixed precision on `device` (none on the CPU)."""
    import torch

    return torch.autocast("cuda", half(device)) if half(device) else contextlib.nullcontext()


def blocks_dataset(blocks) -> list[dict]:  # the HF Trainer's dataset: labels = inputs
    return [{"input_ids": b, "labels": b} for b in blocks]


def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                    if ln.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def matmul_peak(device: str = "cpu", seconds: float = 1.5) -> float:
    """Best GFLOP/s of an n x n matmul over `seconds`, the denominator of MFU: fp32 with n = 2048
    on the CPU; bf16 with n = 8192 on a GPU (synchronized around each product)."""
    import torch

    cuda = device == "cuda"
    n, dtype = (8192, torch.bfloat16) if cuda else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    while time.perf_counter() < end:
        sync()
        t = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def train_flops_per_token(n_layer: int, n_embd: int, vocab: int, block: int) -> float:
    """Model FLOPs of a GPT-2 training token as PaLM's MFU counts them (no recomputation, masking
    or embedding lookups): 6 N + 12 L T d, N = the matmul parameters (blocks, tied LM head)."""
    return 6 * (n_layer * 12 * n_embd**2 + vocab * n_embd) + 12 * n_layer * block * n_embd


def median(xs: list[float]) -> float:  # nan when there is nothing to take it of
    return statistics.median(xs) if xs else float("nan")


def save(name: str, data: dict, summary: list, markdown: list[str], device: str = "cpu") -> Path:
    """bench/results/<name>.json (<name>-cuda.json for a GPU run), with the command, the time, the
    commit and the machine; `summary` = [measured, target, met, detail] (run_all's row) and
    `markdown` = the lines of BENCHMARKS.md's section."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}.json" if device == "cpu" else f"{name}-{device}.json")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    data = {"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": commit,
            "command": " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]), **data,
            "summary": summary, "markdown": markdown, "machine": machine_info()}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def table(title: str, columns: list[str], rows: list[list], caption: str | None = None) -> list[str]:
    """Print the table; return it as Markdown lines, with the caption below, for BENCHMARKS.md."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption=caption)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[fmt(x) for x in r])
    Console(width=max(120, 20 * len(columns))).print(t)
    return md_table(columns, rows) + (["", caption + "."] if caption else [])


def md_table(columns: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + [
        "| " + " | ".join(fmt(x).replace("|", "/") for x in r) + " |" for r in rows]


def fmt(x) -> str:
    if x is None or isinstance(x, bool):
        return {None: "–", True: "yes", False: "no"}[x]
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float) or x == 0:
        return str(x)
    spec = next((s for b, s in ((1000, ",.0f"), (100, ".0f"), (10, ".1f"), (1, ".2f"))
                 if abs(x) >= b), ".3g")
    return format(x, spec)


@dataclass
class Runner:
    """One training run (`body`: Lightning's fit, the HF Trainer's train, a plain loop), timed at
    its optimizer steps (torch's global step hook; synchronized on a GPU). `clock` counts the run's
    own work; the metric (`evaluate`, after the steps in `points`, into `curve`) is off it."""

    body: Callable[[], None]
    deterministic: bool = False  # torch.use_deterministic_algorithms during the run
    evaluate: Callable[[], float] | None = None
    points: set = field(default_factory=set)
    curve: list = field(default_factory=list)  # (clock s, metric, step)
    seed: int | None = None  # torch's CPU RNG seeded before the run
    clock: float = 0.0
    steps: int = 0
    step_times: list = field(default_factory=list)

    def run(self, device: str = "cpu") -> Runner:
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook

        def tick(*_):
            if device == "cuda":
                torch.cuda.synchronize()
            self.step_times.append(time.perf_counter() - self._resumed)
            self.clock += self.step_times[-1]
            self.steps += 1
            if self.evaluate is not None and self.steps in self.points:
                self.curve.append((self.clock, self.evaluate(), self.steps))
            self._resumed = time.perf_counter()

        if self.seed is not None:
            torch.manual_seed(self.seed)
        handle = register_optimizer_step_post_hook(tick)
        torch.use_deterministic_algorithms(self.deterministic)
        self._resumed = time.perf_counter()
        try:
            self.body()
        finally:
            self.clock += time.perf_counter() - self._resumed  # the tail after the last step
            handle.remove()
            torch.use_deterministic_algorithms(False)
        return self
