"""(5) Generation: tokens/s of generate.py's sampler (what `python generate.py` runs, copy check
included) against `transformers.pipeline("text-generation")`, once per prompt and with the prompts
batched (its strongest use), on one model directory written by the product's exporter (random
weights, so samples run to the token limit) and generate.py's sampling defaults. New tokens are
counted at model.generate, up to each sample's first EOS; the samplers alternate round by round.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PROMPTS = ["My dream is", "I think that", ""]
SAMPLING = {"n": 5, "temperature": 1.0, "top_p": 0.95, "top_k": 0, "max_new_tokens": 60}


def parse(argv=None):
    p = common.parser(__doc__, device=True)
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of each")
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-embd", type=int, default=384)
    p.add_argument("--n-head", type=int, default=6)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.n_layer, args.n_embd, args.n_head = 1, 1, 32, 2
        SAMPLING.update(n=2, max_new_tokens=8)
    return args


class Counter:
    """Counts the new tokens of every model.generate call (up to and including the first EOS)."""

    def __init__(self, model, eos: int):
        self.tokens, real = 0, model.generate

        def generate(*a, **k):
            out = real(*a, **k)
            seqs = out.sequences if hasattr(out, "sequences") else out
            for row in seqs[:, k.get("input_ids", a[0] if a else None).shape[1]:]:
                hit = (row == eos).nonzero()
                self.tokens += int(hit[0]) + 1 if len(hit) else len(row)
            return out
        model.generate = generate


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import torch
    import transformers

    from huggingtweets.publish import export
    from huggingtweets.publish.generate import Generator

    handle, df, desc, tmp = common.workload(3200, "generation")
    overrides = common.scratch_overrides(handle, tmp, "cpu", args.n_layer, args.n_embd, args.n_head)
    with common.silent():
        cfg, dm, module, _ = common.product_run(overrides, tmp / "run")
        model_dir = export.export_model(
            module, dm, tmp / "run" / "model", {"val/loss": 0.0, "val/ppl": 1.0},
            {"lr": cfg.optim.lr, "epochs": 0, "steps": 0, "seed": cfg.seed,
             "block_size": cfg.data.block_size, "batch_size": cfg.data.batch_size})
    n_params, vocab = sum(p.numel() for p in module.model.parameters()), len(module.tokenizer)
    del module, dm

    gen = Generator.from_dir(model_dir)  # what generate.py loads (copy index: auto)
    gen.model.to(args.device)
    pipe = transformers.pipeline("text-generation", model=str(model_dir), device=args.device)
    eos = gen.tok.eos_token_id
    counters = {"generate.py": Counter(gen.model, eos), "pipeline": Counter(pipe.model, eos)}
    counters["pipeline, prompts batched (batch_size=3)"] = counters["pipeline"]  # one model

    pipe.tokenizer.pad_token = pipe.tokenizer.pad_token or pipe.tokenizer.eos_token  # batching
    kw = {"do_sample": True, "num_return_sequences": SAMPLING["n"], "max_length": None,
          **{k: SAMPLING[k] for k in ("top_p", "top_k", "temperature", "max_new_tokens")}}

    def run_pipe(prompts, **extra):
        torch.manual_seed(0)
        out = pipe(prompts, **kw, **extra)
        return [x for r in out for x in r] if isinstance(prompts, list) else out

    calls = {"generate.py": lambda: gen.sample(PROMPTS, seed=0, **SAMPLING),
             "pipeline": lambda: [s for p in PROMPTS for s in run_pipe(p)],
             "pipeline, prompts batched (batch_size=3)": lambda: run_pipe(PROMPTS, batch_size=3)}
    times, tokens, samples = ({k: 0 for k in calls} for _ in range(3))
    for fn in calls.values():  # warm-up, untimed
        fn()
    for rnd in range(args.rounds):
        for name in (list(calls) if rnd % 2 == 0 else list(calls)[::-1]):
            before = counters[name].tokens
            t = time.perf_counter()
            out = calls[name]()
            times[name] += time.perf_counter() - t
            tokens[name] += counters[name].tokens - before
            samples[name] += len(out)
    rate = {k: tokens[k] / times[k] for k in calls}
    v = {k: rate[k] / rate["pipeline"] for k in calls}
    rows = [[k, samples[k], tokens[k], times[k], rate[k], v[k]] for k in calls]
    md = common.table(
        f"Generation — GPT-2 {args.n_layer}x{args.n_embd}, vocab {vocab}, "
        f"{n_params / 1e6:.1f}M params; {len(PROMPTS)} prompts x {SAMPLING['n']} samples, "
        f"top_p 0.95, <= {SAMPLING['max_new_tokens']} new tokens",
        ["sampler", "samples", "new tokens", "s", "tokens/s", "× pipeline"], rows,
        caption=f"{args.rounds} alternating rounds after a warm-up")
    model = {"n_layer": args.n_layer, "n_embd": args.n_embd, "vocab": vocab, "params": n_params}
    out = {"data": desc, "model": model, "sampling": {**SAMPLING, "prompts": PROMPTS},
           "rounds": args.rounds, "seconds": times, "tokens": tokens, "samples": samples,
           "tokens_per_s": rate, "vs_pipeline": v, "device": args.device}
    summary = [f"{v['generate.py']:.2f}x", ">= 1.0x", v["generate.py"] >= 1.0,
               f"{rate['generate.py']:.0f} vs {rate['pipeline']:.0f} tok/s; pipeline with the "
               f"prompts batched {v['pipeline, prompts batched (batch_size=3)']:.2f}x"]
    common.save("generation", out, summary, [
        "The model exported by the product (random weights); generate.py's sampling defaults.",
        "", *md], args.device)
    return out


if __name__ == "__main__":
    main()
