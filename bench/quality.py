"""(1) Time to quality: our recipe against the original huggingtweets recipe, on the same cleaned
tweets, model, tokenizer and initial weights, one after the other in one process.

The original (huggingtweets-demo.ipynb): the kept tweets shuffled and repeated 4 times into one
text (`<|endoftext|>` around every tweet), cut into 1,024-token blocks, the HF Trainer with batch
1, lr 1.372e-4, cosine without warmup, no evaluation. Ours: train.py's config (model=scratch) built
with the product's own classes, plus early stopping. Quality, for both: the mean token loss of
each held-out tweet (the newest 10%) from the EOS before it, evaluated along both runs with their
clocks stopped. Reported: the wall time until each first reaches the original's final loss.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ORIGINAL = {"block_size": 1024, "lr": 1.372e-4, "epochs": 4}  # the rest: original_trainer


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
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    if args.quick:
        args.posts, args.vocab, args.n_embd, args.n_layer, args.n_head, args.evals = 300, 256, 32, 2, 2, 4
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

        was = model.training
        with torch.no_grad(), common.autocast(self.device):
            total = sum(model.eval()(input_ids=ids, labels=labels).loss.item()
                        * int((labels[:, 1:] != -100).sum()) for ids, labels in self.batches)
        model.train(was)
        return total / self.tokens


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


def original_trainer(model, train_ids, eos: int, out_dir, seed: int, device: str = "cpu"):
    """The original recipe on `model`: (the HF Trainer, its steps). Its text: EOS, then per epoch
    every tweet (shuffled) and EOS, cut into full blocks (TextDataset drops the tail)."""
    import torch
    import transformers

    c = model.config
    block = min(ORIGINAL["block_size"], getattr(c, "n_positions", None) or c.max_position_embeddings)
    rng, tweets, stream = random.Random(seed), list(train_ids), [eos]
    for _ in range(ORIGINAL["epochs"]):
        rng.shuffle(tweets)
        for t in tweets:
            stream += [*map(int, t), eos]
    n = len(stream) // block
    blocks = torch.tensor(stream[: n * block], dtype=torch.long).view(n, block)
    return transformers.Trainer(
        model=model.to(device), train_dataset=common.blocks_dataset(blocks),
        data_collator=transformers.default_data_collator,
        args=common.hf_args(device, output_dir=str(out_dir), per_device_train_batch_size=1,
                            num_train_epochs=1, learning_rate=ORIGINAL["lr"],
                            lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0,
                            max_grad_norm=1.0, seed=seed)), len(blocks)


def race(runs: dict, metric, evals: int, seed: int, device: str = "cpu") -> dict:
    """Run each of `runs` ({name: (body, total steps, model, deterministic)}) in turn, evaluating
    `metric` at `evals` points along it (and early on, where the loss falls fastest) with its
    clock stopped: {name: (Runner, curve [(clock s, loss)], the step of each point)}."""
    out = {}
    for i, (name, (body, total, model_fn, det)) in enumerate(runs.items()):
        points = {max(1, round(total * f)) for f in (0.01, 0.02, 0.04)} | {
            max(1, round(total * k / evals)) for k in range(1, evals + 1)}
        with common.silent():
            r = common.Runner(body, det, seed=seed + i, evaluate=lambda f=model_fn: metric(f()),
                              points=points).run(device)
        out[name] = (r, [(t, loss) for t, loss, _ in r.curve], [s for *_, s in r.curve])
    return out


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import numpy as np
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
    # the ids the datamodule packed (its token cache), one array per tweet
    tokens = {k: np.split(ids, off[1:-1]) for k, (ids, off) in dm._flat_tokens().items()}
    train_ids, val_ids = tokens[f"{handle}/train"], tokens[f"{handle}/val"]
    metric = TweetLoss(val_ids, tok.eos_token_id, args.device)
    n_params = sum(p.numel() for p in module.model.parameters())
    # the original ran GPT-2 as transformers builds it (gelu_new); the fused GELU is one of ours
    orig_model = transformers.GPT2LMHeadModel(transformers.GPT2Config.from_dict(
        {**module.model.config.to_dict(), "activation_function": "gelu_new"}))
    orig_model.load_state_dict(module.model.state_dict())
    hf, orig_total = original_trainer(orig_model, train_ids, tok.eos_token_id, tmp / "orig",
                                      args.seed, args.device)
    our_total = math.ceil(len(dm.train_set) / args.batch) * args.epochs
    init_loss = metric(orig_model)
    print(f"{desc}: {len(train_ids):,} train and {len(val_ids):,} val tweets; original "
          f"{orig_total} steps, ours up to {our_total}", flush=True)
    res = race({"original": (hf.train, orig_total, lambda: orig_model, False),
                "ours": (lambda: trainer.fit(module, datamodule=dm), our_total,
                         lambda: module.model, True)}, metric, args.evals, args.seed, args.device)
    (o, oc, o_steps), (u, uc, u_steps) = res["original"], res["ours"]
    target = oc[-1][1]
    t_orig, t_ours = time_to(oc, target), time_to(uc, target)
    speedup = t_orig / t_ours if t_ours else None
    tok_per_step = {"original": ORIGINAL["block_size"], "ours": args.block * args.batch}
    tps = {name: r.steps * tok_per_step[name] / r.clock for name, (r, _, _) in res.items()}
    eq = {"original_when_ours_ended": curve_at(oc, u.clock),  # the loss of each at equal times
          "ours_best_when_original_ended": min((x for t, x in uc if t <= o.clock), default=None)}
    out = {"data": desc, "posts": len(df), "train_tweets": len(train_ids), "device": args.device,
           "val_tweets": len(val_ids), "val_tokens": metric.tokens, "initial_loss": init_loss,
           "model": {**vars(args), "vocab": len(tok), "params": n_params}, "target_loss": target,
           "speedup_to_target": speedup, "loss_at_equal_time": eq, **{name: {
               "steps": r.steps, "clock_s": r.clock, "tokens_per_s": tps[name], "curve": c,
               "curve_steps": st, "time_to_target_s": time_to(c, target)} for name, (r, c, st)
               in res.items()}}
    detail = ""
    if t_ours:  # tokens each needed to the target: how much is sample efficiency, how much speed
        tok_o = np.interp(t_orig, [0, *(t for t, _ in oc)], [0, *o_steps]) * tok_per_step["original"]
        tok_u = np.interp(t_ours, [0, *(t for t, _ in uc)], [0, *u_steps]) * tok_per_step["ours"]
        out["decomposition"] = {"sample_efficiency_x": tok_o / tok_u,
                                "token_throughput_x": tps["ours"] / tps["original"]}
        detail = (f"{t_ours:.0f} s vs {t_orig:.0f} s; {tps['ours'] / tps['original']:.1f}x tok/s "
                  f"x {tok_o / tok_u:.1f}x fewer tokens")
    md = common.table(
        f"Time to quality — {desc}, newest {len(df):,}; GPT-2 {args.n_layer}x{args.n_embd}, "
        f"{n_params / 1e6:.2f}M params, BPE {len(tok)}",
        ["recipe", "steps", "tokens/s", "run (s)", "final loss", "s to the original's final loss",
         "speed-up"],
        [["original: HF Trainer, 1 x 1024, lr 1.372e-4, cosine, data x4", o.steps,
          tps["original"], o.clock, target, t_orig, 1.0],
         [f"ours: Lightning, {args.batch} x {args.block}, lr {args.lr:g}, warmup + cosine, "
          f"{args.epochs} epochs, early stopping", u.steps, tps["ours"], u.clock, uc[-1][1],
          t_ours, speedup]],
        caption=f"Loss = mean token loss of each held-out tweet from its EOS (initial "
                f"{init_loss:.3f}); at equal time: when ours finished ({u.clock:.0f} s) it was at "
                f"{uc[-1][1]:.3f}, the original at {common.fmt(eq['original_when_ours_ended'])}; "
                f"when the original finished ({o.clock:.0f} s) ours had reached "
                f"{common.fmt(eq['ours_best_when_original_ended'])}")
    common.save("quality", out, [f"{speedup:.1f}x" if speedup else "not reached", ">= 3x",
                                 bool(speedup and speedup >= 3), detail], [
        f"{desc}, newest {len(df):,} posts: {len(train_ids):,} training and {len(val_ids):,} "
        f"held-out tweets ({metric.tokens:,} tokens); both runs from one random init.", "", *md],
        args.device)
    return out


if __name__ == "__main__":
    main()
