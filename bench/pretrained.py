"""(7) Time to quality from a *pretrained* start: the original recipe vs ours (full) vs ours (LoRA).

No pretrained weights can be downloaded on this project's machines, so `pretrain` builds a
stand-in once: a small GPT-2 pretrained with the product's own training on the benchmark corpus,
cached under outputs/bench-cache/. `main` fine-tunes that base on another timeline (--target: an
X archive in ../shared/data/archives, or a demo persona without real data) with the original
recipe (quality.py), `model=gpt2 model.name_or_path=<base>` as train.py runs it (ours, full) and
the same with `model.lora.r=8` at --lora-lr (ours, LoRA): one after another from the same weights
(quality.race), with quality.py's metric. Reported: the time each needs to reach the original's
final loss, against the original's whole run (its model exists only then) and against the time it
first passed that loss (the same when it does not overfit). --base gemma3: the real Gemma 3 270M (the gemma3 extra) instead of the stand-in, ours
= `model=gemma3` as it is (LoRA, 1 epoch), on the newest --posts of the target to keep it to minutes.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from quality import TweetLoss, original_trainer, race, time_to  # noqa: E402

CACHE = common.ROOT / "outputs" / "bench-cache"


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--target", default="smithjd", help="../shared/data/archives/<target>")
    p.add_argument("--lora-lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (all three)")
    p.add_argument("--evals", type=int, default=12)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--base", choices=["stand-in", "gemma3"], default="stand-in")
    p.add_argument("--posts", type=int, default=0, help="the target's newest N posts (0: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.n_layer, args.n_embd, args.n_head, args.vocab = 2, 64, 2, 512
        args.pretrain_epochs, args.epochs, args.evals = 1, 1, 3
    return args


def pretrain(args) -> Path:
    """The stand-in base model dir (model + tokenizer), trained once and cached by its settings."""
    key = f"{args.n_layer}x{args.n_embd}-v{args.vocab}-e{args.pretrain_epochs}" + \
          ("-real" if common.have_real_data() else "-demo") + ("-quick" if args.quick else "")
    out = CACHE / f"pretrained-{key}"
    if (out / "config.json").exists():
        return out
    handle, df, desc, tmp = common.workload(2000 if args.quick else None, "pretrain")
    ov = common.scratch_overrides(handle, tmp, "cpu", args.n_layer, args.n_embd, args.n_head) + [
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


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import tempfile

    import numpy as np
    import transformers

    from huggingtweets.ingest import posts
    from huggingtweets.ingest.sources import demo
    from huggingtweets.ingest.sources.archive import read_archive
    from huggingtweets.train import gguf

    real = args.base == "gemma3"  # on the real base: >= 3x sooner, and a lower final loss
    cache = common.ROOT / "data" / "cache"  # where train.py keeps the converted base
    base = Path(gguf.resolve("gguf:gemma3-270m", cache)) if real else pretrain(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pretrained-"))
    archive = common.SHARED / "archives" / args.target / "tweets.js"  # the fine-tuning timeline
    handle = args.target if archive.exists() else "demo_ada"
    df = read_archive(str(archive), handle=handle) if archive.exists() else demo.generate(handle, n=1500)
    if args.posts:
        df = df.sort_values("created_at").iloc[-args.posts:].reset_index(drop=True)
    posts.write_posts(tmp / "data", handle, df, source="bench")
    common_ov = [f"user={handle}", f"data.data_dir={tmp / 'data'}", "trainer.accelerator=cpu",
                 "eval=none", "export=false", f"seed={args.seed}", "~trainer.callbacks.checkpoint",
                 "+trainer.enable_checkpointing=false"]
    if real:  # the preset as a user gets it
        recipes = {"ours (the preset)": ["model=gemma3", f"model.cache_dir={cache}"]}
    else:
        common_ov += ["model=gpt2", f"model.name_or_path={base}", f"trainer.max_epochs={args.epochs}"]
        recipes = {"ours (full)": [], "ours (LoRA)": ["model.lora.r=8", f"optim.lr={args.lora_lr}"]}
    runs = {}
    for name, extra in recipes.items():
        with common.silent():
            cfg, dm, module, trainer = common.product_run(common_ov + extra, tmp / name[6:10])
        runs[name] = (lambda t=trainer, m=module, d=dm: t.fit(m, datamodule=d),
                      math.ceil(len(dm.train_set) / dm.batch_size) * cfg.trainer.max_epochs,
                      lambda m=module: m.model, True)
    eos = dm.tokenizer.eos_token_id
    tokens = {k: np.split(ids, off[1:-1]) for k, (ids, off) in dm._flat_tokens().items()}
    metric = TweetLoss(tokens[f"{handle}/val"], eos)
    orig_model = transformers.AutoModelForCausalLM.from_pretrained(base)
    hf, total = original_trainer(orig_model, tokens[f"{handle}/train"], eos, tmp / "orig", args.seed)
    start = metric(orig_model)
    res = race({"original": (hf.train, total, lambda: orig_model, False), **runs}, metric,
               args.evals, args.seed)
    # the original runs its fixed epochs: its model exists after its whole run, at `target`; if
    # it overfits, it passed that loss on the way (t_pass), which is said too
    target = res["original"][1][-1][1]
    t_orig, t_pass = res["original"][0].clock, time_to(res["original"][1], target)
    rows, out = [], {"base": str(base.name), "target_timeline": handle, "initial_loss": start,
                     "target_loss": target, "original_passed_target_s": t_pass, "runs": {}}
    for name, (r, curve, _) in res.items():
        t = time_to(curve, target) if name != "original" else t_orig
        x = out["runs"][name] = {"steps": r.steps, "clock_s": r.clock, "final_loss": curve[-1][1],
                                 "best_loss": min(loss for _, loss in curve),
                                 "time_to_target_s": t, "speedup": t_orig / t if t else None,
                                 "speedup_vs_pass": t_pass / t if t else None, "curve": curve}
        rows.append([name, r.steps, r.clock, x["final_loss"], x["best_loss"], t, x["speedup"],
                     x["speedup_vs_pass"]])
    md = common.table(f"Time to quality from a pretrained start ({base.name}) on @{handle}",
                      ["recipe", "steps", "wall s", "final loss", "best loss", "s to target",
                       "speed-up", "vs its pass"], rows,
                      caption=f"target = the original recipe's final held-out loss {target:.3f} "
                              f"(pretrained start: {start:.3f}); speed-up = the original's run "
                              f"({t_orig:.0f} s) / the time to the target; vs its pass = the time "
                              f"the original first passed the target ({t_pass:.1f} s) / the same")
    ours = {n: x for n, x in out["runs"].items() if n != "original"}
    summary = [", ".join(f"{n} {x['speedup']:.1f}x ({x['speedup_vs_pass']:.1f}x its pass)"
                         if x["speedup"] else f"{n} not reached" for n, x in ours.items()),
               ">= 3x sooner, lower final loss" if real else "faster than the original",
               all(x["speedup"] and x["speedup"] >= (3 if real else 1) and
                   (not real or x["final_loss"] < target) for x in ours.values()),
               f"target loss {target:.3f} on @{handle}"]
    made = "dequantized from the Q4_K_M GGUF" if real else "the stand-in, pretrained on the benchmark corpus"
    common.save("pretrained-gemma3" if real else "pretrained", out, summary, [
        f"Base: `{base.name}` ({made}); fine-tuned on @{handle}"
        + (f", newest {args.posts} posts." if args.posts else "."), "", *md])
    return out


if __name__ == "__main__":
    main()
