"""(1) time to quality and (2) training throughput on a CUDA GPU, with GPT-2-shaped models; every
number is tagged with the card that gave it (bench/results/gpu.json, `markdown()` for BENCHMARKS.md).

    python bench/gpu.py                  # everything, on the first CUDA device
    python bench/gpu.py --parts throughput --override optim.fused=false   # (2) alone, ~2.5 min
    python bench/gpu.py --quick          # tiny sizes: a smoke test
    python bench/gpu.py --markdown       # print the "## GPU" section from bench/results/gpu.json
    python bench/gpu.py --data DIR       # DIR holds timelines/trump-archive-2009-2017 + tokenizer/
                                         # (default ../shared/data, as the other scripts)

Without a CUDA device it measures nothing, says so and leaves bench/results/gpu.json as it is.

Status of the first GPU runs (one H100 80GB HBM3, 2026-11-25; bench/results/gpu.json):
- the product's default optim.fused=true fails at the first optimizer step on a GPU: with
  bf16-mixed and gradient_clip_val, Lightning's MixedPrecision.clip_gradients refuses a fused
  optimizer ("does not allow for gradient clipping because it performs unscaling of gradients
  internally"), so `ours` failed and `ours-fused` (optim.fused=false) is the working product;
- (1) with optim.fused=false did not finish inside quality.main's interleaving on the GPU (no
  result after ~150 s and ~540 s, where both recipes should take well under a minute); not yet
  diagnosed: run it with `--parts quality --watchdog 60` to get every thread's stack on stderr.

Precision. Ours runs the product's default, `conf/trainer/default.yaml`'s
`precision: ${ht.precision:}`, which is `bf16-mixed` on a GPU with bf16 (16-mixed on older ones);
the HF Trainer gets the matching `TrainingArguments(bf16=True)` and the plain loop
`torch.autocast("cuda", torch.bfloat16)`: fp32 weights and optimizer, bf16 matmuls, for all three.
MFU is model FLOPs (common.train_flops_per_token: 6 N + 12 L T d) x tokens/s over the dense bf16
matmul peak this script measures on the card (median of CUDA-event-timed n x n x n products,
n = 4096 and 8192, the better; before and after the runs, the larger counts).

(1) Time to quality — `quality.main` itself, run on the GPU: the same data (the newest 3,200
posts of the real timeline, cleaned, newest 10 % held out), the same recipes (the original: HF
Trainer, blocks of 1,024, batch 1, lr 1.372e-4, cosine without warmup, the text repeated 4x, no
evaluation; ours: train.py's config, 16 x 128, warmup + cosine, 4 epochs, validation + checkpoint
every epoch, early stopping), one initial state dict, one held-out metric, interleaved by progress
as on the CPU. What differs from the CPU run, all from here (quality.py is unchanged):
- the model is GPT-2 small, 12 x 768 x 12 heads, n_positions 1,024, from random weights, with
  GPT-2's real tokenizer (50,257; `--quality-tokenizer bpe` for the fitted 4,096 BPE instead);
- ours on the product's accelerator default (the `trainer.accelerator=cpu` override dropped, so
  `auto`: the GPU) and precision default; the HF Trainer on the GPU with bf16 (a TrainingArguments
  subclass, patched in while quality.main runs);
- the held-out metric runs on the GPU under bf16 autocast for both runs (quality.TweetLoss
  subclassed: batches moved to the model's device);
- a torch.cuda.synchronize() after every optimizer step, before the interleaving's clock reads
  the time (a global optimizer hook registered ahead of common.Baton's), so each run's clock holds
  its own GPU work;
- our learning rate: `--quality-lrs` (default 6e-4, GPT-2 small's pre-training lr, and 1e-4,
  conf/optim/adamw.yaml's default for model=gpt2). The first is the headline.
The interleaving keeps each run's CPU RNG state but not the CUDA one (dropout on the GPU draws
from the CUDA generator), so a run is not bit-identical to a run alone; it is the same recipe.

(2) Training throughput — GPT-2 small (12 x 768, GPT-2's 50,257 vocabulary) at the CPU table's
batch 8 x 128 and at 64 x 128 (a batch that gives the card work), and the small shape of
conf/model/scratch.yaml (4 x 128, BPE 4,096, 16 x 128); one state dict, the same packed blocks of
all 30,725 posts, the same hyperparameters (lr 5e-4, 5 % warmup, cosine, weight decay 0.01 on
matrices, clipping 1.0):
- `ours`: TweetLM + TweetDataModule + the Lightning Trainer as train.py builds them
  (common.product_run; CSV logger; deterministic as configured);
- `plain`: forward under bf16 autocast, backward, clip_grad_norm_, torch.optim.AdamW (its defaults:
  foreach), the scheduler, zero_grad; batches moved with non_blocking from pinned memory;
- `hf`: transformers.Trainer with bf16=True and its defaults (fused AdamW);
- levers, ours with one setting flipped against the product's current default: `fused` AdamW
  (`-fused`: optim.fused=false where the product has it on, `+fused` optim.fused=true where
  not), `gelu` (`-gelu`: model.fused_gelu=false, back to GPT-2's eight-kernel gelu_new; `+gelu`:
  model.fused_gelu=true),
  both (`-fused-gelu` / `+fused+gelu`), `+nondet` (trainer.deterministic=false: what
  deterministic mode costs on a GPU), and with `--compile` `+compile` (torch.compile of the model).
plain and hf build the model from the same GPT2Config and state dict with GPT-2's stock activation
`gelu_new` (what a transformers user gets; the product's fused-kernel swap counts as the product's),
so `ours-gelu` against them compares the frameworks alone.
The GPU is the process's alone, so the runners run one after the other rather than interleaved:
each a fresh build, `--warmup` untimed steps, then `--steps` timed steps (the window ends before
the first epoch does, so no validation or checkpoint falls in it), CUDA-synchronized at the window's
ends and at 5 chunk boundaries inside it (the chunks give the spread). ours, plain and hf run in
two rounds, the order reversed in the second (their tokens/s is the mean of the rounds); the levers
run once. Deterministic mode is set per runner (Lightning sets it globally for ours).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CORE = ["ours", "plain", "hf"]
LEVERS = ["fused", "gelu", "fused+gelu", "nondet"]  # flipped against the product's defaults
HP = {"lr": 5e-4, "weight_decay": 0.01, "warmup_ratio": 0.05, "max_grad_norm": 1.0}


def shapes(quick: bool) -> dict:
    """name: (n_layer, n_embd, n_head, tokenizer, batch, block), from throughput.py's shapes."""
    import throughput

    base = throughput.QUICK if quick else throughput.SHAPES
    g = base["gpt2-small"]
    return {"gpt2-small": g, "gpt2-small-b64": (*g[:4], 8 * g[4], g[5]), "small": base["small"]}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (~1 min)")
    p.add_argument("--markdown", action="store_true",
                   help="print the '## GPU' section of --out (no GPU needed) and exit")
    p.add_argument("--data", default=None,
                   help="folder with timelines/trump-archive-2009-2017 and tokenizer/ "
                        "(default: ../shared/data)")
    p.add_argument("--out", default=str(common.RESULTS / "gpu.json"), help="the result JSON")
    p.add_argument("--parts", default="quality,throughput",
                   help="comma list, in the order to run: quality,throughput")
    p.add_argument("--tmp", default=None,
                   help="folder for the runs' data, logs and checkpoints (default: the system's "
                        "temp dir; a GPT-2-small checkpoint is ~1.5 GB, so a slow disk shows)")
    p.add_argument("--override", action="append", default=[],
                   help="extra Hydra override for ours, in (1) and (2) (repeatable), e.g. "
                        "optim.fused=false; recorded in the result")
    p.add_argument("--watchdog", type=float, default=0,
                   help="dump every thread's stack to stderr each this many seconds (diagnosis)")
    p.add_argument("--shapes", default="gpt2-small,gpt2-small-b64,small")
    p.add_argument("--runners", default=",".join(CORE + LEVERS),
                   help="ours, plain, hf and levers of ours: fused, gelu, fused+gelu, nondet")
    p.add_argument("--compile", action="store_true", help="also ours+compile (torch.compile)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of ours, plain, hf")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per runner")
    p.add_argument("--steps", type=int, default=60, help="timed steps per runner")
    p.add_argument("--posts", type=int, default=0, help="posts for (2) (0: all)")
    p.add_argument("--quality-lrs", default="6e-4,1e-4",
                   help="our lr in (1), one quality run each; the first is the headline")
    p.add_argument("--quality-tokenizer", choices=["gpt2", "bpe"], default="gpt2")
    p.add_argument("--quality-posts", type=int, default=3200)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.steps, args.posts = 1, 2, 5, 3000
        args.quality_lrs = args.quality_lrs.split(",")[0]
    return args


def use_data(folder: str | None) -> None:
    """Point common (and so quality/throughput) at another copy of ../shared/data."""
    if folder:
        root = Path(folder).resolve()
        common.SHARED = root
        common.TRUMP = root / "timelines" / "trump-archive-2009-2017"
        common.GPT2_TOKENIZER = root / "tokenizer"


# -- the card ----------------------------------------------------------------------------------
def device_info() -> dict:
    import lightning
    import torch
    import transformers

    props = torch.cuda.get_device_properties(0)
    info = {
        "name": torch.cuda.get_device_name(0),
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "transformers": transformers.__version__, "lightning": lightning.__version__,
        "bf16": torch.cuda.is_bf16_supported(),
    }
    with contextlib.suppress(Exception):
        info["driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    return info


def matmul_peak(dtype_name: str = "bfloat16", sizes=(4096, 8192), reps: int = 20) -> dict:
    """Dense matmul TFLOP/s on the card: per n, the median of `reps` CUDA-event-timed n x n x n
    products after 3 warm-ups; the best n counts."""
    import torch

    dtype = getattr(torch, dtype_name)
    per = {}
    for n in sizes:
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        for _ in range(3):
            torch.mm(a, b)
        times = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            torch.mm(a, b)
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e) / 1e3)
        per[n] = 2 * n**3 / common.median(times) / 1e12
        del a, b
    torch.cuda.empty_cache()
    return {"dtype": dtype_name, "tflops": max(per.values()), "by_n": per}


def product_precision() -> str:
    """What `${ht.precision:}` (conf/trainer/default.yaml) resolves to here."""
    import huggingtweets.config as htc

    return htc.precision()


def gpu_training_args(precision: str):
    """transformers.TrainingArguments on the GPU with the autocast dtype of `precision`."""
    import transformers

    class GPUTrainingArguments(transformers.TrainingArguments):
        def __post_init__(self):
            self.use_cpu = False
            self.bf16 = precision.startswith("bf16")
            self.fp16 = precision.startswith("16")
            super().__post_init__()

    return GPUTrainingArguments


def autocast(precision: str):
    import torch

    if precision.startswith("bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def sync_every_step():
    """torch.cuda.synchronize() after every optimizer step, ahead of common.Baton's own global
    hook (registered later, so called later): the Baton's clocks then hold each run's GPU work."""
    import threading

    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    counts: dict = {}
    t0 = time.perf_counter()

    def hook(opt, a, k):
        torch.cuda.synchronize()
        name = threading.current_thread().name
        counts[name] = counts.get(name, 0) + 1
        if counts[name] % 50 == 0:  # progress on stderr (quality.py hides stdout meanwhile)
            print(f"    [{time.perf_counter() - t0:6.1f} s] {name}: step {counts[name]}",
                  file=sys.stderr, flush=True)

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield
    finally:
        handle.remove()


# -- (1) time to quality -----------------------------------------------------------------------
def run_quality(args, lr: float, tok_dir: Path | None, precision: str) -> dict:
    """quality.main on the GPU with a GPT-2-shaped model: see the module docstring."""
    import quality
    import torch
    import transformers

    extra = ([f"model.tokenizer={tok_dir}"] if tok_dir else []) + list(args.override)
    real_run, real_save = common.product_run, common.save
    real_args, real_loss = transformers.TrainingArguments, quality.TweetLoss

    def product_run(overrides, run_dir, extra_callbacks=()):
        ov = [o for o in overrides if o != "trainer.accelerator=cpu"] + extra
        return real_run(ov, run_dir, extra_callbacks)

    class GPUTweetLoss(real_loss):
        def __call__(self, model):
            dev = next(model.parameters()).device
            if self.batches and self.batches[0][0].device != dev:
                self.batches = [(i.to(dev), lb.to(dev)) for i, lb in self.batches]
            with autocast(precision) if dev.type == "cuda" else contextlib.nullcontext():
                return super().__call__(model)

    argv = ["--posts", str(args.quality_posts), "--lr", f"{lr:g}", "--slice", "1.0"]
    if not args.quick:
        argv += ["--n-layer", "12", "--n-embd", "768", "--n-head", "12"]
    else:
        argv += ["--quick"]
    try:
        common.product_run = product_run
        common.save = lambda name, data: None  # keep bench/results/quality.json (the CPU run)
        transformers.TrainingArguments = gpu_training_args(precision)
        quality.TweetLoss = GPUTweetLoss
        torch.cuda.reset_peak_memory_stats()
        with sync_every_step():
            res = quality.main(argv)
    finally:
        common.product_run, common.save = real_run, real_save
        transformers.TrainingArguments, quality.TweetLoss = real_args, real_loss
        torch.use_deterministic_algorithms(False)
    res["tokenizer"] = "gpt2" if tok_dir else "bpe"
    res["precision"] = {"ours": precision, "original": f"HF Trainer, {precision[:4]}=True",
                        "metric": f"{precision[:4]} autocast"}
    res["max_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    gc.collect()
    torch.cuda.empty_cache()
    return res


# -- (2) throughput ----------------------------------------------------------------------------
class StepClock:
    """A global optimizer-step hook: synchronizes and reads the clock at the given step counts."""

    def __init__(self, marks):
        self.marks, self.times, self.step = set(marks), {}, 0

    def __call__(self, opt, a, k):
        import torch

        self.step += 1
        if self.step in self.marks:
            torch.cuda.synchronize()
            self.times[self.step] = time.perf_counter()


def run_shape(args, shape, spec, handle, tmp, tok_dir, precision, peak) -> dict:
    import quality
    import torch
    import transformers
    from torch.optim.optimizer import register_optimizer_step_post_hook

    n_layer, n_embd, n_head, tokenizer, batch, block = spec
    if tokenizer == "gpt2" and tok_dir is None:
        tokenizer = "bpe"
    overrides = [
        f"user={handle}", "model=scratch", f"data.data_dir={tmp / 'data'}",
        f"data.block_size={block}", f"data.batch_size={batch}", f"model.scratch.n_layer={n_layer}",
        f"model.scratch.n_embd={n_embd}", f"model.scratch.n_head={n_head}",
        f"model.scratch.n_positions={max(block, 256)}", f"optim.lr={HP['lr']}",
        f"optim.warmup_ratio={HP['warmup_ratio']}", f"optim.weight_decay={HP['weight_decay']}",
    ] + ([f"model.tokenizer={tok_dir}"] if tokenizer == "gpt2" else []) + list(args.override)
    shared: dict = {}
    plan = {"warmup": args.warmup, "steps": args.steps}

    def marks():
        w, n = plan["warmup"], plan["steps"]
        return sorted({w + round(n * i / 5) for i in range(6)})

    def lever(spec: str) -> tuple[str, list[str], set]:
        """(runner name, overrides, patches) of ours with the settings in `spec` flipped
        against the product's defaults (read from the first composed config)."""
        cfg = shared["cfg"]
        name, ov, patches = "ours", [], set()
        for part in spec.split("+"):
            if part == "fused" and cfg.optim.get("fused") is not None and cfg.optim.fused:
                name, ov = name + "-fused", ov + ["optim.fused=false"]
            elif part == "fused":
                name, ov = name + "+fused", ov + ["optim.fused=true"]
            elif part == "gelu" and cfg.model.get("fused_gelu") is not None and cfg.model.fused_gelu:
                name, ov = name + "-gelu", ov + ["model.fused_gelu=false"]
            elif part == "gelu":
                name, ov = name + "+gelu", ov + ["model.fused_gelu=true"]
            elif part == "nondet" and cfg.trainer.deterministic:
                name, ov = name + "+nondet", ov + ["trainer.deterministic=false"]
            elif part == "nondet":
                name, ov = name + "+det", ov + ["trainer.deterministic=true"]
            elif part == "compile":
                name, patches = name + "+compile", patches | {"compile"}
            elif part != "ours":
                raise ValueError(f"unknown lever {part!r}")
        return name, ov, patches

    def build_ours(spec):
        name, ov, patches = lever(spec) if spec != "ours" else ("ours", [], set())
        ov = overrides + ov
        if "steps_per_epoch" not in shared:  # size the window inside the first epoch
            with contextlib.redirect_stdout(io.StringIO()):
                _, dm, _, _ = common.product_run([*ov, "+trainer.max_steps=1"], tmp / "probe")
            spe = math.ceil(len(dm.train_set) / batch)
            shutil.rmtree(tmp / "probe", ignore_errors=True)
            shared["steps_per_epoch"] = spe
            if plan["warmup"] + plan["steps"] >= spe:
                plan["steps"] = max(5, spe - 1 - plan["warmup"])
                print(f"  {shape}: {spe} steps per epoch: timing {plan['steps']} steps")
        total = plan["warmup"] + plan["steps"]
        with contextlib.redirect_stdout(io.StringIO()):
            cfg, dm, module, trainer = common.product_run(
                [*ov, f"+trainer.max_steps={total}"], tmp / f"run-{shape}-{name}")
        if "init" not in shared:  # the first model built is everyone's initial weights
            shared["cfg"] = cfg
            shared["init"] = {k: v.clone() for k, v in module.model.state_dict().items()}
            shared["config"] = copy.deepcopy(module.model.config)
            shared["config"].activation_function = "gelu_new"  # GPT-2's stock, for plain and hf
            shared["ours_activation"] = module.model.config.activation_function
            shared["blocks"] = dm.train_set.blocks
            shared["params"] = sum(p.numel() for p in module.model.parameters())
        module.model.load_state_dict(shared["init"])
        if "compile" in patches:
            module.model = torch.compile(module.model)
        run_dir = tmp / f"run-{shape}-{name}"

        def body():
            try:
                trainer.fit(module, datamodule=dm)
            finally:  # checkpoints: ~1.5 GB per GPT-2-small run
                shutil.rmtree(run_dir, ignore_errors=True)
        return name, body, bool(cfg.trainer.deterministic)

    def build_plain(name):
        total = plan["warmup"] + plan["steps"]
        model = transformers.GPT2LMHeadModel(shared["config"])
        model.load_state_dict(shared["init"])
        model.to("cuda")
        blocks = shared["blocks"]

        def body():
            opt, sched = common.plain_optimizer(model, HP["lr"], HP["weight_decay"],
                                                HP["warmup_ratio"], total)
            loader = torch.utils.data.DataLoader(blocks, batch_size=batch, shuffle=True,
                                                 pin_memory=True)
            model.train()
            done = 0
            while done < total:
                for ids in loader:
                    ids = ids.to("cuda", non_blocking=True)
                    with autocast(precision):
                        loss = model(input_ids=ids, labels=ids).loss
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), HP["max_grad_norm"])
                    opt.step()
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                    done += 1
                    if done >= total:
                        break
        return name, body, False

    def build_hf(name):
        total = plan["warmup"] + plan["steps"]
        model = transformers.GPT2LMHeadModel(shared["config"])
        model.load_state_dict(shared["init"])
        targs = gpu_training_args(precision)(
            output_dir=str(tmp / f"hf-{shape}"), per_device_train_batch_size=batch,
            max_steps=total, learning_rate=HP["lr"], weight_decay=HP["weight_decay"],
            warmup_steps=math.ceil(HP["warmup_ratio"] * total), lr_scheduler_type="cosine",
            max_grad_norm=HP["max_grad_norm"], logging_steps=5, save_strategy="no",
            eval_strategy="no", report_to=[], disable_tqdm=True, dataloader_num_workers=0, seed=0,
        )
        hf = transformers.Trainer(model=model, args=targs,
                                  train_dataset=quality.Blocks(shared["blocks"]),
                                  data_collator=transformers.default_data_collator)
        return name, hf.train, False

    def measure(rnd, spec, measured):
        name, body, deterministic = (build_plain(spec) if spec == "plain" else
                                     build_hf(spec) if spec == "hf" else build_ours(spec))
        clock = StepClock(marks())
        torch.use_deterministic_algorithms(deterministic)
        torch.cuda.reset_peak_memory_stats()
        handle_ = register_optimizer_step_post_hook(clock)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                body()
        finally:
            handle_.remove()
            torch.use_deterministic_algorithms(False)
        ms = sorted(clock.times)
        if len(ms) < 2:
            raise RuntimeError(f"{shape}/{name}: only {clock.step} optimizer steps were seen")
        chunks = [(b - a) / (clock.times[b] - clock.times[a]) * batch * block
                  for a, b in zip(ms, ms[1:])]
        tps = (ms[-1] - ms[0]) * batch * block / (clock.times[ms[-1]] - clock.times[ms[0]])
        if rnd >= 0:
            m = measured.setdefault(name, {"rounds": [], "chunks": []})
            m["rounds"].append(tps)
            m["chunks"] += chunks
            m["deterministic"] = deterministic
            m["max_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            print(f"  {shape} {name:16s} round {rnd + 1}: {tps:,.0f} tok/s", flush=True)

    wanted = [r for r in args.runners.split(",") if r] + (["compile"] if args.compile else [])
    core = [r for r in CORE if r in wanted]
    order = []
    for rnd in range(args.rounds):
        order += [(rnd, n) for n in (core if rnd % 2 == 0 else core[::-1])]
    order += [(0, n) for n in wanted if n not in CORE]
    if "ours" not in [n for _, n in order]:
        order.insert(0, (-1, "ours"))  # builds the data and the initial weights; not reported
    measured: dict = {}
    errors: list = []
    for rnd, name in order:
        try:
            measure(rnd, name, measured)
        except Exception as err:  # noqa: BLE001  recorded; the other runners still run
            traceback.print_exc()
            errors.append(f"{name} round {rnd + 1}: {err!r}")
        gc.collect()
        torch.cuda.empty_cache()
    if "config" not in shared:
        return {"errors": errors}
    vocab = shared["config"].vocab_size
    fpt = common.train_flops_per_token(n_layer, n_embd, vocab, block)
    runners = {}
    for name, m in measured.items():
        tps = sum(m["rounds"]) / len(m["rounds"])
        med = common.median(m["chunks"])
        runners[name] = {"tokens_per_s": tps, "tokens_per_s_rounds": m["rounds"],
                         "step_s": batch * block / tps,
                         "spread": (max(m["chunks"]) - min(m["chunks"])) / med,
                         "chunk_tokens_per_s": m["chunks"], "deterministic": m["deterministic"],
                         "max_gpu_memory_gib": m["max_gpu_memory_gib"],
                         "mfu": tps * fpt / (peak * 1e12)}
    for r in runners.values():
        r["vs_hf"] = r["tokens_per_s"] / runners["hf"]["tokens_per_s"] if "hf" in runners else None
        r["vs_ours"] = (r["tokens_per_s"] / runners["ours"]["tokens_per_s"]
                        if "ours" in runners else None)
    return {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "batch": batch,
            "block": block, "tokenizer": tokenizer, "vocab": vocab, "params": shared["params"],
            "flops_per_token": fpt, "warmup_steps": plan["warmup"], "timed_steps": plan["steps"],
            "steps_per_epoch": shared.get("steps_per_epoch"), "runners": runners,
            "ours_activation": shared["ours_activation"], "baseline_activation": "gelu_new",
            "product_defaults": {"optim.fused": shared["cfg"].optim.get("fused"),
                                 "model.fused_gelu": shared["cfg"].model.get("fused_gelu"),
                                 "trainer.deterministic": shared["cfg"].trainer.deterministic},
            "errors": errors}


def run_throughput(args, tok_dir, precision, peak) -> dict:
    handle, df, desc, tmp = common.workload(args.posts, "gpu-throughput")
    table = shapes(args.quick)
    out = {"data": desc, "posts": len(df), "hyperparameters": HP, "shapes": {}}
    for shape in [s for s in args.shapes.split(",") if s]:
        try:
            out["shapes"][shape] = run_shape(args, shape, table[shape], handle, tmp, tok_dir,
                                             precision, peak)
        except Exception as err:  # noqa: BLE001  recorded; the other shapes still run
            traceback.print_exc()
            out["shapes"][shape] = {"errors": [repr(err)]}
    shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- the whole run -----------------------------------------------------------------------------
def main(argv=None) -> dict | None:
    args = parse(argv)
    out_path = Path(args.out)
    if args.markdown:
        print("\n".join(markdown(json.loads(out_path.read_text()) if out_path.exists() else {})))
        return None
    if argv is None:
        common.ensure_env()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as Lightning sets it
    use_data(args.data)
    if args.tmp:
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(Path(args.tmp).resolve())
    if args.watchdog:
        import faulthandler

        faulthandler.dump_traceback_later(args.watchdog, repeat=True, file=sys.stderr)
    import torch

    if not torch.cuda.is_available():
        print(f"bench/gpu.py: no CUDA device here (torch {torch.__version__}); nothing measured, "
              f"{out_path} left as it is. Run it on a machine with an NVIDIA GPU.", file=sys.stderr)
        return None
    common.quiet()
    precision = product_precision()
    dev = device_info()
    peaks = [matmul_peak()]
    print(f"{dev['name']}: torch {dev['torch']}, CUDA {dev['cuda']}; product precision "
          f"{precision}; bf16 matmul peak {peaks[0]['tflops']:.0f} TFLOP/s", flush=True)
    tok_dir = None
    if common.have_gpt2_tokenizer():
        tok_dir = Path(tempfile.mkdtemp(prefix="bench-gpu-tok-")) / "gpt2-tokenizer"
        common.gpt2_tokenizer().save_pretrained(tok_dir)
    result = {
        "benchmark": "gpu", "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "quick": args.quick,
        "device": dev,
        "precision": {"ours": f"{precision} (conf/trainer/default.yaml: ${{ht.precision:}})",
                      "hf": "TrainingArguments(bf16=True)" if precision.startswith("bf16")
                      else f"TrainingArguments({precision})",
                      "plain": "torch.autocast('cuda', torch.bfloat16)"
                      if precision.startswith("bf16") else precision,
                      "product": precision},
        "peak": {"dtype": "bfloat16", "tflops": peaks[0]["tflops"], "runs": peaks,
                 "how": "median of 20 CUDA-event-timed n x n x n torch.mm, n = 4096, 8192; best n; "
                        "before and after; the larger"},
        "ours_overrides": list(args.override),
        "machine": common.machine_info(),
    }

    def save():
        result["peak"]["tflops"] = max(p["tflops"] for p in peaks)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")

    parts = [p for p in args.parts.split(",") if p]
    lrs = [float(x) for x in args.quality_lrs.split(",") if x]
    qtok = tok_dir if args.quality_tokenizer == "gpt2" else None
    t0 = time.perf_counter()

    def attempt(label, fn):
        """One part; a failure is recorded (and printed) and the other parts still run."""
        print(label, flush=True)
        try:
            return fn()
        except Exception as err:  # noqa: BLE001
            traceback.print_exc()
            result.setdefault("errors", []).append(f"{label}: {err!r}")
            return None
        finally:
            save()

    def quality_run(lr):
        before = set(Path(tempfile.gettempdir()).glob("bench-quality-*"))
        try:
            return run_quality(args, lr, qtok, precision)
        finally:  # quality.py's temp folder holds its checkpoints (GBs for GPT-2 small)
            for d in set(Path(tempfile.gettempdir()).glob("bench-quality-*")) - before:
                shutil.rmtree(d, ignore_errors=True)

    result["quality"] = []
    for part in parts:
        if part == "throughput":
            result["throughput"] = attempt("(2) throughput", lambda: run_throughput(
                args, tok_dir, precision, peaks[0]["tflops"]))
        elif part == "quality":
            for lr in lrs:
                q = attempt(f"(1) time to quality, ours at lr {lr:g}", lambda: quality_run(lr))
                if q is not None:
                    result["quality"].append(q)
    peaks.append(matmul_peak())
    peak = max(p["tflops"] for p in peaks)
    for shape in (result.get("throughput") or {}).get("shapes", {}).values():
        for r in shape["runners"].values():  # MFU against the larger of the two peaks
            r["mfu"] = r["tokens_per_s"] * shape["flops_per_token"] / (peak * 1e12)
    result["elapsed_s"] = time.perf_counter() - t0
    save()
    print("\n".join(markdown(result)))
    print(f"wrote {out_path}")
    return result


# -- BENCHMARKS.md -----------------------------------------------------------------------------
def _table(columns: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] +
            ["| " + " | ".join(common.fmt(x) for x in r) + " |" for r in rows])


def markdown(result: dict) -> list[str]:
    """The "## GPU" section of BENCHMARKS.md from bench/results/gpu.json (as loaded)."""
    lines = ["## GPU", ""]
    if not result:
        return lines + ["No GPU measurement yet: run `python bench/gpu.py` on a machine with a "
                        "CUDA GPU (it writes bench/results/gpu.json).", ""]
    dev = result.get("device", {})
    card = dev.get("name", "unknown GPU")
    peak = result.get("peak", {})
    prec = result.get("precision", {})
    runs = ", ".join(f"{p['tflops']:.0f}" for p in peak.get("runs", []))
    lines += [
        f"Measured by `bench/gpu.py`{' --quick (smoke-test sizes)' if result.get('quick') else ''}"
        f" on one **{card}** ({dev.get('memory_gib', '?')} GiB, compute capability "
        f"{dev.get('capability', '?')}, driver {dev.get('driver', '?')}) on {result.get('when')}: "
        f"torch {dev.get('torch')} (CUDA {dev.get('cuda')}), transformers "
        f"{dev.get('transformers')}, lightning {dev.get('lightning')}. "
        f"Every number in this section is from that card; the machine ran nothing else.",
        "",
    ]
    if result.get("ours_overrides"):
        lines += [f"Ours ran with `{' '.join(result['ours_overrides'])}` on top of the "
                  f"product's defaults, in (1) and (2).", ""]
    lines += [
        f"Precision: ours = the product's default, {prec.get('ours')}; the HF Trainer "
        f"{prec.get('hf')}; the plain loop {prec.get('plain')}; fp32 weights and optimizer states "
        f"in all. MFU = 6N+12LTd FLOPs/token × tokens/s ÷ the dense **{peak.get('dtype')}** matmul "
        f"peak measured on the card, {peak.get('tflops', 0):.0f} TFLOP/s (runs: {runs}; "
        f"{peak.get('how')}).",
        "",
    ]
    qs = result.get("quality") or []
    if qs:
        q0 = qs[0]
        m = q0.get("model", {})
        lines += [
            f"### (1) Time to quality on the {card}",
            "",
            f"{q0.get('data')}, newest {q0.get('posts', 0):,} posts: {q0.get('train_tweets', 0):,} "
            f"training and {q0.get('val_tweets', 0):,} held-out tweets ({q0.get('val_tokens', 0):,} "
            f"tokens). GPT-2 {m.get('n_layer')}x{m.get('n_embd')} ({m.get('n_head')} heads, "
            f"n_positions 1024) from one random init ({m.get('params', 0) / 1e6:.1f}M params), "
            f"tokenizer: {'GPT-2' if q0.get('tokenizer') == 'gpt2' else 'fitted BPE'} "
            f"({m.get('vocab', 0):,}). Same recipes, data split and held-out metric as the CPU "
            f"run of quality.py; one quality.py run per learning rate of ours (each with its own "
            f"run of the original beside it).",
            "",
        ]
        rows = []
        for q in qs:
            o, u, r = q["original"], q["ours"], q["our_recipe"]
            rows.append([f"original (HF Trainer, 1 x 1024, lr 1.372e-4) — beside lr {r['lr']:g}",
                         o["steps"], o["tokens_per_s"], o["clock_s"], q["target_loss"],
                         o["time_to_target_s"], 1.0])
            rows.append([f"ours (Lightning, {r['batch_size']} x {r['block_size']}, lr {r['lr']:g}, "
                         f"warmup + cosine, early stopping)", u["steps"], u["tokens_per_s"],
                         u["clock_s"], u["curve"][-1][1] if u.get("curve") else None,
                         u["time_to_target_s"], q.get("speedup_to_target")])
        lines += _table(["recipe", "steps", "tokens/s", "run (s)", "final loss",
                         "s to the original's final loss", "speed-up"], rows)
        lines.append("")
        for q in qs:
            d = q.get("decomposition") or {}
            eq = q.get("loss_at_equal_time", {})
            s = q.get("speedup_to_target")
            lines.append(
                f"- lr {q['our_recipe']['lr']:g}: initial loss {q['initial_loss']:.3f}, target "
                f"(the original's final) {q['target_loss']:.3f}; "
                + (f"speed-up {s:.1f}x = {d.get('token_throughput_x', 0):.2f}x tokens/s × "
                   f"{d.get('sample_efficiency_x', 0):.2f}x fewer tokens; " if s and d else
                   "ours did not reach the target; ")
                + f"ours' best {q['ours'].get('best_loss', float('nan')):.3f}"
                + (", stopped early" if q["ours"].get("stopped_early") else "")
                + f"; when ours finished ({eq.get('t_ours_end_s', 0):.0f} s) the original was at "
                f"{common.fmt(eq.get('original'))}.")
        lines.append("")
    t = result.get("throughput") or {}
    if t.get("shapes"):
        lines += [
            f"### (2) Training throughput on the {card}",
            "",
            f"{t.get('data')}; lr {HP['lr']:g}, 5% warmup, cosine, weight decay 0.01, clipping "
            f"1.0 for all. The GPU is the process's alone, so runners run one after another "
            f"(fresh builds): untimed warm-up steps, then a timed window inside the first epoch, "
            f"CUDA-synchronized at its ends; ours, plain and hf in "
            f"{max((len(r.get('tokens_per_s_rounds', [])) for s in t['shapes'].values() for r in s.get('runners', {}).values()), default=0)}"
            f" rounds (order reversed in the second; tokens/s = their mean), the levers once. "
            f"Spread = (max - min) / median of the window's 5 chunks.",
            "",
        ]
        first = next((v for v in t["shapes"].values() if v.get("product_defaults")), None)
        if first:
            d = first["product_defaults"]
            lines += [
                f"`ours` is the product as configured at the run: optim.fused={d.get('optim.fused')}, "
                f"model.fused_gelu={d.get('model.fused_gelu')} (activation "
                f"{first.get('ours_activation')}), trainer.deterministic="
                f"{d.get('trainer.deterministic')}; `-x` / `+x` runners flip one of these. `plain` "
                f"(torch AdamW, foreach) and `hf` (the Trainer's fused AdamW) run GPT-2's stock "
                f"{first.get('baseline_activation')} on the same config and weights.",
                "",
            ]
        rows = []
        for name, s in t["shapes"].items():
            if not s.get("runners"):
                continue
            label = (f"{name} ({s['n_layer']}x{s['n_embd']}, vocab {s['vocab']:,}, "
                     f"{s['batch']}x{s['block']})")
            for i, (rn, r) in enumerate(s["runners"].items()):
                mfu = f"{r['mfu']:.1%}" if r["mfu"] >= 0.01 else f"{r['mfu']:.2%}"
                rows.append([label if i == 0 else "", rn, r["tokens_per_s"], mfu,
                             r.get("vs_hf"), r.get("vs_ours"), r.get("spread"),
                             r.get("max_gpu_memory_gib")])
        lines += _table(["shape", "runner", "tokens/s", "MFU", "× hf", "× ours", "spread",
                         "GPU GiB"], rows)
        lines.append("")
    errs = [tuple(e.split(": ", 1)) if ": " in e else ("", e) for e in result.get("errors") or []]
    for name, s in (t.get("shapes") or {}).items():
        errs += [(f"(2) {name} {e.split(': ', 1)[0]}", e.split(": ", 1)[-1])
                 for e in s.get("errors") or []]
    by_msg: dict = {}
    for where, msg in errs:  # one line per distinct error, with where it happened
        by_msg.setdefault(msg, []).append(where)
    if by_msg:
        lines += ["Failed:", ""] + [f"- {', '.join(w)}: `{m[:400]}`" for m, w in by_msg.items()]
        lines.append("")
    return lines


if __name__ == "__main__":
    main()
