"""(2) Training throughput: tokens/s and model FLOPs utilisation of our training step (ours: the
Lightning Trainer as train.py builds it) against a plain PyTorch loop (plain) and the HF Trainer
(hf), on the CPU or (--device cuda) a GPU: one state dict, batch, data and hyperparameters.

The runners run one after another in this process, each freed before the next. tokens/s = batch x
block / the median step after --warmup steps; MFU = model FLOPs per token (6 N + 12 L T d) x
tokens/s / the matmul peak measured here (fp32 2048^2 on the CPU, bf16 8192^2 on a GPU).
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# name: (n_layer, n_embd, n_head, tokenizer, batch, block), batch x 8 on a GPU; small: demo-sized
SHAPES = {"gpt2-small": (12, 768, 12, "gpt2", 8, 128), "small": (4, 128, 4, "bpe", 16, 128)}
QUICK = {"gpt2-small": (1, 64, 2, "gpt2", 2, 32), "small": (1, 32, 2, "bpe", 4, 32)}
HP = {"lr": 5e-4, "weight_decay": 0.01, "warmup_ratio": 0.05}


def parse(argv=None):
    p = common.parser(__doc__, device=True)
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma list of " + ",".join(SHAPES))
    p.add_argument("--steps", type=int, help="timed steps per runner, GPT-2 small (cpu 6, cuda 60)")
    p.add_argument("--small-steps", type=int, help="timed steps, the small shape (cpu 24, cuda 60)")
    p.add_argument("--warmup", type=int, help="untimed first steps per runner (cpu 1, cuda 10)")
    p.add_argument("--posts", type=int, help="newest posts used as data (cpu 6000, cuda 0: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.small_steps, args.posts = 2, 2, 1000
    cuda = args.device == "cuda"
    args.steps, args.small_steps = args.steps or (60 if cuda else 6), args.small_steps or (60 if cuda else 24)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    args.posts = args.posts if args.posts is not None else (0 if cuda else 6000)
    return args


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    dev = args.device
    handle, df, desc, tmp = common.workload(args.posts, "throughput")
    tok_dir = tmp / "gpt2-tokenizer" if common.gpt2_tokenizer(tmp / "gpt2-tokenizer") else None
    peaks = [common.matmul_peak(dev)]
    results = {shape: run_shape(args, shape, handle, tmp, tok_dir)
               for shape in args.shapes.split(",") if shape}
    peaks.append(common.matmul_peak(dev))
    peak = max(peaks)
    rows = []
    for shape, res in results.items():
        for i, (name, r) in enumerate(res["runners"].items()):
            r["mfu"] = r["tokens_per_s"] * res["flops_per_token"] / (peak * 1e9)
            r["vs_hf"] = r["tokens_per_s"] / res["runners"]["hf"]["tokens_per_s"]
            rows.append([f"{shape} ({res['n_layer']}x{res['n_embd']}, vocab {res['vocab']}, "
                         f"{res['batch']}x{res['block']})" if i == 0 else "", name,
                         r["tokens_per_s"], f"{r['mfu']:.1%}", r["vs_hf"], r["spread"]])
    unit, div = ("TFLOP/s", 1e3) if dev == "cuda" else ("GFLOP/s", 1)
    import huggingtweets.config as htc

    mixed = {"cpu": "fp32", "cuda": "bf16" if htc.precision().startswith("bf16") else "fp16"}[dev]
    prec = {"ours": htc.precision() if dev == "cuda" else "32-true", "hf": mixed,
            "plain": mixed if dev == "cpu" else f"{mixed} autocast"}
    md = common.table(
        f"Training throughput on {dev}", ["shape", "runner", "tokens/s", "MFU", "× hf",
                                          "step spread"], rows,
        caption=f"{'bf16' if dev == 'cuda' else 'fp32'} matmul peak measured here {peak / div:,.0f}"
                f" {unit} (runs: {', '.join(f'{x / div:,.0f}' for x in peaks)}); precision: ours "
                f"{prec['ours']}, hf {prec['hf']}, plain {prec['plain']}; the runners one after "
                "another; tokens/s from the median step after warm-up; spread = (max - min) / "
                "median of the timed steps")
    g = results.get("gpt2-small", {}).get("runners", {}).get("ours")
    summary = [f"{g['vs_hf']:.2f}x hf, MFU {g['mfu']:.0%}", ">= 1.0x, MFU >= 65%",
               g["vs_hf"] >= 1.0 and g["mfu"] >= 0.65, f"peak {peak:.0f} GFLOP/s"] if g else \
        ["–", ">= 1.0x, MFU >= 65%", False, "gpt2-small not run"]
    out = {"data": desc, "device": dev, "precision": prec, "peak_gflops": peak,
           "peaks_gflops": peaks, "hyperparameters": HP, "shapes": results}
    common.save("throughput", out, summary, [f"{desc}.", "", *md], dev)
    return out


def run_shape(args, shape, handle, tmp, tok_dir) -> dict:
    """Build, run and free each runner in turn; the median step of each."""
    import torch
    import transformers

    n_layer, n_embd, n_head, tokenizer, batch, block = (QUICK if args.quick else SHAPES)[shape]
    steps = args.steps if shape.startswith("gpt2-small") else args.small_steps
    dev = args.device
    batch *= 8 if dev == "cuda" else 1  # a batch that gives a GPU work
    if tokenizer == "gpt2" and tok_dir is None:
        tokenizer = "bpe"  # no GPT-2 files: the fitted BPE of model=scratch
    overrides = common.scratch_overrides(
        handle, tmp, dev, n_layer, n_embd, n_head, block, batch,
        tok_dir if tokenizer == "gpt2" else None) + [
        f"model.scratch.n_positions={max(block, 256)}", f"optim.lr={HP['lr']}",
        f"optim.warmup_ratio={HP['warmup_ratio']}", f"optim.weight_decay={HP['weight_decay']}"]
    total = args.warmup + steps
    shared = {}

    def build_ours():
        with common.silent():
            cfg, dm, module, trainer = common.product_run(
                [*overrides, f"+trainer.max_steps={total}"], tmp / f"run-{shape}")
        shared["init"] = {k: v.clone() for k, v in module.model.state_dict().items()}
        # plain and hf train GPT-2 as transformers builds it (gelu_new)
        shared["config"] = transformers.GPT2Config.from_dict(
            {**module.model.config.to_dict(), "activation_function": "gelu_new"})
        shared["blocks"] = dm.train_set.blocks
        shared["params"] = sum(p.numel() for p in module.model.parameters())
        return lambda: trainer.fit(module, datamodule=dm), bool(cfg.trainer.deterministic)

    def baseline_model():
        model = transformers.GPT2LMHeadModel(shared["config"])
        model.load_state_dict(shared["init"])
        return model.to(dev)

    def build_plain():  # AdamW (torch's defaults, decay on matrices only), warmup + cosine
        model = baseline_model()

        def plain():
            decay = [p for p in model.parameters() if p.dim() >= 2]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                                     {"params": [p for p in model.parameters() if p.dim() < 2],
                                      "weight_decay": 0.0}], lr=HP["lr"])
            sched = transformers.get_cosine_schedule_with_warmup(
                opt, math.ceil(HP["warmup_ratio"] * total), total)
            loader = torch.utils.data.DataLoader(shared["blocks"], batch_size=batch, shuffle=True,
                                                 pin_memory=dev == "cuda")
            model.train()
            epochs = (ids for _ in range(total) for ids in loader)
            for ids in itertools.islice(epochs, total):
                ids = ids.to(dev, non_blocking=True)
                with common.autocast(dev):
                    model(input_ids=ids, labels=ids).loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
        return plain, False

    def build_hf():
        targs = common.hf_args(
            dev, output_dir=str(tmp / f"hf-{shape}"), per_device_train_batch_size=batch,
            max_steps=total, learning_rate=HP["lr"], weight_decay=HP["weight_decay"],
            warmup_steps=math.ceil(HP["warmup_ratio"] * total), lr_scheduler_type="cosine",
            max_grad_norm=1.0, seed=0)
        return transformers.Trainer(model=baseline_model(), args=targs,
                                    train_dataset=common.blocks_dataset(shared["blocks"]),
                                    data_collator=transformers.default_data_collator).train, False

    out = {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "batch": batch, "block": block,
           "tokenizer": tokenizer, "runners": {}}
    for name, build in [("ours", build_ours), ("plain", build_plain), ("hf", build_hf)]:
        body, det = build()
        print(f"{shape} ({batch}x{block}): {name}, {total} steps", flush=True)
        with common.silent():
            r = common.Runner(body, det, seed=0).run(dev)
        timed = r.step_times[args.warmup:]
        med = common.median(timed)
        out["runners"][name] = {"tokens_per_s": batch * block / med, "step_s": med,
                                "spread": (max(timed) - min(timed)) / med if timed else None,
                                "steps_timed": len(timed), "step_times": r.step_times}
        del body, r
        gc.collect()
        if dev == "cuda":
            torch.cuda.empty_cache()
    out.update(vocab=shared["config"].vocab_size, params=shared["params"])
    out["flops_per_token"] = common.train_flops_per_token(n_layer, n_embd, out["vocab"], block)
    return out


if __name__ == "__main__":
    main()
