"""Shared pieces of the benchmark scripts: the workload (the largest real timeline, or the demo
personas), machine facts, the matmul peak and model FLOPs, tables and JSON results, and the
`Baton` that interleaves several training runs in one process so that they share the machine's
load fairly (other processes come and go; a ratio of two runs taken minutes apart is noise).

Nothing here is imported by the package: bench/ only *uses* huggingtweets, exactly as train.py
configures it, and measures possible product changes by monkeypatching in the scripts.
"""

from __future__ import annotations

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

# No network: no Hub downloads, no W&B sync (tokenizer parallelism stays as a user has it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
if str(ROOT / "src") not in sys.path:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))


def ensure_env() -> None:
    """Re-run this script with the environment the suite measures in, unless already set:

    - OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin at every barrier; on a
      machine shared with other processes (as this one is while the suite runs) a spinning team
      waits for a descheduled thread at every op, and small models train 2-3x slower and far
      more noisily (measured: throughput.py's omp check). On an idle machine it changes little.
    - MALLOC_ARENA_MAX=2: the interleaved runners live in threads; one malloc arena per thread
      would keep every thread's freed activations (GPT-2 small runners took 17 GB without it).
    """
    want = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_ARENA_MAX": "2"}
    missing = {k: v for k, v in want.items() if k not in os.environ}
    if missing and "torch" not in sys.modules:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})


# -- the workload ------------------------------------------------------------------------------
def have_real_data() -> bool:
    return bool(glob.glob(str(TRUMP / "condensed_*.json.zip")) or
                glob.glob(str(TRUMP / "master_*.json.zip")))


def read_zipped_json(path: str | Path) -> list:
    out = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(".json"):
                out += json.loads(z.read(name))
    return out


def trump_records(kind: str = "condensed") -> list[dict]:
    """The 2009-2017 timeline as canonical records (v1.1 `master_*` status objects, filtered on
    user.screen_name, or the `condensed_*` files), through the product's own v1.1 mapping."""
    from huggingtweets.ingest.sources.x import v1_record

    files = sorted(glob.glob(str(TRUMP / f"{kind}_*.json.zip")))
    if not files:
        raise FileNotFoundError(f"no {kind}_*.json.zip under {TRUMP}")
    records = []
    for path in files:
        for status in read_zipped_json(path):
            if kind == "master":
                user = (status.get("user") or {}).get("screen_name") or ""
                if user.lower() != HANDLE.lower():
                    continue  # 19 records by other accounts in 2016
                records.append(v1_record(status))
            else:  # condensed: id_str, text, created_at, is_retweet, in_reply_to_user_id_str
                rec = v1_record({**status, "user": {"screen_name": HANDLE}})
                rec["is_retweet"] = bool(status.get("is_retweet")) or rec["is_retweet"]
                rec["is_reply"] = bool(status.get("in_reply_to_user_id_str"))
                records.append(rec)
    return records


def load_posts(kind: str = "condensed"):
    """(handle, canonical post table, description): the largest real timeline when
    ../shared/data has it, else the three demo personas merged under one handle."""
    from huggingtweets.ingest.posts import to_frame

    if have_real_data():
        df = to_frame(trump_records(kind))
        df["source"] = "bench"
        return HANDLE, df, f"@{HANDLE} 2009-2017 ({kind} v1.1 JSON, {len(df):,} posts)"
    import pandas as pd

    from huggingtweets.ingest.sources import demo

    frames = [demo.generate(h, n=4000) for h in ("demo_ada", "demo_bo", "demo_cy")]
    df = pd.concat(frames, ignore_index=True)
    df["handle"] = "demo_mix"
    return "demo_mix", df, f"demo personas (no ../shared/data; {len(df):,} generated posts)"


def write_user(data_dir: str | Path, handle: str, df) -> None:
    """Put `df` in the product's per-user cache, as fetch.py would."""
    from huggingtweets.ingest import posts

    posts.write_posts(data_dir, handle, df, source="bench", refresh="full")


def workload(n_posts: int | None, name: str):
    """(handle, posts, description, tmp dir): the newest `n_posts` of the benchmark timeline,
    written to a fresh data dir under tmp/data as fetch.py would."""
    import tempfile

    handle, df, desc = load_posts()
    df = newest(df, n_posts)
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    write_user(tmp / "data", handle, df)
    return handle, df, desc, tmp


def newest(df, n: int | None):
    """The newest `n` posts (the original huggingtweets could only download a user's newest
    3,200: the API's cap)."""
    if not n or n >= len(df):
        return df
    return df.sort_values("created_at").iloc[-n:].reset_index(drop=True)


def gpt2_tokenizer():
    """GPT-2's real byte-level BPE from ../shared/data/tokenizer (transformers 5 keywords)."""
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast(vocab=str(GPT2_TOKENIZER / "vocab.json"),
                            merges=str(GPT2_TOKENIZER / "merges.txt"))
    if len(tok) != 50257:
        raise RuntimeError(f"GPT-2 tokenizer has {len(tok)} entries, expected 50257")
    return tok


def have_gpt2_tokenizer() -> bool:
    return (GPT2_TOKENIZER / "vocab.json").exists() and (GPT2_TOKENIZER / "merges.txt").exists()


# -- the machine -------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def other_load() -> dict:
    """Load average and the busiest other processes right now (the suite shares the machine)."""
    info = {"loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
            else None}
    busy, me = 0, os.getpid()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            pid = int(stat.split("/")[2])
            state = Path(stat).read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            continue
        busy += pid != me and state == "R"
    info["other_running_processes"] = busy
    return info


def machine_info() -> dict:
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        **other_load(),
    }


def matmul_peak(seconds: float = 1.5, n: int = 2048) -> float:
    """Best fp32 GFLOP/s of an n x n matmul over `seconds` (the denominator of MFU)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def train_flops_per_token(n_layer: int, n_embd: int, vocab: int, block: int) -> float:
    """Model FLOPs of one training token (forward + backward) of a GPT-2: 6 N + 12 L T d, with N
    the matmul parameters (the blocks and the tied LM head; embedding lookups are free), as in the
    PaLM paper's MFU. Activation recomputation or attention masking do not change it."""
    n = n_layer * 12 * n_embd**2 + vocab * n_embd
    return 6 * n + 12 * n_layer * block * n_embd


# -- results -----------------------------------------------------------------------------------
def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]), **data}
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
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.3g}" if abs(x) < 1 else f"{x:.2f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def quiet() -> None:
    """Keep the tables readable: no Lightning tips, no per-call transformers warnings."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers",
                 "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except ImportError:
        pass


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
    first_step_at: float | None = None  # clock when the first optimizer step ended
    done: bool = False
    error: BaseException | None = None
    _resumed_at: float = 0.0
    _rng: object = None
    _wake: threading.Event = field(default_factory=threading.Event)


class Baton:
    """Runs several Runners in threads, one at a time, switching every `slice_steps` steps or
    `slice_s` seconds of the running one's clock. `policy="progress"` gives the turn to the runner
    with the smallest share of its total steps done (so runs of different lengths progress
    together and see the same background load); `"round"` goes round in turn, reversing the
    order every round. Each runner keeps its own torch RNG state and determinism flag, so a run
    computes exactly what it would alone. The clock of a runner counts only its own time."""

    def __init__(self, runners: list[Runner], slice_steps: int | None = None,
                 slice_s: float | None = None, policy: str = "round"):
        import torch

        self.runners = {r.name: r for r in runners}
        self.order = [r.name for r in runners]
        self.slice_steps, self.slice_s, self.policy = slice_steps, slice_s, policy
        self._done = threading.Event()
        self._slice_start_steps = 0
        self._slice_start_clock = 0.0
        self._torch = torch
        self._hook = None
        self._round = 0
        self._pos = 0

    # called in the runner's thread after every optimizer step
    def tick(self) -> None:
        r = self.runners.get(threading.current_thread().name)
        if r is None:
            return
        now = time.perf_counter()
        dt = now - r._resumed_at
        r.clock += dt
        r.step_times.append(dt)
        r.steps += 1
        if r.first_step_at is None:
            r.first_step_at = r.clock
        if r.on_step is not None:
            r.on_step(r.steps)  # evaluation for the curve: not on this runner's clock
        slice_steps = r.steps - self._slice_start_steps
        slice_time = r.clock - self._slice_start_clock
        if (self.slice_steps and slice_steps >= self.slice_steps) or \
                (self.slice_s and slice_time >= self.slice_s):
            self._yield(r)
        r._resumed_at = time.perf_counter()

    def paused(self):
        """Context manager: time spent inside is removed from the current runner's clock."""
        baton = self

        class _P:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                r = baton.runners.get(threading.current_thread().name)
                if r is not None:
                    r._resumed_at += time.perf_counter() - self.t

        return _P()

    def _yield(self, r: Runner) -> None:
        r._rng = self._torch.get_rng_state()
        r._wake.clear()
        self._schedule(exclude=None)
        r._wake.wait()
        self._enter(r)

    def _enter(self, r: Runner) -> None:
        self._torch.use_deterministic_algorithms(r.deterministic)
        if r._rng is not None:
            self._torch.set_rng_state(r._rng)
        self._slice_start_steps = r.steps
        self._slice_start_clock = r.clock

    def _pick(self) -> Runner | None:
        live = [self.runners[n] for n in self.order if not self.runners[n].done]
        if not live:
            return None
        if self.policy == "progress":
            return min(live, key=lambda r: r.steps / max(r.total_steps, 1))
        # round robin, direction reversed each round: A B C C B A A B C ...
        names = [n for n in self.order if not self.runners[n].done]
        seq = names if self._round % 2 == 0 else names[::-1]
        if self._pos >= len(seq):
            self._round += 1
            self._pos = 0
            seq = names if self._round % 2 == 0 else names[::-1]
        pick = self.runners[seq[self._pos]]
        self._pos += 1
        return pick

    def _schedule(self, exclude=None) -> None:
        nxt = self._pick()
        if nxt is None:
            self._done.set()
        else:
            nxt._wake.set()

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


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def parser(doc: str):
    """A script's argument parser: its docstring's first paragraph as the description, and the
    options every script has (--quick, --threads)."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    return p


def add_common_args(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: a smoke test of the script in well under a minute")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, = cores)")


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


def start(parse, argv):
    """A script's arguments, with its process set up: the measuring environment (when run as a
    script, see ensure_env), torch's thread count, quiet libraries."""
    if argv is None:
        ensure_env()
    args = parse(argv)
    apply_threads(args)
    quiet()
    return args


def apply_threads(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


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

    cfg = compose_train(["logger=csv", "trainer.enable_progress_bar=false", *overrides], run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = instantiate(cfg.data, _partial_=True)(prepared=prepare(**cfg.data, source=cfg.source, quiet=True))
    module = instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)
    from huggingtweets.train.fit import make_trainer

    trainer = make_trainer(cfg)
    trainer.callbacks.extend(extra_callbacks)
    dm.setup("fit")
    return cfg, dm, module, trainer
