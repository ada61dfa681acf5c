"""(2) Training throughput: tokens/s and model FLOPs utilisation of our training step against a
plain PyTorch loop and the HF Trainer, on the CPU or (--device cuda) a GPU: identical model (one
state dict), batch, data and hyperparameters (lr 5e-4, 5% warmup, cosine, weight decay 0.01,
clipping 1.0).

- ours: TweetLM + TweetDataModule driven by the Lightning Trainer exactly as train.py builds them
  from conf/ (CSV logger; the product's precision: fp32 on CPU, bf16-mixed on a GPU with bf16);
- plain: forward with labels, backward, clip_grad_norm_, AdamW (torch's defaults) with the same
  decay groups, scheduler, zero_grad, on GPT-2 as transformers builds it (gelu_new); bf16
  autocast on a GPU;
- hf: transformers.Trainer with its own defaults (fused AdamW); bf16=True on a GPU;
- ours with a product lever switched off: `ours-fused` (optim.fused=false), `ours-gelu`
  (model.fused_gelu=false: GPT-2's eight-kernel gelu_new instead of gelu_pytorch_tanh),
  `ours-levers` (both), `ours-det` (trainer.deterministic=false; default on a GPU), and with
  --compile `ours+compile` (torch.compile of the model);
- on the CPU, the OpenMP wait policy: fresh processes with and without OMP_WAIT_POLICY=PASSIVE.

On the CPU every runner of a group takes one step in turn (the order reversed each round), so
all see the same background load; GPT-2 small runs in two groups to bound memory, the second put
on the HF scale through `ours`, measured in both. On a GPU (the process's alone) the runners run
one after another and every step is CUDA-synchronized. tokens/s = batch x block / the median step
after --warmup steps. MFU = model FLOPs per token (6 N + 12 L T d) x tokens/s / the matmul peak
this script measures (fp32 2048^2 on the CPU, bf16 8192^2 on a GPU; before and after, the larger).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SHAPES = {  # name: (n_layer, n_embd, n_head, tokenizer, batch, block)
    "gpt2-small": (12, 768, 12, "gpt2", 8, 128),
    "gpt2-small-b64": (12, 768, 12, "gpt2", 64, 128),  # a batch that gives a GPU work
    "small": (4, 128, 4, "bpe", 16, 128),  # conf/model/scratch.yaml, the demo-sized model
}
QUICK = {"gpt2-small": (1, 64, 2, "gpt2", 2, 32), "gpt2-small-b64": (1, 64, 2, "gpt2", 4, 32),
         "small": (1, 32, 2, "bpe", 4, 32)}
RUNNERS = ["ours", "plain", "hf", "ours-fused", "ours-gelu", "ours-levers"]
OFF = {"-fused": ["optim.fused=false"], "-gelu": ["model.fused_gelu=false"],
       "-levers": ["optim.fused=false", "model.fused_gelu=false"],
       "-det": ["trainer.deterministic=false"]}
HP = {"lr": 5e-4, "weight_decay": 0.01, "warmup_ratio": 0.05}
DEFAULTS = {  # per device: shapes, runners, steps, small-steps, warmup, posts (0: all)
    "cpu": ("gpt2-small,small", ",".join(RUNNERS), 6, 24, 1, 6000),
    "cuda": ("gpt2-small,gpt2-small-b64,small", ",".join([*RUNNERS, "ours-det"]), 60, 60, 10, 0),
}


def parse(argv=None):
    p = common.parser(__doc__, device=True)
    p.add_argument("--shapes", help="comma list of " + ",".join(SHAPES) + " (default: "
                   + "; ".join(f"{k}: {v[0]}" for k, v in DEFAULTS.items()) + ")")
    p.add_argument("--runners", help="comma list of ours, plain, hf, ours-fused, ours-gelu, "
                   "ours-levers, ours-det (default: all; ours-det on cuda only)")
    p.add_argument("--steps", type=int, help="timed steps per runner, GPT-2 small (cpu 6, cuda 60)")
    p.add_argument("--small-steps", type=int, help="timed steps, the small shape (cpu 24, cuda 60)")
    p.add_argument("--warmup", type=int, help="untimed first steps per runner (cpu 1, cuda 10)")
    p.add_argument("--posts", type=int, help="newest posts used as data (cpu 6000, cuda 0: all)")
    p.add_argument("--compile", action="store_true",
                   help="also ours+compile (torch.compile of the model; costs a cold compile)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.small_steps, args.posts = 2, 2, 1000
        args.runners = args.runners or "ours,plain,hf"
    for key, v in zip(["shapes", "runners", "steps", "small_steps", "warmup", "posts"],
                      DEFAULTS[args.device]):
        if getattr(args, key) is None:
            setattr(args, key, v)
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
    dev = args.device
    handle, df, desc, tmp = common.workload(args.posts, "throughput")
    tok_dir = tmp / "gpt2-tokenizer" if common.gpt2_tokenizer(tmp / "gpt2-tokenizer") else None
    peaks = [common.matmul_peak(dev)]
    print(f"{'bf16' if dev == 'cuda' else 'fp32'} matmul peak on {dev}: {peaks[0]:.0f} GFLOP/s")
    wanted = [r for r in args.runners.split(",") if r] + (["ours+compile"] if args.compile else [])
    results = {}
    for shape in [s for s in args.shapes.split(",") if s]:
        # GPT-2 small on the CPU: groups of at most three in memory (weights, grads, AdamW), `ours` in both
        groups = ([["ours", "plain", "hf"], ["ours", "ours-levers", "ours+compile"]]
                  if shape.startswith("gpt2-small") and dev == "cpu" else [wanted])
        steps = args.steps if shape.startswith("gpt2-small") else args.small_steps
        results[shape] = run_shape(args, shape, (QUICK if args.quick else SHAPES)[shape], handle,
                                   tmp, tok_dir, steps, wanted, groups)
    peaks.append(common.matmul_peak(dev))
    peak = max(peaks)
    omp = None
    if dev == "cpu":
        omp = omp_policy_check(rounds=1 if args.quick else 3, steps=3 if args.quick else 6)
        print(f"OpenMP wait policy (small shape fwd+bwd, fresh processes): PASSIVE is "
              f"{omp['passive_speedup']:.2f}x the default spinning policy")
    rows = []
    for shape, res in results.items():
        hf = res["runners"].get("hf")
        for name, r in res["runners"].items():
            tps = r.get("tokens_per_s_on_hf_scale", r["tokens_per_s"])
            r["mfu"] = tps * res["flops_per_token"] / (peak * 1e9)
            r["vs_hf"] = tps / hf["tokens_per_s"] if hf else None
            rows.append([shape if name == next(iter(res["runners"])) else "", name, r["group"],
                         r["tokens_per_s"], r["step_s"], r["spread"], r["mfu"], r["vs_hf"],
                         r["vs_ours"]])
    common.table(f"Training throughput on {dev} (matmul peak {peak:.0f} GFLOP/s, measured)",
                 ["shape", "runner", "group", "tok/s", "s/step (median)", "step spread", "MFU",
                  "× hf", "× ours"], rows,
                 caption="× ours within the group; × hf of group 2 = × ours (group 2) × ours/hf "
                         "(group 1); spread = (max - min) / median of the timed steps")
    out = {"data": desc, "device": dev, "precision": precision(dev), "peak_gflops": peak,
           "peaks_gflops": peaks, "hyperparameters": HP, "shapes": results, "omp_wait_policy": omp,
           "target": ">= 1.0x the HF Trainer's tokens/s and MFU >= 65% for GPT-2 small on CPU"}
    g = results.get("gpt2-small", {}).get("runners", {})
    if "ours" in g and "hf" in g and not args.quick and dev == "cpu":
        out["met"] = {"vs_hf": g["ours"]["vs_hf"] >= 1.0, "mfu": g["ours"]["mfu"] >= 0.65}
    common.save("throughput", out, dev)
    return out


def precision(dev: str) -> dict:
    import huggingtweets.config as htc

    p = htc.precision() if dev == "cuda" else "32-true"
    mixed = "fp32" if dev == "cpu" else ("bf16" if p.startswith("bf16") else "fp16")
    return {"ours": p, "hf": mixed, "plain": mixed if dev == "cpu" else f"{mixed} autocast"}


def run_shape(args, shape, spec, handle, tmp, tok_dir, steps, wanted, groups) -> dict:
    """Build the runners of each group, run them (interleaved on the CPU, in turn on a GPU), free
    them; one result per runner."""
    import gc

    import torch
    import transformers

    n_layer, n_embd, n_head, tokenizer, batch, block = spec
    dev = args.device
    if tokenizer == "gpt2" and tok_dir is None:
        tokenizer = "bpe"  # no GPT-2 files: the fitted BPE of model=scratch
    overrides = common.scratch_overrides(
        handle, tmp, dev, n_layer, n_embd, n_head, block, batch,
        tok_dir if tokenizer == "gpt2" else None) + [
        f"model.scratch.n_positions={max(block, 256)}", f"optim.lr={HP['lr']}",
        f"optim.warmup_ratio={HP['warmup_ratio']}", f"optim.weight_decay={HP['weight_decay']}"]
    total = args.warmup + steps
    shared = {}

    def build_ours(name):
        extra = [o for k, v in OFF.items() if name.endswith(k) for o in v]
        with common.silent():
            cfg, dm, module, trainer = common.product_run(
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
                             deterministic=bool(cfg.trainer.deterministic))

    def baseline_model():
        model = transformers.GPT2LMHeadModel(shared["config"])
        model.load_state_dict(shared["init"])
        return model

    def build_plain(name):
        model = baseline_model().to(dev)

        def plain():
            opt, sched = common.plain_optimizer(model, HP["lr"], HP["weight_decay"],
                                                HP["warmup_ratio"], total)
            loader = torch.utils.data.DataLoader(shared["blocks"], batch_size=batch, shuffle=True,
                                                 pin_memory=dev == "cuda")
            model.train()
            done = 0
            while done < total:
                for ids in loader:
                    ids = ids.to(dev, non_blocking=True)
                    with common.autocast(dev):
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
        targs = common.hf_args(
            dev, output_dir=str(tmp / f"hf-{shape}"), per_device_train_batch_size=batch,
            max_steps=total, learning_rate=HP["lr"], weight_decay=HP["weight_decay"],
            warmup_steps=math.ceil(HP["warmup_ratio"] * total), lr_scheduler_type="cosine",
            max_grad_norm=1.0, seed=0)
        hf = transformers.Trainer(model=baseline_model(), args=targs,
                                  train_dataset=common.Blocks(shared["blocks"]),
                                  data_collator=transformers.default_data_collator)
        return common.Runner(name, hf.train, total)

    out = {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "batch": batch, "block": block,
           "tokenizer": tokenizer, "groups": [], "runners": {}}
    for gi, group in enumerate(groups):
        group = [n for n in group if n in wanted]
        if not group or (gi > 0 and set(group) <= {"ours"}):
            continue
        runners = []
        for name in (["ours"] if "ours" not in group else []) + group:  # ours builds the data
            r = (build_ours(name) if name.startswith("ours") else
                 build_plain(name) if name == "plain" else build_hf(name))
            if name in group:
                runners.append(r)
        for i, r in enumerate(runners):
            r._rng = torch.Generator().manual_seed(i).get_state()
        print(f"{shape} group {gi + 1}: {n_layer}x{n_embd}, vocab {shared['config'].vocab_size}, "
              f"{shared['params'] / 1e6:.1f}M params, batch {batch}x{block}; "
              f"{', '.join(r.name for r in runners)} x {total} steps", flush=True)
        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with common.silent():
            common.Baton(runners, slice_steps=1 if dev == "cpu" else None, device=dev).run()
        res = {}
        for r in runners:
            timed = r.step_times[args.warmup:]
            med = common.median(timed)
            res[r.name] = {"tokens_per_s": batch * block / med, "step_s": med,
                           "spread": (max(timed) - min(timed)) / med if timed else None,
                           "steps_timed": len(timed), "step_times": r.step_times, "group": gi + 1}
        if dev == "cuda":
            out.setdefault("max_gpu_memory_gib", []).append(torch.cuda.max_memory_allocated() / 2**30)
        out["groups"].append(res)
        del runners, r
        gc.collect()
        if dev == "cuda":
            torch.cuda.empty_cache()
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
