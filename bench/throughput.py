"""(2) Training throughput: tokens/s and model FLOPs utilisation of our training step against a
plain PyTorch loop and the HF Trainer: identical model (one state dict), batch, data and
hyperparameters, interleaved step by step in one process.

- ours: TweetLM + TweetDataModule driven by the Lightning Trainer exactly as train.py builds them
  from conf/ (fp32 on CPU, gradient clipping 1.0, deterministic, CSV logger);
- plain: the textbook loop: forward with labels, backward, clip_grad_norm_(1.0), AdamW (torch's
  defaults) with the same decay groups, scheduler step, zero_grad;
- hf: transformers.Trainer with the same lr, warmup, cosine schedule, weight decay, clipping and
  its own defaults (fused AdamW);
- the product's two throughput levers, each switched off to show what it brings: `ours-fused`
  (optim.fused=false: torch's default multi-tensor AdamW instead of the fused kernel),
  `ours-gelu` (model.fused_gelu=false: GPT-2's "gelu_new", eight element-wise kernels, instead of
  the numerically equivalent fused "gelu_pytorch_tanh"), `ours-levers` (both off: the recipe
  before the levers);
- the OpenMP wait policy (an environment lever): fresh processes with and without
  OMP_WAIT_POLICY=PASSIVE, alternating.

MFU = model FLOPs per token (6 N + 12 L T d) x tokens/s / the fp32 matmul peak this script
measures (best 2048^2 matmul, before and after). Every runner takes one step in turn (the order
reversed each round) so all see the same background load; the first `--warmup` steps of each
are dropped and the median step time counts.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SHAPES = {
    # name: (n_layer, n_embd, n_head, tokenizer, batch, block)
    "gpt2-small": (12, 768, 12, "gpt2", 8, 128),
    "small": (4, 128, 4, "bpe", 16, 128),  # conf/model/scratch.yaml, the demo-sized model
}
QUICK = {"gpt2-small": (1, 64, 2, "gpt2", 2, 32), "small": (1, 32, 2, "bpe", 4, 32)}
ALL_RUNNERS = ["ours", "plain", "hf", "ours-fused", "ours-gelu", "ours-levers"]


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--shapes", default="gpt2-small,small", help="comma list of " + ",".join(SHAPES))
    p.add_argument("--runners", default=",".join(ALL_RUNNERS))
    p.add_argument("--steps", type=int, default=6, help="timed steps per runner (GPT-2 small)")
    p.add_argument("--small-steps", type=int, default=24, help="timed steps for the small shape")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps per runner")
    p.add_argument("--posts", type=int, default=6000, help="newest posts used as data")
    p.add_argument("--compile", action="store_true",
                   help="also ours+compile (torch.compile of the model; costs a cold compile)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.small_steps, args.posts = 2, 2, 1000
        args.runners = "ours,plain,hf"
    return args


OMP_CHILD = """
import time, torch, transformers
transformers.logging.set_verbosity_error()
torch.manual_seed(0)
m = transformers.GPT2LMHeadModel(transformers.GPT2Config(
    vocab_size=4096, n_positions=256, n_embd=128, n_layer=4, n_head=4))
x = torch.randint(0, 4096, (16, 128))
ts = []
for _ in range({steps}):
    t = time.perf_counter()
    m(input_ids=x, labels=x).loss.backward()
    ts.append(time.perf_counter() - t)
print(sorted(ts[1:])[len(ts[1:]) // 2])
"""


def omp_policy_check(rounds: int = 3, steps: int = 6) -> dict:
    """Forward+backward of the small shape in fresh processes, OpenMP's default (spinning) wait
    policy against OMP_WAIT_POLICY=PASSIVE, alternating (ABBA...): the environment lever."""
    import subprocess

    out = {"default": [], "PASSIVE": []}
    for r in range(rounds):
        for policy in (("default", "PASSIVE") if r % 2 == 0 else ("PASSIVE", "default")):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy == "PASSIVE":
                env["OMP_WAIT_POLICY"] = "PASSIVE"
            res = subprocess.run([sys.executable, "-c", OMP_CHILD.format(steps=steps)],
                                 capture_output=True, text=True, env=env, timeout=600)
            out[policy].append(float(res.stdout.strip().splitlines()[-1]))
    med = {k: common.median(v) for k, v in out.items()}
    return {"step_s": out, "median_step_s": med, "passive_speedup": med["default"] / med["PASSIVE"]}


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import torch

    handle, df, desc, tmp = common.workload(args.posts, "throughput")
    tok_dir = tmp / "gpt2-tokenizer"
    if common.have_gpt2_tokenizer():
        common.gpt2_tokenizer().save_pretrained(tok_dir)
    peaks = [common.matmul_peak()]
    print(f"fp32 matmul peak: {peaks[0]:.0f} GFLOP/s ({torch.get_num_threads()} threads)")

    shapes = QUICK if args.quick else SHAPES
    names = [s for s in args.shapes.split(",") if s]
    wanted = [r for r in args.runners.split(",") if r]
    if args.compile:
        wanted.append("ours+compile")
    results = {}
    for shape in names:
        n_layer, n_embd, n_head, tokenizer, batch, block = shapes[shape]
        if tokenizer == "gpt2" and not tok_dir.exists():
            tokenizer = "bpe"  # no GPT-2 files: a fitted BPE of GPT-2's size
        steps = args.steps if shape == "gpt2-small" else args.small_steps
        # GPT-2 small: groups of at most three in memory at a time (~2 GB each), `ours` in
        # both (the levers one by one on the small shape, where steps are cheap)
        groups = ([["ours", "plain", "hf"], ["ours", "ours-levers", "ours+compile"]]
                  if shape == "gpt2-small" else [ALL_RUNNERS + ["ours+compile"]])
        results[shape] = run_shape(args, shape, handle, tmp, tok_dir, n_layer, n_embd, n_head,
                                   tokenizer, batch, block, steps, wanted, groups)
    peaks.append(common.matmul_peak())
    peak = max(peaks)
    omp = omp_policy_check(rounds=1 if args.quick else 3, steps=3 if args.quick else 6)
    print(f"OpenMP wait policy (small shape fwd+bwd, fresh processes): PASSIVE is "
          f"{omp['passive_speedup']:.2f}x the default spinning policy "
          f"({omp['median_step_s']['default']:.3f} vs {omp['median_step_s']['PASSIVE']:.3f} s/step)")
    rows = []
    for shape, res in results.items():
        hf = res["runners"].get("hf")
        for name, r in res["runners"].items():
            tps = r.get("tokens_per_s_on_hf_scale", r["tokens_per_s"])
            r["mfu"] = tps * res["flops_per_token"] / (peak * 1e9)
            r["vs_hf"] = tps / hf["tokens_per_s"] if hf else None
            rows.append([shape if name == next(iter(res["runners"])) else "", name,
                         r["group"], r["tokens_per_s"], r["step_s"], r["spread"], r["mfu"],
                         r["vs_hf"], r["vs_ours"]])
    common.table(
        f"Training throughput (fp32 matmul peak {peak:.0f} GFLOP/s, measured)",
        ["shape", "runner", "group", "tok/s", "s/step (median)", "step spread", "MFU", "× hf",
         "× ours"],
        rows,
        caption="runners of one group take turns step by step; × ours within the group; × hf of "
                "group 2 = × ours (group 2) × ours/hf (group 1); spread = (max - min) / median of "
                "the timed steps; MFU = 6N+12LTd FLOPs/token × tok/s / peak",
    )
    g = results.get("gpt2-small", {}).get("runners", {})
    out = {
        "data": desc, "peak_gflops": peak, "peaks_gflops": peaks, "shapes": results,
        "omp_wait_policy": omp,
        "machine": common.machine_info(),
        "target": ">= 1.0x the HF Trainer's tokens/s and MFU >= 65% for GPT-2 small on CPU",
    }
    if "ours" in g and "hf" in g and not args.quick:
        out["met"] = {"vs_hf": g["ours"]["vs_hf"] >= 1.0, "mfu": g["ours"]["mfu"] >= 0.65}
    common.save("throughput", out)
    return out


def run_shape(args, shape, handle, tmp, tok_dir, n_layer, n_embd, n_head, tokenizer, batch,
              block, steps, wanted, groups) -> dict:
    """Build the runners of each group, interleave them, free them; one result per runner.
    Groups bound the memory: each GPT-2-small runner holds ~2 GB (weights, grads, AdamW)."""
    import gc

    import torch
    import transformers

    overrides = [
        f"user={handle}", "model=scratch", f"data.data_dir={tmp / 'data'}",
        f"data.block_size={block}", f"data.batch_size={batch}", f"model.scratch.n_layer={n_layer}",
        f"model.scratch.n_embd={n_embd}", f"model.scratch.n_head={n_head}",
        f"model.scratch.n_positions={max(block, 256)}", "trainer.accelerator=cpu",
        "optim.lr=5e-4", "optim.warmup_ratio=0.05",
    ]
    if tokenizer == "gpt2":
        overrides.append(f"model.tokenizer={tok_dir}")
    total = args.warmup + steps
    hp = {"lr": 5e-4, "weight_decay": 0.01, "warmup_ratio": 0.05}
    shared = {}

    def build_ours(name):
        off = {"-fused": ["optim.fused=false"], "-gelu": ["model.fused_gelu=false"],
               "-levers": ["optim.fused=false", "model.fused_gelu=false"]}
        extra = [o for k, v in off.items() if name.endswith(k) for o in v]
        with contextlib.redirect_stdout(io.StringIO()):
            _, dm, module, trainer = common.product_run(
                [*overrides, *extra, f"+trainer.max_steps={total}"], tmp / f"run-{shape}-{name}")
        if "init" not in shared:  # the first model built is everyone's initial weights
            shared["init"] = {k: v.clone() for k, v in module.model.state_dict().items()}
            # plain and hf train GPT-2 as transformers builds it (gelu_new); the fused GELU is
            # one of our levers, so ours-gelu shows what it brings
            shared["config"] = transformers.GPT2Config.from_dict(
                {**module.model.config.to_dict(), "activation_function": "gelu_new"})
            shared["blocks"] = dm.train_set.blocks
            shared["params"] = sum(p.numel() for p in module.model.parameters())
        module.model.load_state_dict(shared["init"])
        if "+compile" in name:
            module.model = torch.compile(module.model)
        return common.Runner(name, lambda: trainer.fit(module, datamodule=dm), total,
                             deterministic=True)

    def build_plain(name):
        model = transformers.GPT2LMHeadModel(shared["config"])
        model.load_state_dict(shared["init"])
        blocks = shared["blocks"]

        def plain():
            opt, sched = common.plain_optimizer(model, hp["lr"], hp["weight_decay"],
                                                hp["warmup_ratio"], total)
            loader = torch.utils.data.DataLoader(blocks, batch_size=batch, shuffle=True)
            model.train()
            done = 0
            while done < total:
                for ids in loader:
                    loss = model(input_ids=ids, labels=ids).loss
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                    done += 1
                    if done >= total:
                        break
        return common.Runner(name, plain, total)

    def build_hf(name):
        model = transformers.GPT2LMHeadModel(shared["config"])
        model.load_state_dict(shared["init"])
        blocks = shared["blocks"]

        class DS(torch.utils.data.Dataset):
            def __len__(self):
                return len(blocks)

            def __getitem__(self, i):
                return {"input_ids": blocks[i], "labels": blocks[i]}

        targs = transformers.TrainingArguments(
            output_dir=str(tmp / f"hf-{shape}"), per_device_train_batch_size=batch,
            max_steps=total, learning_rate=hp["lr"], weight_decay=hp["weight_decay"],
            warmup_steps=math.ceil(hp["warmup_ratio"] * total), lr_scheduler_type="cosine",
            max_grad_norm=1.0, logging_steps=5, save_strategy="no", eval_strategy="no",
            report_to=[], use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0,
        )
        hf = transformers.Trainer(model=model, args=targs, train_dataset=DS(),
                                  data_collator=transformers.default_data_collator)
        return common.Runner(name, hf.train, total)

    out = {"n_layer": n_layer, "n_embd": n_embd, "batch": batch, "block": block,
           "tokenizer": tokenizer, "groups": [], "runners": {}}
    for gi, group in enumerate(groups):
        group = [n for n in group if n in wanted]
        if not group or (gi > 0 and set(group) <= {"ours"}):
            continue
        names = (["ours"] if "ours" not in group else []) + group  # ours builds the data first
        runners = []
        for name in names:
            r = (build_ours(name) if name.startswith("ours") else
                 build_plain(name) if name == "plain" else build_hf(name))
            if name in group:
                runners.append(r)
        for i, r in enumerate(runners):
            r._rng = torch.Generator().manual_seed(i).get_state()
        print(f"{shape} group {gi + 1}: {n_layer}x{n_embd}, vocab {shared['config'].vocab_size}, "
              f"{shared['params'] / 1e6:.1f}M params, batch {batch}x{block}; "
              f"{', '.join(r.name for r in runners)} x {total} steps", flush=True)
        with contextlib.redirect_stdout(io.StringIO()):
            common.Baton(runners, slice_steps=1, policy="round").run()
        res = {}
        for r in runners:
            timed = r.step_times[args.warmup:]
            med = common.median(timed)
            res[r.name] = {"tokens_per_s": batch * block / med, "step_s": med,
                           "spread": (max(timed) - min(timed)) / med if timed else None,
                           "steps_timed": len(timed), "step_times": r.step_times, "group": gi + 1}
        out["groups"].append(res)
        del runners, r
        gc.collect()
    # one row per runner; a runner measured in several groups keeps its first measurement, and
    # runners of a group without the HF Trainer are put on its scale through `ours` (same group)
    base = next((g for g in out["groups"] if "hf" in g and "ours" in g), None)
    for g in out["groups"]:
        for name, r in g.items():
            if name in out["runners"]:
                continue
            r = dict(r)
            if "ours" in g and base is not None and g is not base:
                r["tokens_per_s_on_hf_scale"] = (r["tokens_per_s"] / g["ours"]["tokens_per_s"]
                                                 * base["ours"]["tokens_per_s"])
            r["vs_ours"] = r["tokens_per_s"] / g["ours"]["tokens_per_s"] if "ours" in g else None
            out["runners"][name] = r
    out["vocab"] = shared["config"].vocab_size
    out["params"] = shared["params"]
    out["flops_per_token"] = common.train_flops_per_token(n_layer, n_embd, out["vocab"], block)
    return out


if __name__ == "__main__":
    main()
