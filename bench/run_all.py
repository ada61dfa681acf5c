"""Run the whole benchmark suite (each script in its own process), print the ratios against the
targets of the suite, write bench/results/summary.json and, with --markdown, BENCHMARKS.md.

    python bench/run_all.py                      # the full suite (make bench)
    python bench/run_all.py --quick              # tiny sizes: a smoke test of every script
    python bench/run_all.py --only quality,generation
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import startup  # noqa: E402

SCRIPTS = ["quality", "throughput", "pipeline", "startup", "generation", "lora", "pretrained"]
TITLES = {
    "quality": "(1) time to the original's final val loss",
    "throughput": "(2) training throughput vs the HF Trainer, MFU (GPT-2 small)",
    "pipeline": "(3) data pipeline posts/s (cold / warm)",
    "startup": "(4) process start -> first optimizer step of a sweep job (warm)",
    "generation": "(5) generate.py vs transformers.pipeline tokens/s",
    "lora": "(6) LoRA vs full fine-tuning, GPT-2-small shape",
    "pretrained": "(7) time to quality from a pretrained start",
}


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--only", default=",".join(SCRIPTS), help="comma list of " + ",".join(SCRIPTS))
    p.add_argument("--markdown", default=None, help="write the tables to this file (BENCHMARKS.md)")
    p.add_argument("--summary-only", action="store_true",
                   help="do not run anything: summarise bench/results/*.json")
    return p.parse_args(argv)


def load(name: str) -> dict | None:
    path = common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ratios() -> list[list]:
    """[benchmark, measured, target, met, note] rows from the results on disk."""
    rows = []
    q = load("quality")
    if q:
        s = q.get("speedup_to_target")
        d = q.get("decomposition", {})
        rows.append([TITLES["quality"], f"{s:.1f}x" if s else "not reached", ">= 3x",
                     bool(s and s >= 3),
                     f"{q['ours']['time_to_target_s']:.0f} s vs {q['original']['time_to_target_s']:.0f} s"
                     f"; {d.get('token_throughput_x', 0):.1f}x tok/s x "
                     f"{d.get('sample_efficiency_x', 0):.1f}x fewer tokens" if s else ""])
    t = load("throughput")
    if t and "gpt2-small" in t["shapes"]:
        g = t["shapes"]["gpt2-small"]["runners"]
        o = g.get("ours", {})
        before = g.get("ours-levers")
        rows.append([TITLES["throughput"], f"{o.get('vs_hf', 0):.2f}x hf, MFU {o.get('mfu', 0):.0%}",
                     ">= 1.0x, MFU >= 65%",
                     bool(o.get("vs_hf", 0) >= 1.0 and o.get("mfu", 0) >= 0.65),
                     (f"without the levers (ours-levers): {before['vs_hf']:.2f}x hf, MFU "
                      f"{before['mfu']:.0%}; " if before and before.get("vs_hf") else "")
                     + f"peak {t['peak_gflops']:.0f} GFLOP/s"])
    p = load("pipeline")
    if p:
        r, lb = p["runs"], p.get("lower_bounds") or {}
        cold, warm = r["cold"]["posts_per_s_median"], r["warm"]["posts_per_s_median"]
        rows.append([TITLES["pipeline"], f"{cold:,.0f} / {warm:,.0f}", ">= 50k / >= 500k",
                     cold >= 50_000 and warm >= 500_000,
                     f"cold bound: the tokenizer alone {lb['posts'] / lb['tokenize_s']:,.0f} posts/s"
                     if lb else ""])
    s = load("startup")
    if s:
        w = s["runs"].get("warm/wandb") or s["runs"]["cold"]
        c = s["runs"].get("warm/csv")
        lv = s["runs"].get("warm/csv+levers")
        rows.append([TITLES["startup"], f"{w['to_first_step_s_median']:.1f} s", "<= 8 s",
                     w["to_first_step_s_median"] <= 8,
                     f"job 2 of the sweep {w['job2_to_first_step_s']:.1f} s"
                     + (f"; logger=csv {c['to_first_step_s_median']:.1f} s" if c else "")
                     + (f"; csv + levers {lv['to_first_step_s_median']:.1f} s" if lv else "")])
    g = load("generation")
    if g:
        v = g["vs_pipeline"]
        rows.append([TITLES["generation"], f"{v['generate.py']:.2f}x", ">= 1.0x",
                     v["generate.py"] >= 1.0,
                     f"{g['tokens_per_s']['generate.py']:.0f} vs {g['tokens_per_s']['pipeline']:.0f}"
                     " tok/s" + "".join(f"; {k}: {x:.2f}x" for k, x in v.items()
                                        if k.startswith(("pipeline,", "generate.py, one")))])
    lo = load("lora")
    if lo:
        r = lo["ratios"]
        rows.append([TITLES["lora"], f"{r['tokens_per_s']:.2f}x tok/s, {r['peak_memory']:.2f}x memory",
                     ">= 1.4x, <= 0.6x", r["tokens_per_s"] >= 1.4 and r["peak_memory"] <= 0.6,
                     f"r={lo['rank']}; " + ", ".join(f"{m} {b['tokens_per_s']:.0f} tok/s, "
                                                     f"{b['peak_rss_mb']:.0f} MB" for m, b in lo["best"].items())])
    pt = load("pretrained")
    if pt:
        runs = pt["runs"]
        rows.append([TITLES["pretrained"], ", ".join(
            f"{n} {x['speedup']:.1f}x" if x["speedup"] else f"{n} not reached" for n, x in runs.items()
            if n != "original"), "faster than the original", all(x["speedup"] and x["speedup"] > 1
                                                               for x in runs.values()),
            f"target loss {pt['target_loss']:.3f} on @{pt['target_timeline']}"])
    return rows


def lora_md(lo: dict) -> list[str]:
    return md_table(["mode", "trainable params", "tokens/s", "peak RSS MB"],
                    [[m, f"{b['trainable']:,} of {b['params']:,}", b["tokens_per_s"], b["peak_rss_mb"]]
                     for m, b in lo["best"].items()])


def pretrained_md(pt: dict) -> list[str]:
    return [f"Base: `{pt['base']}` (the stand-in, pretrained on the benchmark corpus); fine-tuned "
            f"on @{pt['target_timeline']}; held-out loss {pt['initial_loss']:.3f} at the start.", "",
            *md_table(["recipe", "steps", "wall s", "final loss", "best loss", "s to target", "speed-up"],
                      [[n, x["steps"], x["clock_s"], x["final_loss"], x["best_loss"],
                        x["time_to_target_s"], x["speedup"]] for n, x in pt["runs"].items()])]


def md_table(columns, rows) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + [
        "| " + " | ".join(common.fmt(x).replace("|", "/") for x in r) + " |" for r in rows]


def quality_md(q: dict) -> list[str]:
    o, u, r, m = q["original"], q["ours"], q["our_recipe"], q["model"]
    eq = q["loss_at_equal_time"]
    return [f"{q['data']}, newest {q['posts']:,} posts: {q['train_tweets']:,} training and "
            f"{q['val_tweets']:,} held-out tweets ({q['val_tokens']:,} tokens). GPT-2 "
            f"{m['n_layer']}x{m['n_embd']} from one random init ({m['params'] / 1e6:.2f}M params), "
            f"byte-level BPE {m['vocab']}. Loss = mean token loss of each held-out tweet from its "
            f"EOS (initial {q['initial_loss']:.3f}).", "",
            *md_table(["recipe", "steps", "tokens/s", "run (s)", "final loss",
                       "s to the original's final loss", "speed-up"], [
                ["original: HF Trainer, 1 x 1024, lr 1.372e-4, cosine, data x4", o["steps"],
                 o["tokens_per_s"], o["clock_s"], q["target_loss"], o["time_to_target_s"], 1.0],
                [f"ours: Lightning, {r['batch_size']} x {r['block_size']}, lr {r['lr']:g}, warmup"
                 f" + cosine, {r['max_epochs']} epochs, early stopping", u["steps"],
                 u["tokens_per_s"], u["clock_s"], u["curve"][-1][1], u["time_to_target_s"],
                 q["speedup_to_target"]]]), "",
            f"At equal time: when ours finished ({eq['t_ours_end_s']:.0f} s) it was at "
            f"{eq['ours']:.3f}, the original at {common.fmt(eq['original'])}; when the original "
            f"finished ({eq['t_original_end_s']:.0f} s, {eq['original_final']:.3f}) ours had "
            f"reached {eq['ours_best_by_then']:.3f}."]


def throughput_md(t: dict) -> list[str]:
    rows = [[f"{shape} ({res['n_layer']}x{res['n_embd']}, vocab {res['vocab']}, "
             f"{res['batch']}x{res['block']})" if i == 0 else "", name, r.get("group"),
             r["tokens_per_s"], f"{r['mfu']:.1%}" if r["mfu"] >= 0.01 else f"{r['mfu']:.2%}",
             r.get("vs_hf"), r.get("vs_ours"), r.get("spread")]
            for shape, res in t["shapes"].items()
            for i, (name, r) in enumerate(res.get("runners", {}).items())]
    cuda, omp = t.get("device") == "cuda", t.get("omp_wait_policy")
    unit, div = ("TFLOP/s", 1e3) if cuda else ("GFLOP/s", 1)
    how = t.get("how") or ((
        "The runners run one after another (the GPU is the process's alone), every step "
        "CUDA-synchronized" if cuda else "The runners of a group take one step each in turn "
        "(order reversed every round). GPT-2 small runs in two groups to bound memory; × hf of "
        "group 2 goes through `ours`, measured in both") + "; tokens/s from the median step "
        "after warm-up steps.")
    return [f"{t['data']}. {'bf16' if cuda else 'fp32'} matmul peak measured by the script: "
            f"{t['peak_gflops'] / div:,.0f} {unit} (runs: "
            f"{', '.join(f'{x / div:,.0f}' for x in t['peaks_gflops'])}). {how} "
            "MFU = 6N+12LTd FLOPs/token × tokens/s ÷ the peak."
            + (f" Precision: ours {t['precision']['ours']}, hf {t['precision']['hf']}, plain "
               f"{t['precision']['plain']}." if t.get("precision") else "")
            + (f" OpenMP wait policy, small shape, fresh processes alternating: PASSIVE "
               f"{omp['passive_speedup']:.2f}x the default (spinning) policy." if omp else ""),
            "", *md_table(["shape", "runner", "group", "tokens/s", "MFU", "× hf", "× ours",
                           "step spread"], rows)]


def pipeline_md(p: dict) -> list[str]:
    rows = [[k, v["posts"], v["median_s"], v["posts_per_s_median"], "; ".join(
        f"{a} {b:.2f} s" for a, b in sorted(v["stages_best"].items(), key=lambda kv: -kv[1])[:4])]
        for k, v in p["runs"].items()]
    lb = p.get("lower_bounds") or {}
    return [f"{p['data']}, tokenizer {p['tokenizer']}, blocks of {p['block_size']}. Warm runs give "
            f"the cold run's blocks exactly: {'yes' if p.get('warm_identical_to_cold') else 'NO'}."
            + (f" Lower bounds on the same posts: the JSON import alone {lb['import_s']:.2f} s; "
               f"GPT-2's tokenizer alone {lb['tokenize_s']:.2f} s for {lb['tokens']:,} tokens "
               f"({lb['tokens_per_s']:,.0f} tokens/s, {lb['posts'] / lb['tokenize_s']:,.0f} "
               "posts/s: no cold path with this tokenizer can be faster)." if lb else "")
            + (f" Importing the full v1.1 objects (master files) instead of the condensed ones: "
               f"{p['master_import']['seconds']:.1f} s." if p.get("master_import") else ""),
            "", *md_table(["path", "posts", "s (median)", "posts/s", "biggest stages"], rows)]


def startup_md(s: dict) -> list[str]:
    rows = [[k, v["to_first_step_s_median"], v["job2_to_first_step_s"]] for k, v in s["runs"].items()]
    b = (s["runs"].get("warm/wandb") or s["runs"]["cold"])["breakdown"]
    parts = startup.parts_rows(b)
    imp = ", ".join(f"{k} {v:.1f} s" for k, v in list(b["imports_by_package_job1"].items())[:8])
    return [f"`{s['command']}`", "", *md_table(["run", "to first step (s, median)", "job 2 (s)"],
                                               rows),
            "", "Where the time goes (best warm W&B run):", "",
            *md_table(["part", "job 1 (s)", "job 2 (s)"], parts), "",
            f"Imports, exclusive, by package: {imp}."]


def generation_md(g: dict) -> list[str]:
    m, sm = g["model"], g["sampling"]
    rows = [[k, g["samples"][k], g["tokens"][k], g["seconds"][k], g["tokens_per_s"][k],
             g["vs_pipeline"][k]] for k in g["tokens_per_s"]]
    return [f"GPT-2 {m['n_layer']}x{m['n_embd']}, vocab {m['vocab']} ({m['params'] / 1e6:.1f}M "
            f"params), exported by the product; {len(sm['prompts'])} prompts x {sm['n']} samples, "
            f"top_p {sm['top_p']}, <= {sm['max_new_tokens']} new tokens; {g['rounds']} "
            "alternating rounds.", "",
            *md_table(["sampler", "samples", "new tokens", "s", "tokens/s", "× pipeline"], rows)]


SECTIONS = {"quality": ("(1) Time to quality", quality_md),
            "throughput": ("(2) Training throughput", throughput_md),
            "pipeline": ("(3) Data pipeline", pipeline_md),
            "startup": ("(4) Sweep overhead", startup_md),
            "generation": ("(5) Generation", generation_md),
            "lora": ("(6) LoRA", lora_md),
            "pretrained": ("(7) From a pretrained start", pretrained_md)}


def recorded_gpu() -> dict | None:
    """results/gpu.json (measured by the former bench/gpu.py) in throughput.py's layout."""
    g = load("gpu")
    if not g:
        return None
    return {**g["throughput"], "when": g["when"], "device": "cuda", "precision": g["precision"],
            "peak_gflops": g["peak"]["tflops"] * 1e3,
            "peaks_gflops": [p["tflops"] * 1e3 for p in g["peak"]["runs"]],
            "machine": {"cuda": g["device"]["name"]}, "gpu_note": g.get("note"),
            "how": "The runners ran one after another, each timed over a window of steps inside "
                   "the first epoch, CUDA-synchronized at its ends; ours, plain and hf in 2 rounds "
                   "(order reversed), tokens/s = their mean; spread over 5 chunks of the window.",
            "versions": {k: g["device"].get(k) for k in ("torch", "transformers", "lightning")},
            "errors": sorted({e.split(": ", 1)[-1] for s in g["throughput"]["shapes"].values()
                              for e in s.get("errors", [])} | set(g.get("errors", [])))}


def gpu_md() -> list[str]:
    """The GPU section: the --device cuda results when there are any, else the recorded ones."""
    runs = {n: load(f"{n}-cuda") for n in ("quality", "throughput", "generation")}
    recorded = not any(runs.values())
    if recorded:
        runs = {"throughput": recorded_gpu()}
    if not any(runs.values()):
        return []
    first = next(r for r in runs.values() if r)
    out = ["", "## GPU", "", f"On one **{first['machine'].get('cuda')}**, {first['when']}"
           + (f" ({', '.join(f'{k} {v}' for k, v in first['versions'].items())}), recorded by the "
              "former bench/gpu.py" if recorded else "") + ". Reproduce with `python "
           "bench/throughput.py --device cuda` (also `quality.py` and `generation.py` take "
           "`--device cuda`); the scripts write results/<name>-cuda.json, which replace this "
           "section."]
    for name, r in runs.items():
        if r:
            out += ["", f"### {SECTIONS[name][0]}", "", *SECTIONS[name][1](r)]
    if recorded and (first["errors"] or first["gpu_note"]):
        out += ["", "Failed:", ""] + [f"- `{e[:300]}`" for e in first["errors"]]
        out += ["", first["gpu_note"] or ""]
    return out


def markdown(path: Path, command: str, elapsed: float | None, quick: bool) -> None:
    m = next((r["machine"] for r in map(load, SCRIPTS) if r), common.machine_info())
    loads = {n: (load(n) or {}).get("machine", {}).get("loadavg") for n in SCRIPTS}
    out = [
        "# Benchmarks",
        "",
        "The latest run of the benchmark suite (bench/, see bench/README.md for what each script "
        "measures and how). Every ratio is measured in one process, against its baseline run "
        "beside it (interleaved), never against a stored number.",
        "",
        f"- Command: `{command}`" + (f" ({elapsed / 60:.1f} min)" if elapsed else ""),
        f"- Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')} "
        f"({m.get('torch_threads')} threads), Python {m.get('python')}"
        + (f", GPU {m['cuda']}" if m.get("cuda") else ", no GPU"),
        "- Load: 1-minute load average at the end of each script (the suite itself keeps one "
        "to two cores busy): " + ", ".join(f"{n} {v[0]:.1f}" for n, v in loads.items() if v)
        + ". Absolute numbers (tokens/s, posts/s, seconds) move with the machine's load; the "
        "ratios are what to read.",
        f"- Environment: OMP_WAIT_POLICY={m.get('OMP_WAIT_POLICY')}, MALLOC_ARENA_MAX=2 (set by "
        "bench/common.py `ensure_env`; the OpenMP wait policy is measured in (2)).",
    ]
    if quick:
        out.append("- **--quick run (tiny sizes): a smoke test, not a measurement.**")
    out += ["", "## Against the targets", "",
            *md_table(["benchmark", "measured", "target", "met", "detail"], ratios())]
    for name, (title, render) in SECTIONS.items():
        r = load(name)
        if r:
            out += ["", f"## {title}", "", *render(r)]
    out += gpu_md()
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


def main(argv=None) -> None:
    if argv is None:
        common.ensure_env()
    args = parse(argv)
    only = [s for s in args.only.split(",") if s]
    start = time.perf_counter()
    times, failed = {}, []
    if not args.summary_only:
        for name in only:
            cmd = [sys.executable, str(common.BENCH / f"{name}.py")] + (["--quick"] if args.quick
                                                                       else [])
            print(f"\n=== {name}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}",
                  flush=True)
            t = time.perf_counter()
            res = subprocess.run(cmd, cwd=common.ROOT)
            times[name] = time.perf_counter() - t
            if res.returncode != 0:
                failed.append(name)
                print(f"!!! {name} failed (exit {res.returncode})", flush=True)
    elapsed = time.perf_counter() - start
    common.table("Benchmarks against the targets",
                 ["benchmark", "measured", "target", "met", "detail"], ratios(),
                 caption=(f"suite ran {elapsed / 60:.1f} min: " + ", ".join(
                     f"{k} {v:.0f}s" for k, v in times.items())) if times else None)
    if times:
        common.save("summary", {"rows": ratios(), "script_seconds": times, "elapsed_s": elapsed,
                                "quick": args.quick})
    else:  # re-rendering: the last run's duration and mode
        elapsed, args.quick = (load("summary") or {}).get("elapsed_s"), (load("summary") or {}).get("quick")
    if args.markdown:
        command = "make bench" if not args.quick else "python bench/run_all.py --quick"
        markdown(common.ROOT / args.markdown, command, elapsed, args.quick)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
