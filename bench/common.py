"""The harness every benchmark script shares: the process set-up (`start`: arguments, the measuring
environment, threads, quiet libraries), the workload (the largest real timeline, or the demo
personas), the product built as train.py builds it (`product_run`), the device switch
(`--device cpu|cuda`), the matmul peak and model FLOPs, tables and JSON results, and the `Baton`
that interleaves several training runs in one process so that they share the machine's load.

Nothing here is imported by the package: bench/ only *uses* huggingtweets, exactly as train.py
configures it, and measures possible product changes by switching config keys or patching here.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import sys
import threading
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


# -- the process -------------------------------------------------------------------------------
def ensure_env() -> None:
    """Re-run this script with the environment the suite measures in, unless already set:
    OMP_WAIT_POLICY=PASSIVE (torch's OpenMP threads otherwise spin at every barrier, and on a
    shared machine a spinning team waits for a descheduled thread at every op: throughput.py
    measures this), MALLOC_ARENA_MAX=2 (the interleaved runners live in threads; one malloc arena
    per thread keeps every thread's freed activations)."""
    want = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_ARENA_MAX": "2"}
    missing = {k: v for k, v in want.items() if k not in os.environ}
    if missing and "torch" not in sys.modules:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})


def parser(doc: str, device: bool = False) -> argparse.ArgumentParser:
    """A script's argument parser: its docstring's first paragraph as the description, and the
    options every script has (--quick, --threads; --device where a GPU number matters)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes: a smoke test of the script in well under a minute")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice, = cores)")
    if device:
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="cuda: the product's GPU defaults (bf16-mixed), the HF Trainer with "
                            "bf16, the plain loop under bf16 autocast; MFU against the bf16 peak; "
                            "writes results/<name>-cuda.json")
    return p


def start(parse, argv):
    """A script's arguments, with its process set up: the measuring environment (when run as a
    script), torch's thread count, quiet libraries, the device checked."""
    if argv is None:
        ensure_env()
    args = parse(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if getattr(args, "device", "cpu") == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device cuda: no CUDA device here (torch {torch.__version__})")
    quiet()
    return args


def quiet() -> None:
    """Keep the tables readable: no Lightning tips, no per-call transformers warnings."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        import transformers

        transformers.logging.set_verbosity_error()


@contextlib.contextmanager
def silent():
    """Hide the product's and the frameworks' prints while a measurement runs."""
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        yield


# -- the workload ------------------------------------------------------------------------------
def have_real_data() -> bool:
    return bool(glob.glob(str(TRUMP / "condensed_*.json.zip")) or
                glob.glob(str(TRUMP / "master_*.json.zip")))


def trump_records(kind: str = "condensed") -> list[dict]:
    """The 2009-2017 timeline as canonical records (v1.1 `master_*` status objects, filtered on
    user.screen_name, or the `condensed_*` files), through the product's own v1.1 mapping."""
    from huggingtweets.ingest.sources.x import v1_record

    files = sorted(glob.glob(str(TRUMP / f"{kind}_*.json.zip")))
    if not files:
        raise FileNotFoundError(f"no {kind}_*.json.zip under {TRUMP}")
    records = []
    for path in files:
        with zipfile.ZipFile(path) as z:
            statuses = [s for n in z.namelist() if n.endswith(".json") for s in json.loads(z.read(n))]
        for status in statuses:
            if kind == "master":
                if ((status.get("user") or {}).get("screen_name") or "").lower() != HANDLE.lower():
                    continue  # records by other accounts
                records.append(v1_record(status))
            else:  # condensed: id_str, text, created_at, is_retweet, in_reply_to_user_id_str
                rec = v1_record({**status, "user": {"screen_name": HANDLE}})
                rec["is_retweet"] = bool(status.get("is_retweet")) or rec["is_retweet"]
                rec["is_reply"] = bool(status.get("in_reply_to_user_id_str"))
                records.append(rec)
    return records


def workload(n_posts: int | None, name: str):
    """(handle, posts, description, tmp dir): the newest `n_posts` (None or 0: all) of the largest
    real timeline when ../shared/data has it, else of the three demo personas merged under one
    handle, written to a fresh data dir under tmp/data as the product's import would."""
    import tempfile

    from huggingtweets.ingest import posts

    if have_real_data():
        handle, df = HANDLE, posts.to_frame(trump_records())
        desc = f"@{HANDLE} 2009-2017 (condensed v1.1 JSON, {len(df):,} posts)"
    else:
        import pandas as pd

        from huggingtweets.ingest.sources import demo

        handle = "demo_mix"
        df = pd.concat([demo.generate(h, n=4000) for h in ("demo_ada", "demo_bo", "demo_cy")],
                       ignore_index=True)
        df["handle"] = handle
        desc = f"demo personas (no ../shared/data; {len(df):,} generated posts)"
    df["source"] = "bench"
    if n_posts and n_posts < len(df):  # the newest (the original could download the newest 3,200)
        df = df.sort_values("created_at").iloc[-n_posts:].reset_index(drop=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    posts.write_posts(tmp / "data", handle, df, source="bench", refresh="full")
    return handle, df, desc, tmp


def have_gpt2_tokenizer() -> bool:
    return (GPT2_TOKENIZER / "vocab.json").exists() and (GPT2_TOKENIZER / "merges.txt").exists()


def gpt2_tokenizer(save_to: str | Path | None = None):
    """GPT-2's real byte-level BPE from ../shared/data/tokenizer (saved to `save_to`, a directory
    that `model.tokenizer=` can load, when given); None without those files."""
    if not have_gpt2_tokenizer():
        return None
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast(vocab=str(GPT2_TOKENIZER / "vocab.json"),
                            merges=str(GPT2_TOKENIZER / "merges.txt"))
    if len(tok) != 50257:
        raise RuntimeError(f"GPT-2 tokenizer has {len(tok)} entries, expected 50257")
    if save_to:
        tok.save_pretrained(save_to)
    return tok


# -- the product, configured as train.py does --------------------------------------------------
def compose_train(overrides: list[str], run_dir: str | Path):
    """The resolved train.yaml config for `overrides`, with Hydra's runtime set as in a real
    run (so ${hydra:runtime.output_dir} resolves to `run_dir`)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import huggingtweets.config  # noqa: F401  (the ${ht.*} resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def product_run(overrides: list[str], run_dir: str | Path, extra_callbacks=()):
    """(cfg, datamodule, module, trainer) built exactly as train.py builds them (logger=csv),
    with the datamodule already set up (tokenized and packed) so that timing starts at fit."""
    import lightning as L
    from hydra.utils import instantiate

    from huggingtweets.ingest.prepare import prepare
    from huggingtweets.train.fit import make_trainer

    cfg = compose_train(["logger=csv", "trainer.enable_progress_bar=false", *overrides], run_dir)
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
    """train.py overrides for a model=scratch run of `handle` in `tmp`, sized as given. GPT-2
    without input noise: the model BENCHMARKS.md's numbers were measured with (and the one the
    baselines here build), whatever model=scratch's preset says."""
    ov = [f"user={handle}", "model=scratch", "model.scratch.arch=gpt2", "model.input_noise=0",
          f"data.data_dir={tmp / 'data'}", f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}"]
    for key, v in (("model.scratch.n_layer", n_layer), ("model.scratch.n_embd", n_embd),
                   ("model.scratch.n_head", n_head), ("data.block_size", block),
                   ("data.batch_size", batch), ("model.tokenizer", tokenizer)):
        if v is not None:
            ov.append(f"{key}={v}")
    return ov


# -- the baselines on a device -----------------------------------------------------------------
def hf_args(device: str, **kw):
    """transformers.TrainingArguments on `device`: bf16 on a GPU with bf16 (as the product's
    bf16-mixed), fp16 on older GPUs, fp32 on the CPU."""
    import torch
    import transformers

    cuda = device == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return transformers.TrainingArguments(
        use_cpu=not cuda, bf16=bf16, fp16=cuda and not bf16, report_to=[], disable_tqdm=True,
        save_strategy="no", eval_strategy="no", logging_steps=5, dataloader_num_workers=0, **kw)


def autocast(device: str):
    """The plain loop's mixed precision: bf16 autocast on a GPU (fp16 without bf16), none on CPU."""
    import torch

    if device != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported()
                          else torch.float16)


def plain_optimizer(model, lr: float, weight_decay: float, warmup_ratio: float, total: int):
    """The textbook loop's AdamW (torch's defaults, decay on matrices only) and warmup + cosine
    schedule over `total` steps, as the `plain` runners use them."""
    import math

    import torch
    import transformers

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    return opt, transformers.get_cosine_schedule_with_warmup(
        opt, math.ceil(warmup_ratio * total), total)


class Blocks:
    """Token blocks as the HF Trainer's dataset (labels = inputs)."""

    def __init__(self, blocks):
        self.blocks = blocks

    def __len__(self):
        return len(self.blocks)

    def __getitem__(self, i):
        return {"input_ids": self.blocks[i], "labels": self.blocks[i]}


# -- the machine -------------------------------------------------------------------------------
def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                    if ln.startswith("model name")), cpu)
    running = 0  # other processes running right now (the suite shares the machine)
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            running += (Path(stat).read_text().rsplit(")", 1)[1].split()[0] == "R"
                        and stat.split("/")[2] != str(os.getpid()))
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "other_running_processes": running,
    }


def matmul_peak(device: str = "cpu", seconds: float = 1.5) -> float:
    """Best GFLOP/s of an n x n matmul over `seconds`, the denominator of MFU: fp32 with n = 2048
    on the CPU; bf16 with n = 8192 on a GPU (synchronized around each product)."""
    import torch

    cuda = device == "cuda"
    n, dtype = (8192, torch.bfloat16) if cuda else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def train_flops_per_token(n_layer: int, n_embd: int, vocab: int, block: int) -> float:
    """Model FLOPs of one training token (forward + backward) of a GPT-2: 6 N + 12 L T d, with N
    the matmul parameters (the blocks and the tied LM head; embedding lookups are free), as in the
    PaLM paper's MFU. Activation recomputation or attention masking do not change it."""
    return 6 * (n_layer * 12 * n_embd**2 + vocab * n_embd) + 12 * n_layer * block * n_embd


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


# -- results -----------------------------------------------------------------------------------
def save(name: str, data: dict, device: str = "cpu") -> Path:
    """bench/results/<name>.json (<name>-cuda.json for a GPU run), with the command, the time and
    the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}.json" if device == "cpu" else f"{name}-{device}.json")
    data = {"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]), **data,
            "machine": machine_info()}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def table(title: str, columns: list[str], rows: list[list], caption: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption=caption)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[fmt(x) for x in r])
    Console(width=max(120, 20 * len(columns))).print(t)


def fmt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x == 0:
            return "0"
        for bound, spec in ((1000, ",.0f"), (100, ".0f"), (10, ".1f"), (1, ".2f")):
            if abs(x) >= bound:
                return format(x, spec)
        return f"{x:.3g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


# -- interleaving several runs in one process --------------------------------------------------
@dataclass
class Runner:
    """One training run driven by its own framework in its own thread. `body` runs the training
    (Lightning's fit, the HF Trainer's train, a plain loop); every optimizer step of this thread
    calls Baton.tick, which times it and hands the machine over when this runner's slice is up."""

    name: str
    body: Callable[[], None]
    total_steps: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms while this runner runs
    on_step: Callable[[int], None] | None = None  # called after step k with the clock paused
    clock: float = 0.0  # seconds of this runner's own work (steps and its own validation)
    steps: int = 0
    step_times: list = field(default_factory=list)  # per-step seconds (not paused)
    done: bool = False
    error: BaseException | None = None
    _resumed_at: float = 0.0
    _rng: object = None
    _wake: threading.Event = field(default_factory=threading.Event)


class Baton:
    """Runs several Runners in threads, one at a time, switching every `slice_steps` steps or
    `slice_s` seconds of the running one's clock (neither: each runs to its end in turn).
    `policy="progress"` gives the turn to the runner with the smallest share of its total steps
    done (runs of different lengths progress together and see the same background load);
    `"round"` goes round in turn, reversing the order every round. Each runner keeps its own torch
    CPU RNG state and determinism flag, so a run computes what it would alone (its CUDA RNG is
    shared). The clock of a runner counts only its own time; on a GPU every step is synchronized
    before the clock is read, so a step's clock holds its GPU work."""

    def __init__(self, runners: list[Runner], slice_steps: int | None = None,
                 slice_s: float | None = None, policy: str = "round", device: str = "cpu"):
        import torch

        self.runners = {r.name: r for r in runners}
        self.order = [r.name for r in runners]
        self.slice_steps, self.slice_s, self.policy = slice_steps, slice_s, policy
        self.device, self._torch = device, torch
        self._done = threading.Event()
        self._slice_start_steps, self._slice_start_clock = 0, 0.0
        self._round = self._pos = 0

    def tick(self) -> None:
        """Called in the runner's thread after every optimizer step."""
        r = self.runners.get(threading.current_thread().name)
        if r is None:
            return
        sync(self.device)
        dt = time.perf_counter() - r._resumed_at
        r.clock += dt
        r.step_times.append(dt)
        r.steps += 1
        if r.on_step is not None:
            r.on_step(r.steps)  # evaluation for the curve: not on this runner's clock
        if (self.slice_steps and r.steps - self._slice_start_steps >= self.slice_steps) or \
                (self.slice_s and r.clock - self._slice_start_clock >= self.slice_s):
            r._rng = self._torch.get_rng_state()
            r._wake.clear()
            self._schedule()
            r._wake.wait()
            self._enter(r)
        r._resumed_at = time.perf_counter()

    def _enter(self, r: Runner) -> None:
        self._torch.use_deterministic_algorithms(r.deterministic)
        if r._rng is not None:
            self._torch.set_rng_state(r._rng)
        self._slice_start_steps, self._slice_start_clock = r.steps, r.clock

    def _pick(self) -> Runner | None:
        names = [n for n in self.order if not self.runners[n].done]
        if not names:
            return None
        if self.policy == "progress":
            return min((self.runners[n] for n in names),
                       key=lambda r: r.steps / max(r.total_steps, 1))
        # round robin, direction reversed each round: A B C C B A A B C ...
        if self._pos >= len(names):
            self._round, self._pos = self._round + 1, 0
        seq = names if self._round % 2 == 0 else names[::-1]
        self._pos += 1
        return self.runners[seq[self._pos - 1]]

    def _schedule(self) -> None:
        nxt = self._pick()
        (self._done if nxt is None else nxt._wake).set()

    def _thread(self, r: Runner) -> None:
        r._wake.wait()
        self._enter(r)
        r._resumed_at = time.perf_counter()
        try:
            r.body()
        except BaseException as err:  # noqa: BLE001  reported by run()
            r.error = err
        finally:
            r.clock += time.perf_counter() - r._resumed_at  # the tail after the last step
            r.done = True
            self._schedule()

    def run(self) -> dict[str, Runner]:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: self.tick())
        threads = [threading.Thread(target=self._thread, args=(r,), name=r.name, daemon=True)
                   for r in self.runners.values()]
        try:
            for t in threads:
                t.start()
            self._schedule()
            self._done.wait()
            for t in threads:
                t.join()
        finally:
            handle.remove()
            self._torch.use_deterministic_algorithms(False)
        for r in self.runners.values():
            if r.error is not None:
                raise RuntimeError(f"runner {r.name} failed: {r.error!r}") from r.error
        return self.runners
