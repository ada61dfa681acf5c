"""Time to quality from a *pretrained* start: the original recipe vs ours (full) vs ours (LoRA).

No pretrained weights can be downloaded on this project's machines, so the script builds a
stand-in once: a small GPT-2 (--n-layer x --n-embd, a BPE fitted to the corpus) pretrained with
the product's own training on the benchmark corpus (the largest real timeline, ~30k posts; the
demo personas without ../shared/data), cached under outputs/bench-cache/. It then fine-tunes that
base on another timeline (--target: the smithjd archive, or a demo persona without real data):

- original: the original huggingtweets recipe (quality.py: the HF Trainer, batch 1 x 1024, lr
  1.372e-4, cosine without warmup, the kept tweets repeated 4 times);
- ours (full): `model=gpt2 model.name_or_path=<base>` as train.py runs it (its preset recipe);
- ours (LoRA): the same with `model.lora.r=8` and LoRA's rate (--lora-lr).

All three start from the same weights and take turns on the machine (common.Baton); quality is
quality.py's metric (mean token loss of each held-out tweet from its EOS). Reported: the time each
needs to reach the original's final loss, and the ratios.

    python bench/pretrained.py            # pretrain (cached) + three fine-tunes
    python bench/pretrained.py --quick    # tiny sizes, a smoke test
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from quality import ORIGINAL, TweetLoss, original_blocks, time_to  # noqa: E402

CACHE = common.ROOT / "outputs" / "bench-cache"


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--target", default="smithjd", help="fine-tuning timeline (bench/recipe.py's)")
    p.add_argument("--lora-lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (all three)")
    p.add_argument("--evals", type=int, default=12)
    p.add_argument("--slice", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    if args.quick:
        args.n_layer, args.n_embd, args.n_head, args.vocab = 2, 64, 2, 512
        args.pretrain_epochs, args.epochs, args.evals, args.slice = 1, 1, 3, 0.5
    return args


def pretrain(args) -> Path:
    """The stand-in base model dir (model + tokenizer), trained once and cached by its settings."""
    key = f"{args.n_layer}x{args.n_embd}-v{args.vocab}-e{args.pretrain_epochs}" + \
          ("-real" if common.have_real_data() else "-demo") + ("-quick" if args.quick else "")
    out = CACHE / f"pretrained-{key}"
    if (out / "config.json").exists():
        return out
    handle, df, desc, tmp = common.workload(2000 if args.quick else None, "pretrain")
    ov = common.scratch_overrides(handle, tmp, n_layer=args.n_layer, n_embd=args.n_embd,
                                  n_head=args.n_head) + [
        f"model.scratch.vocab_size={args.vocab}", "model.scratch.dropout=0.1",
        f"trainer.max_epochs={args.pretrain_epochs}", "eval=none", "export=false"]
    print(f"pretraining the stand-in base on {desc} ({args.pretrain_epochs} epochs)...", flush=True)
    with common.silent():
        cfg, dm, module, trainer = common.product_run(ov, tmp / "run")
        trainer.fit(module, datamodule=dm)
    out.parent.mkdir(parents=True, exist_ok=True)
    module.model.save_pretrained(out)
    module.tokenizer.save_pretrained(out)
    return out


def target_posts(args, tmp):
    """(handle, data dir) of the fine-tuning timeline, imported as the product does."""
    if common.have_real_data():
        import recipe

        recipe.import_timelines(tmp / "data", [args.target])
        return args.target
    from huggingtweets.ingest import posts
    from huggingtweets.ingest.sources import demo

    posts.write_posts(tmp / "data", "demo_ada", demo.generate("demo_ada", n=1500), source="demo")
    return "demo_ada"


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import tempfile

    import numpy as np
    import torch
    import transformers

    base = pretrain(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pretrained-"))
    handle = target_posts(args, tmp)
    common_ov = [f"user={handle}", "model=gpt2", f"model.name_or_path={base}",
                 f"data.data_dir={tmp / 'data'}", "trainer.accelerator=cpu", "eval=none",
                 "export=false", f"trainer.max_epochs={args.epochs}", f"seed={args.seed}",
                 "~trainer.callbacks.checkpoint", "+trainer.enable_checkpointing=false"]
    with common.silent():
        _, dm, full, full_trainer = common.product_run(common_ov, tmp / "full")
        _, dm_l, lora, lora_trainer = common.product_run(
            common_ov + ["model.lora.r=8", f"optim.lr={args.lora_lr}"], tmp / "lora")
    eos = dm.tokenizer.eos_token_id
    tokens = {k: np.split(ids, off[1:-1]) for k, (ids, off) in dm._flat_tokens().items()}
    metric = TweetLoss(tokens[f"{handle}/val"], eos)
    orig_model = transformers.AutoModelForCausalLM.from_pretrained(base)
    blocks = original_blocks(tokens[f"{handle}/train"], eos, ORIGINAL["epochs"],
                             min(ORIGINAL["block_size"], orig_model.config.n_positions), args.seed)
    hf = transformers.Trainer(
        model=orig_model, train_dataset=common.Blocks(blocks),
        data_collator=transformers.default_data_collator,
        args=common.hf_args("cpu", output_dir=str(tmp / "orig"), per_device_train_batch_size=1,
                            num_train_epochs=1, learning_rate=ORIGINAL["lr"],
                            lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0,
                            max_grad_norm=1.0, seed=args.seed))
    totals = {"original": len(blocks),
              "ours (full)": math.ceil(len(dm.train_set) / dm.batch_size) * args.epochs,
              "ours (LoRA)": math.ceil(len(dm_l.train_set) / dm_l.batch_size) * args.epochs}
    models = {"original": lambda: orig_model, "ours (full)": lambda: full.model,
              "ours (LoRA)": lambda: lora.model}
    curves = {name: [] for name in totals}

    def evaluator(name):
        points = {max(1, round(totals[name] * k / args.evals)) for k in range(1, args.evals + 1)}

        def on_step(step):
            if step in points or step == totals[name]:
                curves[name].append((runners[name].clock, metric(models[name]())))
        return on_step

    bodies = {"original": hf.train,
              "ours (full)": lambda: full_trainer.fit(full, datamodule=dm),
              "ours (LoRA)": lambda: lora_trainer.fit(lora, datamodule=dm_l)}
    runners = {n: common.Runner(n, bodies[n], totals[n], deterministic=n != "original",
                                on_step=evaluator(n)) for n in totals}
    for i, r in enumerate(runners.values()):
        r._rng = torch.Generator().manual_seed(args.seed + i).get_state()
    start = metric(orig_model)
    with common.silent():
        common.Baton(list(runners.values()), slice_s=args.slice, policy="progress").run()
    target = curves["original"][-1][1]
    t_orig = time_to(curves["original"], target)
    rows, res = [], {"base": str(base.name), "target_timeline": handle, "initial_loss": start,
                     "target_loss": target, "runs": {}}
    for name, r in runners.items():
        t = time_to(curves[name], target)
        res["runs"][name] = {"steps": r.steps, "clock_s": r.clock, "final_loss": curves[name][-1][1],
                             "best_loss": min(loss for _, loss in curves[name]),
                             "time_to_target_s": t, "speedup": t_orig / t if t else None,
                             "curve": curves[name]}
        rows.append([name, r.steps, r.clock, curves[name][-1][1], t, t_orig / t if t else None])
    common.table(f"Time to quality from a pretrained start ({base.name}) on @{handle}",
                 ["recipe", "steps", "wall s", "final loss", "s to target", "speed-up"], rows,
                 caption=f"target = the original recipe's final held-out loss {target:.3f} "
                         f"(pretrained start: {start:.3f})")
    common.save("pretrained", res)
    return res


if __name__ == "__main__":
    main()
