"""(1) Time to quality: our recipe against the original huggingtweets recipe, on the same cleaned
tweets, the same model and the same initial weights, interleaved in one process.

The original (huggingtweets-demo.ipynb): the kept tweets shuffled and repeated 4 times into one
text (`<|endoftext|>` before and after every tweet), cut into 1,024-token blocks (TextDataset),
the HF Trainer with batch 1, lr 1.372e-4, a cosine schedule without warmup over one pass of that
text, no evaluation (everything else the Trainer's defaults). Ours: train.py's config
(conf/train.yaml + model=scratch) built with the product's own classes, plus early stopping.

Both start from one state dict and use one tokenizer (the BPE model=scratch fits, or
--gpt2-tokenizer). Quality is one metric for both: the mean token loss of each held-out tweet (the
newest 10%) from the `<|endoftext|>` before it, as generation uses the model, evaluated along both
runs with their clocks stopped. The runs take turns on the machine every --slice seconds, the one
behind (by share of its steps) going next. Reported: the wall time until each first reaches the
original's final loss, and the loss each has at equal times. With --device cuda both train on the
GPU (ours with the product's bf16-mixed, the HF Trainer with bf16) and the metric runs there
under autocast; use --n-layer 12 --n-embd 768 --n-head 12 for GPT-2 small.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ORIGINAL = {"block_size": 1024, "batch_size": 1, "lr": 1.372e-4, "epochs": 4,
            "schedule": "cosine, no warmup", "weight_decay": 0.0, "max_grad_norm": 1.0}


def parse(argv=None):
    p = common.parser(__doc__, device=True)
    p.add_argument("--gpt2-tokenizer", action="store_true", help="GPT-2's 50k BPE for both")
    p.add_argument("--posts", type=int, default=3200, help="newest posts of the timeline")
    p.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary (both recipes)")
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--epochs", type=int, default=4, help="epochs of both recipes")
    p.add_argument("--lr", type=float, default=2e-3, help="our learning rate (scratch model)")
    p.add_argument("--warmup", type=float, default=0.05, help="our warmup share")
    p.add_argument("--block", type=int, default=128, help="our block size")
    p.add_argument("--batch", type=int, default=16, help="our batch size")
    p.add_argument("--patience", type=int, default=2, help="our early stopping (epochs)")
    p.add_argument("--evals", type=int, default=16, help="evaluations along each run")
    p.add_argument("--slice", type=float, default=2.0, help="seconds per turn on the machine")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    if args.quick:
        args.posts, args.vocab, args.n_embd, args.n_layer, args.n_head = 300, 256, 32, 2, 2
        args.evals, args.slice = 4, 0.5
    return args


class TweetLoss:
    """Mean token loss of each held-out tweet from the EOS before it ([EOS] t... [EOS])."""

    def __init__(self, token_lists, eos: int, device: str = "cpu", batch: int = 64):
        import torch

        self.device = device
        seqs = sorted(([eos, *map(int, t), eos] for t in token_lists), key=len)
        self.batches = []
        for i in range(0, len(seqs), batch):
            chunk = seqs[i:i + batch]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), eos, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            for j, s in enumerate(chunk):
                ids[j, :len(s)] = torch.tensor(s)
                labels[j, 1:len(s)] = torch.tensor(s[1:])
            self.batches.append((ids.to(device), labels.to(device)))
        self.tokens = sum(int((lb != -100).sum()) for _, lb in self.batches)

    def __call__(self, model) -> float:
        import torch
        import torch.nn.functional as F

        was = model.training
        model.eval()
        total = 0.0
        with torch.no_grad(), common.autocast(self.device):
            for ids, labels in self.batches:
                logits = model(input_ids=ids).logits[:, :-1].float()
                total += F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                         labels[:, 1:].reshape(-1), ignore_index=-100,
                                         reduction="sum").item()
        model.train(was)
        return total / self.tokens


def original_blocks(token_lists, eos: int, epochs: int, block: int, seed: int):
    """The original's training text: EOS, then per epoch every tweet (shuffled) followed by EOS;
    cut into full blocks (TextDataset drops the tail)."""
    import numpy as np
    import torch

    rng = random.Random(seed)
    tweets = list(token_lists)
    parts = [np.asarray([eos], dtype=np.int64)]
    eos_arr = np.asarray([eos], dtype=np.int64)
    for _ in range(epochs):
        rng.shuffle(tweets)
        for t in tweets:
            parts += [np.asarray(t, dtype=np.int64), eos_arr]
    stream = np.concatenate(parts)
    n = len(stream) // block
    return torch.from_numpy(stream[: n * block].reshape(n, block).copy())


def curve_at(curve: list[tuple[float, float]], t: float) -> float | None:
    """Loss at clock `t`, linear between evaluations; None before the first one."""
    if not curve or t < curve[0][0]:
        return None
    for (t0, l0), (t1, l1) in zip(curve, curve[1:]):
        if t0 <= t <= t1:
            return l0 + (l1 - l0) * (t - t0) / (t1 - t0) if t1 > t0 else l1
    return curve[-1][1]


def time_to(curve: list[tuple[float, float]], target: float) -> float | None:
    """First clock at which the loss reaches `target` (linear between evaluations)."""
    prev = None
    for t, loss in curve:
        if loss <= target:
            if prev is None or prev[1] == loss:
                return t
            (t0, l0) = prev
            return t0 + (t - t0) * (l0 - target) / (l0 - loss)
        prev = (t, loss)
    return None


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import numpy as np
    import torch
    import transformers
    from lightning.pytorch.callbacks import EarlyStopping

    handle, df, desc, tmp = common.workload(args.posts, "quality")

    gpt2 = args.gpt2_tokenizer and common.gpt2_tokenizer(tmp / "gpt2-tokenizer")
    overrides = common.scratch_overrides(
        handle, tmp, args.device, args.n_layer, args.n_embd, args.n_head, args.block, args.batch,
        tmp / "gpt2-tokenizer" if gpt2 else None) + [
        f"model.scratch.vocab_size={args.vocab}", "model.scratch.n_positions=1024",
        f"optim.lr={args.lr}", f"optim.warmup_ratio={args.warmup}", "optim.schedule=cosine",
        f"trainer.max_epochs={args.epochs}", f"seed={args.seed}"]
    stop = EarlyStopping(monitor="val/loss", mode="min", patience=args.patience)
    with common.silent():
        cfg, dm, module, trainer = common.product_run(overrides, tmp / "run", [stop])
    tok = dm.tokenizer
    eos = tok.eos_token_id
    # the ids the datamodule packed (its token cache), one array per tweet
    tokens = {k: np.split(ids, off[1:-1]) for k, (ids, off) in dm._flat_tokens().items()}
    train_ids = tokens[f"{handle}/train"]
    metric = TweetLoss(tokens[f"{handle}/val"], eos, args.device)
    init = {k: v.clone() for k, v in module.model.state_dict().items()}
    n_params = sum(p.numel() for p in module.model.parameters())

    # -- the original recipe -----------------------------------------------------------------
    # the original ran GPT-2 as transformers builds it (gelu_new); the fused GELU is one of ours
    orig_model = transformers.GPT2LMHeadModel(transformers.GPT2Config.from_dict(
        {**module.model.config.to_dict(), "activation_function": "gelu_new"}))
    orig_model.load_state_dict(init)
    orig_model.to(args.device)
    orig_blocks = original_blocks(train_ids, eos, ORIGINAL["epochs"], ORIGINAL["block_size"],
                                  args.seed)
    targs = common.hf_args(
        args.device, output_dir=str(tmp / "orig"), per_device_train_batch_size=1,
        num_train_epochs=1, learning_rate=ORIGINAL["lr"], lr_scheduler_type="cosine",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, seed=args.seed)
    hf = transformers.Trainer(model=orig_model, args=targs, train_dataset=common.Blocks(orig_blocks),
                              data_collator=transformers.default_data_collator)

    # -- runners, with evaluation points along each run --------------------------------------
    our_total = math.ceil(len(dm.train_set) / args.batch) * args.epochs
    orig_total = len(orig_blocks)
    curves = {"ours": [], "original": []}

    def evaluator(name, model_fn, total):
        points = {max(1, round(total * k / args.evals)) for k in range(1, args.evals + 1)}
        points |= {max(1, round(total * f)) for f in (0.01, 0.02, 0.04)}  # the early descent

        def on_step(step):
            if step in points or step == total:
                r = runners[name]
                curves[name].append((r.clock, metric(model_fn()), step))
        return on_step

    runners = {
        "original": common.Runner("original", hf.train, orig_total,
                                  on_step=evaluator("original", lambda: orig_model, orig_total)),
        "ours": common.Runner("ours", lambda: trainer.fit(module, datamodule=dm), our_total,
                              deterministic=True,
                              on_step=evaluator("ours", lambda: module.model, our_total)),
    }
    for i, r in enumerate(runners.values()):
        r._rng = torch.Generator().manual_seed(args.seed + i).get_state()
    init_loss = metric(orig_model)
    print(f"data: {desc}; newest {len(df):,} posts -> {len(train_ids):,} train tweets, "
          f"{len(tokens[f'{handle}/val']):,} val tweets ({metric.tokens:,} tokens); "
          f"model {n_params / 1e6:.2f}M params; initial loss {init_loss:.3f}")
    print(f"original: {orig_total} steps of 1 x {ORIGINAL['block_size']}; ours: up to "
          f"{our_total} steps of {args.batch} x {args.block}")
    with common.silent():
        common.Baton(list(runners.values()), slice_s=args.slice, policy="progress",
                     device=args.device).run()

    # -- results ------------------------------------------------------------------------------
    o, u = runners["original"], runners["ours"]
    oc = [(t, loss) for t, loss, _ in curves["original"]]
    uc = [(t, loss) for t, loss, _ in curves["ours"]]
    target = oc[-1][1]
    t_orig, t_ours = time_to(oc, target), time_to(uc, target)
    speedup = (t_orig / t_ours) if t_ours else None
    best_ours = min(loss for _, loss in uc)
    # tokens each needed to reach the target: how much is sample efficiency, how much speed
    tok_per_step = {"original": ORIGINAL["block_size"], "ours": args.block * args.batch}
    tps = {"original": o.steps * tok_per_step["original"] / o.clock,
           "ours": u.steps * tok_per_step["ours"] / u.clock}

    def steps_at(name, t):
        pts = [(tt, s) for tt, _, s in curves[name]]
        for (t0, s0), (t1, s1) in zip(pts, pts[1:]):
            if t0 <= t <= t1:
                return s0 + (s1 - s0) * (t - t0) / (t1 - t0) if t1 > t0 else s1
        return pts[-1][1] if t >= pts[-1][0] else pts[0][1] * t / pts[0][0]

    res = {
        "data": desc, "posts": len(df), "train_tweets": len(train_ids),
        "val_tweets": len(tokens[f"{handle}/val"]), "val_tokens": metric.tokens,
        "model": {"n_layer": args.n_layer, "n_embd": args.n_embd, "n_head": args.n_head,
                  "vocab": len(tok), "n_positions": 1024, "params": n_params},
        "original_recipe": ORIGINAL, "our_recipe": {
            "block_size": args.block, "batch_size": args.batch, "lr": args.lr,
            "warmup_ratio": args.warmup, "schedule": "cosine", "weight_decay": 0.01,
            "max_epochs": args.epochs, "early_stopping_patience": args.patience,
            "trainer": "conf/trainer/default.yaml (fp32, clip 1.0, deterministic, val+ckpt/epoch)",
        },
        "initial_loss": init_loss, "target_loss": target,
        "original": {"steps": o.steps, "clock_s": o.clock, "tokens_per_s": tps["original"],
                     "time_to_target_s": t_orig, "curve": curves["original"]},
        "ours": {"steps": u.steps, "clock_s": u.clock, "tokens_per_s": tps["ours"],
                 "time_to_target_s": t_ours, "best_loss": best_ours,
                 "stopped_early": u.steps < our_total, "curve": curves["ours"]},
        "speedup_to_target": speedup,
        "loss_at_equal_time": {
            "t_ours_end_s": u.clock, "ours": uc[-1][1], "original": curve_at(oc, u.clock),
            "t_original_end_s": o.clock, "original_final": target,
            "ours_best_by_then": min(loss for t, loss in uc if t <= o.clock),
        },
        "device": args.device, "target": ">= 3x faster to the original's final val loss",
        "met": bool(speedup and speedup >= 3),
    }
    if t_ours:
        tok_o = steps_at("original", t_orig) * tok_per_step["original"]
        tok_u = steps_at("ours", t_ours) * tok_per_step["ours"]
        res["decomposition"] = {
            "tokens_to_target": {"original": tok_o, "ours": tok_u},
            "sample_efficiency_x": tok_o / tok_u,  # fewer tokens needed
            "token_throughput_x": tps["ours"] / tps["original"],  # faster per token
        }

    common.table(
        f"Time to quality — {desc}, newest {len(df):,}; GPT-2 {args.n_layer}x{args.n_embd}, "
        f"{n_params / 1e6:.1f}M params, BPE {len(tok)}",
        ["recipe", "steps", "tok/s", "wall s (run)", "final loss", "s to target", "speed-up"],
        [["original (HF Trainer, 1x1024, lr 1.372e-4)", o.steps, tps["original"], o.clock,
          target, t_orig, 1.0],
         [f"ours (Lightning, {args.batch}x{args.block}, lr {args.lr:g})", u.steps, tps["ours"],
          u.clock, uc[-1][1], t_ours, speedup]],
        caption=f"target = the original's final loss {target:.3f} (initial {init_loss:.3f}); "
                f"at t = {u.clock:.0f} s (ours done) the original is at "
                f"{common.fmt(res['loss_at_equal_time']['original'])}",
    )
    common.save("quality", res, args.device)
    return res


if __name__ == "__main__":
    main()
