"""(6) LoRA against full fine-tuning: training tokens/s and peak memory, on the GPT-2-small shape
or (--base gemma3) on the real Gemma 3 270M base with its preset, with the memory levers on and off.

Every mode is the product's own training step (fp32, CPU); LoRA adds `model.lora.r=8` (c_attn) to
GPT-2; on gemma3, `model=gemma3` is LoRA, full is `model.lora.r=0`. Each mode runs in a fresh process,
the modes taking turns --rounds times; tokens/s = batch x block / the median step after --warmup
steps, peak memory = the process's max RSS. Ratios: LoRA / full, each with the preset's levers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import yaml  # noqa: E402

# gemma3's modes: its preset, full fine-tuning with the same levers, each lever switched off
FULL = ["model.lora.r=0", "optim.lr=5e-5"]
LEVERS = {"full": FULL, "lora": [],
          "full, whole-logits loss": [*FULL, "model.loss_chunk=0"],
          "lora, whole-logits loss": ["model.loss_chunk=0"],
          "full, no gradient checkpointing": [*FULL, "model.gradient_checkpointing=false"],
          "lora, no gradient checkpointing": ["model.gradient_checkpointing=false"],
          "lora r=16, dropout 0.05": ["model.lora.r=16", "model.lora.alpha=32", "model.lora.dropout=0.05"],
          "lora, 8 x 128 tokens a step": ["data.block_size=128", "data.batch_size=8"]}


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=2, help="turns of each mode (fresh processes)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps per process")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--base", choices=["gpt2-shape", "gemma3"], default="gpt2-shape")
    p.add_argument("--child", choices=list(LEVERS), help=argparse.SUPPRESS)  # one mode, here
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.steps = 1, 1, 2
    return args


def child(args) -> dict:
    """One mode in this process: the median step time and the peak RSS."""
    handle, _, _, tmp = common.workload(3200, "lora")
    tok_dir = tmp / "gpt2-tokenizer"
    shape = (2, 128, 2) if args.quick else (12, 768, 12)  # n_layer, n_embd, n_head
    ov = common.scratch_overrides(handle, tmp, "cpu", *shape, block=128, batch=8,
                                  tokenizer=tok_dir if common.gpt2_tokenizer(tok_dir) else None)
    if args.base == "gemma3":  # the converted base from data/cache (make env-gemma3; first use converts)
        ov = [f"user={handle}", "model=gemma3", f"data.data_dir={tmp / 'data'}",
              f"model.cache_dir={common.ROOT / 'data' / 'cache'}", *LEVERS[args.child]]
    ov += ["eval=none", "export=false", "trainer.max_epochs=1", "+trainer.enable_checkpointing=false",
           f"+trainer.limit_train_batches={args.warmup + args.steps}", "+trainer.limit_val_batches=0",
           "~trainer.callbacks.checkpoint"]
    if args.child == "lora" and args.base != "gemma3":
        ov.append(f"+model.lora={{r: {args.rank}, alpha: {2 * args.rank}, dropout: 0.0}}")
    cfg, dm, module, trainer = common.product_run(ov, tmp / "run")
    run = common.Runner(lambda: trainer.fit(module, datamodule=dm)).run()
    trainable = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.model.parameters())
    return {"mode": args.child, "step_s": common.median(run.step_times[args.warmup:]),
            "tokens_per_step": dm.batch_size * dm.block_size, "peak_rss_mb": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, "trainable": trainable, "params": total}


def main(argv=None) -> int:
    args = common.start(parse, argv)
    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return 0
    modes = list(LEVERS) if args.base == "gemma3" else ["full", "lora"]
    runs = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            cmd = [sys.executable, __file__, "--child", mode, "--warmup", str(args.warmup),
                   "--steps", str(args.steps), "--rank", str(args.rank), "--base", args.base] + \
                  (["--quick"] if args.quick else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            res = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            runs[mode].append(res)
            print(f"{mode}: {res['tokens_per_step'] / res['step_s']:.0f} tokens/s, "
                  f"peak {res['peak_rss_mb']:.0f} MB", flush=True)
    best = {m: {"tokens_per_s": max(x["tokens_per_step"] / x["step_s"] for x in rs),
                "peak_rss_mb": min(x["peak_rss_mb"] for x in rs),
                "trainable": rs[0]["trainable"], "params": rs[0]["params"]} for m, rs in runs.items()}
    ratios = {"tokens_per_s": best["lora"]["tokens_per_s"] / best["full"]["tokens_per_s"],
              "peak_memory": best["lora"]["peak_rss_mb"] / best["full"]["peak_rss_mb"]}
    gemma3 = yaml.safe_load((common.ROOT / "conf/model/gemma3.yaml").read_text())  # as it is now
    shape = "Gemma 3 270M, its preset, batch {batch_size} x {block_size}".format(**gemma3["data"]) if args.base == "gemma3" else "GPT-2-small shape, batch 8 x 128"
    md = common.table(f"LoRA vs full fine-tuning ({shape}, fp32)",
                      ["mode", "trainable params", "tokens/s", "peak RSS MB"],
                      [[m, f"{b['trainable']:,} of {b['params']:,}", b["tokens_per_s"],
                        b["peak_rss_mb"]] for m, b in best.items()],
                      caption=f"LoRA/full: {ratios['tokens_per_s']:.2f}x tokens/s (target >= "
                              f"1.4x), {ratios['peak_memory']:.2f}x peak memory (target <= 0.6x)")
    lora = "r={r}, {target_modules}, LoRA dropout {dropout}".format(**gemma3["model"]["lora"])
    summary = [f"{ratios['tokens_per_s']:.2f}x tok/s, {ratios['peak_memory']:.2f}x memory",
               ">= 1.4x, <= 0.6x", ratios["tokens_per_s"] >= 1.4 and ratios["peak_memory"] <= 0.6,
               (f"the preset ({lora}); " if args.base == "gemma3" else f"r={args.rank}; ") + ", ".join(f"{m} {b['tokens_per_s']:.0f} tok/s, "
                                              f"{b['peak_rss_mb']:.0f} MB" for m, b in best.items())]
    common.save("lora" if args.base != "gemma3" else "lora-gemma3",
                {"runs": runs, "best": best, "ratios": ratios, "rank": args.rank,
                 "base": args.base, "quick": bool(args.quick)}, summary, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
