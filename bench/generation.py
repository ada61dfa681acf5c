"""(5) Generation: tokens/s of generate.py's sampler (huggingtweets.publish.generate.Generator,
what `python generate.py` runs) against `transformers.pipeline("text-generation")` on the same
exported model directory and the same sampling settings (generate.py's defaults: 5 samples for
each of its 3 prompts, nucleus top_p 0.95, top_k 0, temperature 1, at most 60 new tokens).

The model directory is written by the product's exporter (export_model, with the copy-check index
beside it) from a GPT-2-shaped model (6 x 384 with the BPE model=scratch fits; --gpt2-tokenizer for
GPT-2's 50k) with random weights, so the samples run to the token limit and every sampler generates
about the same number of tokens. Generated tokens are counted at model.generate, up to each
sample's first EOS. The samplers alternate, round after round, in one process, each seeded the same:

- generate.py: the sampler as generate.py runs it (copy check and redraws, cut at the first newline);
- generate.py, no copy check: filter_copies=false (the sampling alone);
- generate.py, one call per prompt (before): the sampler as it was before it batched prompts;
- pipeline: pipeline(model=dir) called once per prompt with num_return_sequences=5;
- pipeline, prompts batched: all prompts at once with batch_size=3 (pad = EOS), its strongest use.
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
    p.add_argument("--gpt2-tokenizer", action="store_true",
                   help="GPT-2's 50k vocabulary instead of the fitted BPE (4,096) of model=scratch")
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
        self.tokens, self.calls = 0, 0
        real = model.generate

        def generate(*a, **k):
            ids = k.get("input_ids", a[0] if a else None)
            out = real(*a, **k)
            seqs = out.sequences if hasattr(out, "sequences") else out
            new = seqs[:, ids.shape[1]:]
            for row in new:
                hit = (row == eos).nonzero()
                self.tokens += int(hit[0]) + 1 if len(hit) else len(row)
            self.calls += 1
            return out

        model.generate = generate


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import torch
    import transformers

    from huggingtweets.publish import export
    from huggingtweets.publish.generate import Generator

    handle, df, desc, tmp = common.workload(3200, "generation")
    gpt2 = args.gpt2_tokenizer and common.gpt2_tokenizer(tmp / "gpt2-tokenizer")
    overrides = common.scratch_overrides(handle, tmp, "cpu", args.n_layer, args.n_embd,
                                         args.n_head, tokenizer=tmp / "gpt2-tokenizer" if gpt2 else None)
    with common.silent():
        cfg, dm, module, _ = common.product_run(overrides, tmp / "run")
        model_dir = export.export_model(
            module, dm, tmp / "run" / "model", {"val/loss": 0.0, "val/ppl": 1.0},
            {"lr": cfg.optim.lr, "epochs": 0, "steps": 0, "seed": cfg.seed,
             "block_size": cfg.data.block_size, "batch_size": cfg.data.batch_size})
    n_params = sum(p.numel() for p in module.model.parameters())
    vocab = len(module.tokenizer)
    del module, dm

    t = time.perf_counter()
    gen = Generator.from_dir(model_dir)  # what generate.py loads (copy index: auto)
    gen.model.to(args.device)
    load_gen = time.perf_counter() - t
    t = time.perf_counter()
    pipe = transformers.pipeline("text-generation", model=str(model_dir), device=args.device)
    load_pipe = time.perf_counter() - t
    eos = gen.tok.eos_token_id
    counters = {"generate.py": Counter(gen.model, eos), "pipeline": Counter(pipe.model, eos)}
    counters["generate.py, no copy check"] = counters["generate.py"]  # same model object

    def run_gen(filter_copies):
        return gen.sample(PROMPTS, seed=0, filter_copies=filter_copies, **SAMPLING)

    def run_pipe():
        out = []
        for prompt in PROMPTS:
            torch.manual_seed(0)
            out += pipe(prompt, do_sample=True, num_return_sequences=SAMPLING["n"],
                        top_p=SAMPLING["top_p"], top_k=SAMPLING["top_k"],
                        temperature=SAMPLING["temperature"],
                        max_new_tokens=SAMPLING["max_new_tokens"], max_length=None)
        return out

    def run_gen_per_prompt():  # generate.py before batching: one generate call per prompt
        return [s for p in PROMPTS for s in gen.sample([p], seed=0, **SAMPLING)]

    def run_pipe_batched():  # the pipeline given every prompt at once, batched
        if pipe.tokenizer.pad_token is None:
            pipe.tokenizer.pad_token = pipe.tokenizer.eos_token
        torch.manual_seed(0)
        return [x for r in pipe(PROMPTS, do_sample=True, num_return_sequences=SAMPLING["n"],
                                top_p=SAMPLING["top_p"], top_k=SAMPLING["top_k"],
                                temperature=SAMPLING["temperature"], batch_size=len(PROMPTS),
                                max_new_tokens=SAMPLING["max_new_tokens"], max_length=None)
                for x in r]

    calls = {"generate.py": lambda: run_gen(True),
             "generate.py, no copy check": lambda: run_gen(False),
             "generate.py, one call per prompt (before)": run_gen_per_prompt,
             "pipeline": run_pipe,
             "pipeline, prompts batched (batch_size=3)": run_pipe_batched}
    counters["generate.py, one call per prompt (before)"] = counters["generate.py"]
    counters["pipeline, prompts batched (batch_size=3)"] = counters["pipeline"]
    times = {k: 0.0 for k in calls}
    tokens = {k: 0 for k in calls}
    samples = {k: 0 for k in calls}
    for fn in calls.values():  # warm-up, untimed
        fn()
    for rnd in range(args.rounds):
        for name in (list(calls) if rnd % 2 == 0 else list(calls)[::-1]):
            c = counters[name]
            before = c.tokens
            t = time.perf_counter()
            out = calls[name]()
            times[name] += time.perf_counter() - t
            tokens[name] += c.tokens - before
            samples[name] += len(out)
    rate = {k: tokens[k] / times[k] for k in calls}
    rows = [[k, samples[k], tokens[k], times[k], rate[k], rate[k] / rate["pipeline"]]
            for k in calls]
    common.table(
        f"Generation — GPT-2 {args.n_layer}x{args.n_embd}, vocab {vocab}, "
        f"{n_params / 1e6:.1f}M params; {len(PROMPTS)} prompts x {SAMPLING['n']} samples, "
        f"top_p 0.95, <= {SAMPLING['max_new_tokens']} new tokens",
        ["sampler", "samples", "new tokens", "seconds", "tok/s", "× pipeline"], rows,
        caption=f"{args.rounds} alternating rounds after a warm-up; loading: generate.py "
                f"{load_gen:.2f} s, pipeline {load_pipe:.2f} s")
    out = {"data": desc, "model": {"n_layer": args.n_layer, "n_embd": args.n_embd,
                                   "vocab": vocab, "params": n_params},
           "sampling": {**SAMPLING, "prompts": PROMPTS}, "rounds": args.rounds,
           "seconds": times, "tokens": tokens, "samples": samples, "tokens_per_s": rate,
           "vs_pipeline": {k: rate[k] / rate["pipeline"] for k in calls},
           "load_s": {"generate.py": load_gen, "pipeline": load_pipe},
           "device": args.device, "target": ">= 1.0x the pipeline",
           "met": rate["generate.py"] / rate["pipeline"] >= 1.0}
    common.save("generation", out, args.device)
    return out


if __name__ == "__main__":
    main()
