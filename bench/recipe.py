"""The model=scratch recipe, chosen by a measured sweep on real timelines.

Each timeline in ../shared/data is imported with the product's own importers into a scratch data
dir (outputs/recipe/data, never the project's data/), then `python train.py user=H model=scratch
<overrides>` runs as a user would run it, and the evaluation's held-out perplexity is read next
to its Kneser-Ney trigram's (the same tokens, the same next-token targets): the ratio is the
quality measure (< 1: the model beats the trigram).

    python bench/recipe.py                                  # the defaults on every timeline
    python bench/recipe.py --grid                           # the sweep that chose them
    python bench/recipe.py --set optim.lr=3e-3 --users smithjd,drob
    python bench/recipe.py --gap outputs/recipe/runs/defaults/smithjd   # where the model loses

Needs ../shared/data (internal test data, not in the repo); it says so and exits otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "outputs" / "recipe"
TIDY = DATA / "timelines" / "tidy-text-mining"
OLD_ARCHIVE_CSV = {"id": "tweet_id", "created_at": "timestamp", "text": "text",
                   "is_retweet": "retweeted_status_id", "is_reply": "in_reply_to_status_id"}
CONGRESS = DATA / "timelines" / "congress-2016-v1.1" / "tweets"

# handle -> (importer, path, keyword arguments)
TIMELINES = {
    "smithjd": ("archive", DATA / "archives" / "smithjd" / "tweets.js", {}),
    "juliasilge": ("csv", TIDY / "juliasilge_tweets.csv", {}),
    "drob": ("csv", TIDY / "drob_tweets.csv", {}),
    "julia_archive": ("csv", TIDY / "tweets_julia.csv", {"columns": OLD_ARCHIVE_CSV}),
    "dave_archive": ("csv", TIDY / "tweets_dave.csv", {"columns": OLD_ARCHIVE_CSV}),
}

# The sweep (--grid): one axis at a time around vocabulary 4096, dropout 0.3, weight decay 0.1 at
# lr 2e-3 for 20 epochs, with GPT-2 and no input noise; then, with --set, the schedule (lr 1e-3 for
# 30 epochs, 5e-4 for 50), input noise and the architecture (model.input_noise=0.1,
# model.scratch.arch=gpt_neox), which gave the preset (conf/model/scratch.yaml; docs/scratch-recipe.md
# has every row). The old rows need --set model.scratch.arch=gpt2
# --set model.input_noise=0 now.
GRID = {
    "model.scratch.vocab_size": ["512", "1024", "2048", "8192"],
    "model.scratch.dropout": ["0.1", "0.2"],
    "optim.weight_decay": ["0.01"],
    "data.batch_size": ["8"],
}


def import_timelines(data_dir: Path, users: list[str]) -> None:
    """Write each timeline's posts to data_dir/tweets/<handle>.parquet (once)."""
    sys.path.insert(0, str(ROOT / "src"))
    from huggingtweets.ingest import posts
    from huggingtweets.ingest.sources.archive import read_archive
    from huggingtweets.ingest.sources.files import read_csv
    from huggingtweets.ingest.sources.twarc import read_twarc

    readers = {"archive": read_archive, "csv": read_csv, "twarc": read_twarc}
    for handle in users:
        if posts.tweets_path(data_dir, handle).exists():
            continue
        kind, path, kwargs = TIMELINES[handle]
        df = readers[kind](str(path), handle=handle, **kwargs)
        posts.write_posts(data_dir, handle, df, source=kind)
        print(f"imported @{handle}: {len(df):,} posts from {path.relative_to(DATA)}")


def add_congress(n: int) -> list[str]:
    """The n largest congress accounts (v1.1 user_timeline arrays, ~200 posts each), imported as
    twarc does, trained as one mix (a single account is too small to split)."""
    files = sorted(CONGRESS.glob("*.json"), key=lambda p: -p.stat().st_size)[:n]
    names = []
    for f in files:
        handle = f"congress_{f.stem}"[:15]
        TIMELINES[handle] = ("twarc", f, {})
        names.append(handle)
    return ["-".join(names)] if names else []


def run(user: str, overrides: list[str], data_dir: Path, tag: str) -> dict:
    """One `python train.py user=<user> model=scratch <overrides>`; its held-out numbers."""
    run_dir = OUT / "runs" / re.sub(r"[^A-Za-z0-9.]+", "_", "-".join([tag, *(o.split(".")[-1] for o in overrides)])) / user
    cmd = [sys.executable, str(ROOT / "train.py"), f"user={user}", "model=scratch",
           f"data.data_dir={data_dir}", "logger=csv", "eval.n=2", f"hydra.run.dir={run_dir}",
           *overrides]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.time() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return {"user": user, "error": tail[0] if tail else f"exit {proc.returncode}"}
    ev = json.loads((run_dir / "eval.json").read_text())["heldout"]["users"]["all"]
    return {"user": user, "ppl": ev["ppl"], "trigram_ppl": ev["baseline_ppl"],
            "ratio": ev["ppl_ratio"], "seconds": round(seconds, 1)}


def table() -> int:
    """Every run under outputs/recipe/runs as one Markdown table: its overrides (beyond the
    fixed ones) against each timeline's perplexity ratio to the trigram."""
    import yaml

    fixed = ("user=", "model=scratch", "data.data_dir=", "logger=", "eval.n=", "hydra.")
    cells, users = {}, []
    for ev in sorted(OUT.glob("runs/*/*/eval.json")):
        over = yaml.safe_load((ev.parent / ".hydra" / "overrides.yaml").read_text())
        key = " ".join(o for o in over if not o.startswith(fixed)) or "(preset defaults)"
        user = ev.parent.name
        users += [user] if user not in users else []
        cells[(key, user)] = json.loads(ev.read_text())["heldout"]["users"]["all"]["ppl_ratio"]
    print("| overrides of `python train.py user=H model=scratch` | " + " | ".join(users)
          + " |\n|---|" + "---|" * len(users))
    for key in dict.fromkeys(k for k, _ in cells):
        print(f"| {key} | " + " | ".join(f"{cells[(key, u)]:.3f}" if (key, u) in cells else "–"
                                         for u in users) + " |")
    return 0


def gap(run_dir: Path) -> int:
    """Where a finished run's model loses to (or beats) the trigram: the mean held-out NLL of both
    on the same next-token targets, split by the kind of token predicted."""
    import numpy as np
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from huggingtweets.publish.evaluate import KneserNeyTrigram, model_nll
    from huggingtweets.train.data import TweetDataModule

    cfg = OmegaConf.to_container(OmegaConf.load(run_dir / "config_resolved.yaml").data)
    cfg.pop("_target_")
    if not Path(cfg["data_dir"]).is_dir():  # a run made in another checkout: this one's import
        cfg["data_dir"] = str(OUT / "data")
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    dm = TweetDataModule(**cfg)
    dm.tokenizer = tok
    dm.setup()
    train, val = dm.train_set.blocks.numpy(), dm.val_set.blocks
    ours = model_nll(model, val)
    base = KneserNeyTrigram(train, len(tok)).nll(val.numpy())
    prev, target = val.numpy()[:, :-1], val.numpy()[:, 1:]
    seen = np.bincount(train.ravel(), minlength=len(tok))[target]
    # byte-level BPE marks a token that starts a word with "Ġ"
    starts = np.array([t.startswith("Ġ") for t in tok.convert_ids_to_tokens(range(len(tok)))])
    after_eos = prev == tok.eos_token_id
    kinds = {"first token of a tweet": after_eos,
             "a word's first token": starts[target] & ~after_eos,
             "inside a word (or punctuation)": ~starts[target] & ~after_eos,
             "a token seen < 5 times in training": seen < 5}
    print(f"{run_dir}: {ours.size:,} held-out tokens, model {ours.mean():.3f} vs trigram "
          f"{base.mean():.3f} nats/token\n\n| predicted token | share | model | trigram | "
          "adds to the gap |\n|---|---|---|---|---|")
    for name, m in kinds.items():
        print(f"| {name} | {m.mean():.2f} | {ours[m].mean():.3f} | {base[m].mean():.3f} | "
              f"{(ours[m] - base[m]).sum() / ours.size:+.3f} |")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", default="smithjd,juliasilge,drob,dave_archive",
                   help="comma-separated timelines (known: " + ", ".join(TIMELINES) + ")")
    p.add_argument("--congress", type=int, default=4,
                   help="also the N largest congress accounts, as one mix")
    p.add_argument("--grid", action="store_true", help="sweep GRID one axis at a time")
    p.add_argument("--set", action="append", default=[], help="an override for every run")
    p.add_argument("--json", default=str(OUT / "recipe.json"))
    p.add_argument("--table", action="store_true", help="no runs: tabulate every run in outputs/recipe")
    p.add_argument("--gap", metavar="RUN", type=Path, help="no runs: where RUN's model loses to the trigram")
    args = p.parse_args(argv)
    if args.table:
        return table()
    if args.gap:
        return gap(args.gap)
    if not DATA.is_dir():
        print(f"skipped: no real data at {DATA} (internal test data, not part of the repo)")
        return 0
    users = [u for u in args.users.split(",") if u] + add_congress(args.congress)
    data_dir = OUT / "data"
    import_timelines(data_dir, [h for u in users for h in u.split("-")])
    configs = [("defaults", list(args.set))]
    if args.grid:
        for key, values in GRID.items():
            configs += [(f"{key}={v}", [*args.set, f"{key}={v}"]) for v in values]
    results = []
    for (name, overrides), user in itertools.product(configs, users):
        r = {"config": name, **run(user, overrides, data_dir, name.replace("/", "_"))}
        results.append(r)
        shown = f"ratio {r['ratio']:.3f} (ppl {r['ppl']:.1f} vs trigram {r['trigram_ppl']:.1f}, " \
                f"{r['seconds']:.0f} s)" if "ratio" in r else f"FAILED: {r['error']}"
        print(f"{name:32s} @{user:15s} {shown}", flush=True)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print("\n| config | " + " | ".join(users) + " | geo-mean |\n|---|" + "---|" * (len(users) + 1))
    for name, _ in configs:
        got = {r["user"]: r.get("ratio") for r in results if r["config"] == name}
        ok = [v for v in got.values() if v]
        gm = math.exp(sum(map(math.log, ok)) / len(ok)) if ok else float("nan")
        cells = [f"{got[u]:.3f}" if got.get(u) else "–" for u in users]
        print(f"| {name} | " + " | ".join(cells) + f" | {gm:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
