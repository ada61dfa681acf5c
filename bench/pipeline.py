"""(3) Data pipeline: posts/s of import + clean + tokenize + pack on the largest real timeline
(30k tweets), cold (nothing cached) and warm (the posts and the token ids cached, as on every
run after the first and every job of a sweep after the first), with the time of each stage.

The product path is measured as train.py runs it: fetch.py's import (raw JSON -> the canonical
table via the product's v1.1 mapping -> the per-user parquet cache), then TweetDataModule (read
the cache, clean with clean=default, split by time) and its setup() with GPT-2's real tokenizer
(tokenize, or load the token cache; oversample, shuffle, pack into 128-token blocks). Stages are
timed by wrapping the product's functions, not by changing them.

`fast` is a prototype of three product changes (bench/pipeline.py: FastDataModule), checked to
give block-for-block the same training and validation tensors:
  1. a cleaned-posts cache keyed by the raw parquet's bytes + the clean config + the split, so a
     warm run skips read + clean + split;
  2. the token cache keyed by that key + a fingerprint of the tokenizer's files (the product
     serialises the whole tokenizer and hashes every text for its key), returning the flat ids
     and offsets instead of one array per tweet;
  3. pack() vectorised with numpy (no per-tweet Python lists).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(p)
    p.add_argument("--repeats", type=int, default=3, help="cold and warm runs each (interleaved)")
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--posts", type=int, default=None, help="newest posts only (default: all)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.posts = 1, 3000
    return args


class Stages:
    """Seconds per stage, by wrapping functions of the product in place (restored on exit).
    A stage timed inside another is subtracted from the outer one (exclusive times)."""

    def __init__(self):
        self.t = defaultdict(float)
        self._patches = []
        self._inner = [0.0]

    def wrap(self, owner, attr, stage):
        real = getattr(owner, attr)
        stages = self

        def timed(*a, **k):
            t = time.perf_counter()
            stages._inner.append(0.0)
            try:
                return real(*a, **k)
            finally:
                dt = time.perf_counter() - t
                inner = stages._inner.pop()
                stages.t[stage] += dt - inner
                stages._inner[-1] += dt

        setattr(owner, attr, timed)
        self._patches.append((owner, attr, real))

    def restore(self):
        for owner, attr, real in reversed(self._patches):
            setattr(owner, attr, real)
        self._patches = []


# -- the prototype of the product changes --------------------------------------------------------
def fast_pack(ids, offsets, order, block: int, eos: int):
    """pack() for tweets given as one flat id array + offsets, taken in `order`: EOS before every
    tweet, concatenated, cut into full blocks. Same result as data.pack, without Python loops."""
    import numpy as np
    import torch

    order = np.asarray(order, dtype=np.int64)
    starts, lens = offsets[order], offsets[order + 1] - offsets[order]
    if len(order) == 0:
        return torch.empty(0, block, dtype=torch.long)
    out_start = np.concatenate([[0], np.cumsum(lens + 1)[:-1]])  # where each tweet's EOS goes
    stream = np.empty(int((lens + 1).sum()), dtype=np.int64)
    stream[out_start] = eos
    before = np.concatenate([[0], np.cumsum(lens)[:-1]])
    k = np.arange(int(lens.sum()))
    stream[np.repeat(out_start + 1 - before, lens) + k] = ids[np.repeat(starts - before, lens) + k]
    n = len(stream) // block
    return torch.from_numpy(stream[: n * block].reshape(n, block))


def tokenizer_fingerprint(tok) -> str:
    """What the token cache is keyed by: the hash of the files the tokenizer was loaded from when
    they are known (`tok.ht_files`, what TweetLM.build would record), else of its full
    serialisation, as the product does (to_str() of GPT-2's tokenizer alone takes ~0.1 s)."""
    files = getattr(tok, "ht_files", None)
    h = hashlib.sha256()
    if files:
        for f in files:
            h.update(Path(f).read_bytes())
    else:
        h.update(tok.backend_tokenizer.to_str().encode())
    return h.hexdigest()


def make_fast_datamodule():
    import numpy as np
    import pandas as pd
    import torch

    from huggingtweets import clean as cleaning
    from huggingtweets import data, posts

    class FastDataModule(data.TweetDataModule):
        def _load(self) -> None:
            self.tables, self.meta, self.train, self.val, self.raw_paths = {}, {}, {}, {}, {}
            self._keys = {}
            for h in self.handles:
                raw_path = posts.tweets_path(self.data_dir, h)
                if not raw_path.exists():
                    data.load_user(self.data_dir, h)  # fetch or generate, as the product does
                key = hashlib.sha256(raw_path.read_bytes())
                key.update(json.dumps([self.clean_cfg, self.val_share, self.split, self.seed],
                                      sort_keys=True, default=str).encode())
                key = key.hexdigest()[:20]
                path = self.data_dir / "cache" / f"clean-{key}.parquet"
                if path.exists():
                    both = pd.read_parquet(path)
                    self.tables[h] = json.loads(path.with_suffix(".json").read_text())
                    is_val = both.pop("_val").to_numpy()
                    self.train[h] = both[~is_val].reset_index(drop=True)
                    self.val[h] = both[is_val].reset_index(drop=True)
                else:
                    raw = data.load_user(self.data_dir, h)
                    cleaned = cleaning.clean_posts(raw, self.clean_cfg)
                    self.tables[h] = cleaned.table
                    cleaning.check_enough(cleaned, h, int(self.clean_cfg.get("min_chars", 0)))
                    self.train[h], self.val[h] = data.split_tweets(
                        cleaned.posts, self.val_share, self.split, self.seed, h)
                    both = pd.concat([self.train[h].assign(_val=False),
                                      self.val[h].assign(_val=True)], ignore_index=True)
                    with posts.atomic_path(path) as tmp:
                        both.to_parquet(tmp, index=False)
                    path.with_suffix(".json").write_text(json.dumps(cleaned.table))
                self._keys[h] = key
                self.meta[h] = posts.read_meta(self.data_dir, h)
                self.raw_paths[h] = raw_path
            cleaning.print_table(self.tables, title="Data")

        def _flat_tokens(self) -> dict:
            """{"h/split": (flat int32 ids, int64 offsets)}, cached by the clean key + tokenizer."""
            tok = self.tokenizer
            key = hashlib.sha256(tokenizer_fingerprint(tok).encode())
            for h in self.handles:
                key.update(self._keys[h].encode())
            path = self.data_dir / "cache" / f"flat-{key.hexdigest()[:20]}.npz"
            names = [f"{h}/{s}" for h in self.handles for s in ("train", "val")]
            if path.exists():
                with np.load(path) as z:
                    return {k: (z[f"{k}:ids"], z[f"{k}:offsets"]) for k in names}
            out, arrays = {}, {}
            for h in self.handles:
                for s, frames in (("train", self.train), ("val", self.val)):
                    batch = list(frames[h]["text"])
                    ids = tok(batch, add_special_tokens=False)["input_ids"] if batch else []
                    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
                    flat = np.fromiter((i for x in ids for i in x), dtype=np.int32,
                                       count=int(lengths.sum()))
                    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                    out[f"{h}/{s}"] = (flat, offsets)
                    arrays[f"{h}/{s}:ids"], arrays[f"{h}/{s}:offsets"] = flat, offsets
            with posts.atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
            return out

        def setup(self, stage=None) -> None:
            if getattr(self, "train_set", None) is not None:
                return
            if self.condition:
                return super().setup(stage)  # control tokens: the product path
            tokens, eos = self._flat_tokens(), self.tokenizer.eos_token_id
            chars = {h: int(self.train[h]["text"].str.len().sum()) for h in self.handles}
            target = data.mix_counts(chars, self.mix, self.weights)
            rng = random.Random(self.seed)
            picks, flat_ids, starts, n_tweets, n_tokens = [], [], [], 0, 0
            for h in self.handles:  # every user's tweets in one flat array, offsets shifted
                ids, off = tokens[f"{h}/train"]
                picks += [n_tweets + i for i in data.oversample(list(self.train[h]["text"]),
                                                                target[h], rng)]
                flat_ids.append(ids)
                starts.append(off[:-1] + n_tokens)
                n_tweets, n_tokens = n_tweets + len(off) - 1, n_tokens + int(off[-1])
            rng.shuffle(picks)  # the same draws as the product's shuffle of its list of arrays
            ids = np.concatenate(flat_ids)
            offsets = np.concatenate([*starts, [n_tokens]]).astype(np.int64)
            blocks = fast_pack(ids, offsets, picks, self.block_size, eos)
            if len(blocks) == 0:
                return super().setup(stage)  # the product's error message
            self.train_set = data.Blocks(blocks, torch.full((len(blocks),), -1))
            vb, vu = [], []
            for i, h in enumerate(self.handles):
                vids, voff = tokens[f"{h}/val"]
                b = fast_pack(vids, voff, np.arange(len(voff) - 1), self.block_size, eos)
                if len(b) == 0:
                    self.train_set = None
                    return super().setup(stage)
                vb.append(b)
                vu.append(torch.full((len(b),), i))
            self.val_set = data.Blocks(torch.cat(vb), torch.cat(vu))

    return FastDataModule


# -- one pass ------------------------------------------------------------------------------------
def one_pass(kind: str, variant: str, handle: str, records_fn, tok, data_dir: Path,
             block: int, fast_cls) -> dict:
    """Time the pipeline once. kind: cold (empty data dir: import + everything) | warm (the data
    dir of a previous pass: the train-time part only). Returns stage seconds and the blocks."""
    from huggingtweets import clean as cleaning
    from huggingtweets import data, posts

    st = Stages()
    st.wrap(posts, "read_posts", "read cache")
    st.wrap(cleaning, "clean_posts", "clean")
    st.wrap(data, "split_tweets", "split")
    st.wrap(cleaning, "print_table", "print table")
    st.wrap(data, "pack", "pack")
    st.wrap(data.TweetDataModule, "_tokens", "tokenize / load token cache")
    if fast_cls is not None:
        st.wrap(fast_cls, "_flat_tokens", "tokenize / load token cache")
        st.wrap(sys.modules[__name__], "tokenizer_fingerprint", "tokenizer fingerprint")
        st.wrap(sys.modules[__name__], "fast_pack", "pack")
    t0 = time.perf_counter()
    try:
        if kind == "cold":
            t = time.perf_counter()
            df = posts.to_frame(records_fn())
            st.t["import (JSON -> table)"] += time.perf_counter() - t
            t = time.perf_counter()
            posts.write_posts(data_dir, handle, df, source="bench", refresh="full")
            st.t["write cache"] += time.perf_counter() - t
        cls = fast_cls or data.TweetDataModule
        with contextlib.redirect_stdout(io.StringIO()):
            dm = cls(user=handle, clean={"preset": "default", "min_chars": 6000},
                     data_dir=str(data_dir), block_size=block, batch_size=16)
            dm.tokenizer = tok
            dm.setup("fit")
    finally:
        st.restore()
    total = time.perf_counter() - t0
    stages = dict(st.t)
    stages["other (hashing, cache reads, oversample, shuffle)"] = max(
        0.0, total - sum(stages.values()))
    n_posts = sum(t.get("Tweets downloaded", 0) for t in dm.tables.values())
    return {"total_s": total, "stages": stages, "posts": n_posts,
            "blocks": dm.train_set.blocks, "val": dm.val_set.blocks}


def main(argv=None) -> dict:
    args = parse(argv)
    common.apply_threads(args)
    common.quiet()
    import torch

    if common.have_real_data():
        handle = common.HANDLE
        desc = f"@{handle} 2009-2017, condensed v1.1 JSON"
        def records_fn():
            recs = common.trump_records("condensed")
            return sorted(recs, key=lambda r: r["created_at"])[-args.posts:] if args.posts \
                else recs
    else:
        from huggingtweets.sources import demo

        handle, desc = "demo_ada", "demo_ada (no ../shared/data), 30,000 generated posts"
        records_fn = lambda: demo.generate(handle, n=args.posts or 30000)  # noqa: E731
    if common.have_gpt2_tokenizer():
        tok, tok_name = common.gpt2_tokenizer(), "GPT-2 (50,257)"
        tok.ht_files = [common.GPT2_TOKENIZER / "vocab.json", common.GPT2_TOKENIZER / "merges.txt"]
    else:
        from huggingtweets.module import train_tokenizer

        texts = [r["text"] for r in records_fn()] if common.have_real_data() else \
            list(records_fn()["text"])
        tok, tok_name = train_tokenizer(texts[:5000], 4096), "BPE 4,096 (no GPT-2 files)"
    fast_cls = make_fast_datamodule()

    runs = defaultdict(list)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    identical = True
    for rep in range(args.repeats):
        for variant, cls in (("product", None), ("fast", fast_cls)) if rep % 2 == 0 else \
                (("fast", fast_cls), ("product", None)):
            d = tmp / f"{variant}-{rep}"
            cold = one_pass("cold", variant, handle, records_fn, tok, d, args.block, cls)
            warm = one_pass("warm", variant, handle, records_fn, tok, d, args.block, cls)
            runs[(variant, "cold")].append(cold)
            runs[(variant, "warm")].append(warm)
            shutil.rmtree(d, ignore_errors=True)
        a, b = runs[("product", "warm")][-1], runs[("fast", "warm")][-1]
        identical &= torch.equal(a["blocks"], b["blocks"]) and torch.equal(a["val"], b["val"])
        identical &= torch.equal(runs[("product", "cold")][-1]["blocks"], a["blocks"])

    # the import of the full v1.1 objects (master_*.json.zip), once, for reference
    master = None
    if common.have_real_data():
        from huggingtweets import posts

        t = time.perf_counter()
        n = len(posts.to_frame(common.trump_records("master")))
        master = {"posts": n, "seconds": time.perf_counter() - t}

    summary, rows = {}, []
    for (variant, kind), rs in runs.items():
        best = min(rs, key=lambda r: r["total_s"])  # least disturbed by the other processes
        med = common.median([r["total_s"] for r in rs])
        summary[f"{variant}/{kind}"] = {
            "posts": best["posts"], "median_s": med, "best_s": best["total_s"],
            "posts_per_s_median": best["posts"] / med, "posts_per_s_best": best["posts"] /
            best["total_s"], "stages_best": best["stages"], "runs_s": [r["total_s"] for r in rs],
        }
    for key in ("product/cold", "product/warm", "fast/cold", "fast/warm"):
        s = summary[key]
        top = sorted(s["stages_best"].items(), key=lambda kv: -kv[1])[:3]
        rows.append([key, s["posts"], s["median_s"], s["posts_per_s_median"], s["posts_per_s_best"],
                     "; ".join(f"{k} {v:.2f}s" for k, v in top)])
    caption = (f"{desc}; tokenizer {tok_name}; {args.repeats} runs each, interleaved; "
               f"fast = same blocks as the product: {'yes' if identical else 'NO'}")
    if master:
        caption += f"; importing the full v1.1 master files instead: {master['seconds']:.1f} s"
    common.table("Data pipeline: import + clean + tokenize + pack", [
        "path", "posts", "s (median)", "posts/s (median)", "posts/s (best)", "biggest stages (best run)"],
        rows, caption=caption)
    out = {
        "data": desc, "tokenizer": tok_name, "block_size": args.block, "runs": summary,
        "fast_identical_to_product": bool(identical), "master_import": master,
        "machine": common.machine_info(),
        "target": ">= 50k posts/s cold, >= 500k posts/s warm",
        "met": {"cold": summary["product/cold"]["posts_per_s_median"] >= 50_000,
                "warm": summary["product/warm"]["posts_per_s_median"] >= 500_000,
                "cold_fast": summary["fast/cold"]["posts_per_s_median"] >= 50_000,
                "warm_fast": summary["fast/warm"]["posts_per_s_median"] >= 500_000},
    }
    common.save("pipeline", out)
    return out


if __name__ == "__main__":
    main()
