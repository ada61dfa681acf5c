"""(3) Data pipeline: posts/s of import + clean + tokenize + pack on the largest real timeline,
cold (nothing cached) and warm (the posts, the cleaned split and the token ids cached, as on every
run and sweep job after the first), as train.py runs it: the import into the per-user cache, the
prepare step, then TweetDataModule.setup() with GPT-2's tokenizer. The warm run is checked to give
the cold run's blocks exactly. Lower bounds beside it: the tokenizer alone, the JSON import alone.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import yaml  # noqa: E402


def parse(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=3, help="cold and warm runs each (interleaved)")
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--posts", type=int, default=None, help="newest posts only (default: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.posts = 1, 3000
    return args


def one_pass(kind: str, handle: str, records_fn, tok, data_dir: Path, block: int) -> dict:
    """The seconds and blocks of one pass. kind: cold (empty data dir: import + everything) | warm
    (the data dir of a previous pass: the train-time part only)."""
    from huggingtweets.ingest import posts, prepare
    from huggingtweets.train import data

    t0 = time.perf_counter()
    if kind == "cold":
        posts.write_posts(data_dir, handle, posts.to_frame(records_fn()), source="bench",
                          refresh="full")
    with common.silent():
        clean = {"preset": "default", "min_chars": 6000}
        settings = yaml.safe_load((common.ROOT / "conf" / "data" / "tweets.yaml").read_text())
        settings = {k: v for k, v in settings.items() if not str(v).startswith(("${", "huggingtweets."))}
        dm = data.TweetDataModule(prepared=prepare.prepare(handle, clean, data_dir), user=handle,
                                  clean=clean, **{**settings, "data_dir": str(data_dir),
                                                  "block_size": block, "seed": 1234})
        dm.tokenizer = tok
        dm.setup("fit")
    n_posts = sum(t.get("Tweets downloaded", 0) for t in dm.tables.values())
    return {"total_s": time.perf_counter() - t0, "posts": n_posts, "blocks": dm.train_set.blocks,
            "val": dm.val_set.blocks}


def main(argv=None) -> dict:
    args = common.start(parse, argv)
    import torch

    from huggingtweets.ingest import posts
    from huggingtweets.ingest.sources import demo
    from huggingtweets.train.tokenizer import load_tokenizer, train_tokenizer

    if common.have_real_data():
        handle, desc = common.HANDLE, f"@{common.HANDLE} 2009-2017, condensed v1.1 JSON"
        records_fn = lambda: sorted(common.trump_records(),  # noqa: E731
                                    key=lambda r: r["created_at"])[-(args.posts or 0):]
    else:
        handle, desc = "demo_ada", "demo_ada (no ../shared/data), 30,000 generated posts"
        records_fn = lambda: demo.generate(handle, n=args.posts or 30000)  # noqa: E731
    tok_dir, tok_name = Path(tempfile.mkdtemp(prefix="bench-tok-")), "GPT-2 (50,257)"
    if not common.gpt2_tokenizer(tok_dir):
        tok_name = "BPE 4,096 (no GPT-2 files)"
        train_tokenizer(list(posts.to_frame(records_fn())["text"][:5000]), 4096).save_pretrained(tok_dir)

    runs, identical = defaultdict(list), True
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    for rep in range(args.repeats):
        d = tmp / f"run-{rep}"
        # a fresh tokenizer object per pass, as each job loads one (TweetLM.build)
        cold, warm = (one_pass(kind, handle, records_fn, load_tokenizer(str(tok_dir)), d, args.block)
                      for kind in ("cold", "warm"))
        runs["cold"].append(cold)
        runs["warm"].append(warm)
        # the caches give back exactly what was computed
        identical &= all(torch.equal(cold[k], warm[k]) for k in ("blocks", "val"))
        shutil.rmtree(d, ignore_errors=True)

    # lower bounds: the JSON import alone, and the tokenizer alone on the kept texts
    t = time.perf_counter()
    frame = posts.to_frame(records_fn())
    import_s = time.perf_counter() - t
    texts = [x for x in frame["text"]]
    tok = load_tokenizer(str(tok_dir))
    t = time.perf_counter()
    n_tokens = sum(len(x) for x in tok(texts, add_special_tokens=False)["input_ids"])
    tokenize_s = time.perf_counter() - t
    bounds = {"import_s": import_s, "tokenize_s": tokenize_s, "tokens": n_tokens,
              "posts": len(texts), "tokens_per_s": n_tokens / tokenize_s}

    summary = {}
    for kind, rs in runs.items():
        best = min(rs, key=lambda r: r["total_s"])  # least disturbed by the other processes
        med = common.median([r["total_s"] for r in rs])
        summary[kind] = {"posts": best["posts"], "median_s": med, "best_s": best["total_s"],
                         "posts_per_s_median": best["posts"] / med,
                         "posts_per_s_best": best["posts"] / best["total_s"],
                         "runs_s": [r["total_s"] for r in rs]}
    rows = [[k, x["posts"], x["median_s"], x["posts_per_s_median"], x["posts_per_s_best"]]
            for k, x in summary.items()]
    md = common.table("Data pipeline: import + clean + tokenize + pack",
                      ["path", "posts", "s (median)", "posts/s (median)", "posts/s (best)"], rows,
                      caption=f"{args.repeats} runs each; warm gives the cold run's blocks exactly: "
                              f"{'yes' if identical else 'NO'}; lower bounds on the same posts: "
                              f"the JSON import alone {import_s:.2f} s, {tok_name}'s tokenizer "
                              f"alone {tokenize_s:.2f} s ({len(texts) / tokenize_s:,.0f} posts/s)")
    out = {"data": desc, "tokenizer": tok_name, "block_size": args.block, "runs": summary,
           "warm_identical_to_cold": bool(identical), "lower_bounds": bounds}
    cold, warm = summary["cold"]["posts_per_s_median"], summary["warm"]["posts_per_s_median"]
    common.save("pipeline", out, [
        f"{cold:,.0f} / {warm:,.0f}", ">= 50k / >= 500k", cold >= 50_000 and warm >= 500_000,
        f"cold bound: the tokenizer alone {len(texts) / tokenize_s:,.0f} posts/s"],
        [f"{desc}, tokenizer {tok_name}, blocks of {args.block}.", "", *md])
    return out


if __name__ == "__main__":
    main()
