"""After training: does the bot sound like the person, does it just parrot them, whose voice is it?

`evaluate_run` (train.py, rank zero, after the export) measures the held-out loss per user against
an interpolated Kneser-Ney trigram baseline on the same tokens; and from samples of fixed prompts
and seed, memorization (copies of training tweets, `generate.CopyCheck`), diversity against real
held-out tweets, the voice check (can a classifier tell samples from real tweets?) and, for mixes, attribution (whose style a classifier finds in each sample). It
writes eval.json, predictions.jsonl and predictions.png (tweet cards) and returns the results.
"""

import json
import math
import re
import time
from collections.abc import Mapping
from itertools import zip_longest
from pathlib import Path

import numpy as np
import torch

from huggingtweets.ingest.clean import DENSE_SCRIPT
from huggingtweets.publish.generate import COPY_INDEX, CopyCheck, Generator
from huggingtweets.publish.plots import fonts, render_cards

BASELINE = "interpolated Kneser-Ney trigram model over the same training token ids"


def _find(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `query` in the sorted `keys`, and whether each was found."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=np.int64), np.zeros(len(query), dtype=bool)
    i = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return i, keys[i] == query


def _discount(counts: np.ndarray) -> float:
    """Chen & Goodman's estimate D = n1 / (n1 + 2 n2) from the counts of counts."""
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return float(np.clip(n1 / (n1 + 2 * n2), 0.05, 0.95)) if n1 + n2 else 0.75


def _contexts(keys: np.ndarray, counts: np.ndarray, base: int):
    """Per context (key // base): its sorted keys, total count and number of distinct followers."""
    ctx, inv = np.unique(keys // base, return_inverse=True)
    return ctx, np.bincount(inv, weights=counts), np.bincount(inv).astype(np.float64)


class KneserNeyTrigram:
    """Interpolated Kneser-Ney trigram LM over token ids (Chen & Goodman 1999), one discount per
    order. Each block is read like the model reads it: a start symbol, then its tokens, so no
    n-gram spans two blocks. The lowest order is interpolated with a uniform distribution over
    the vocabulary, so every token has a probability and the perplexity is finite.

        P3(w|u,v) = max(c(uvw) - D3, 0) / c(uv.) + D3 N(uv.) / c(uv.) * P2(w|v)
        P2(w|v)   = max(N(.vw) - D2, 0) / N(.v.) + D2 N(v.) / N(.v.) * P1(w)      (continuation counts)
        P1(w)     = max(N(.w) - D1, 0) / N(..)   + D1 N(w>0) / N(..) / V
    """

    def __init__(self, blocks: np.ndarray, vocab_size: int):
        self.vocab = int(vocab_size)
        self.base = base = self.vocab + 1  # token ids, plus the start symbol `vocab_size`
        u, v, w = self._trigrams(blocks)
        self.tri, c3 = np.unique((u * base + v) * base + w, return_counts=True)
        self.c3, self.d3 = c3.astype(np.float64), _discount(c3)
        self.ctx3, self.tot3, self.typ3 = _contexts(self.tri, self.c3, base)
        # Continuation counts: in how many distinct contexts each shorter n-gram follows.
        self.bi, n2 = np.unique(self.tri % (base * base), return_counts=True)
        self.n2, self.d2 = n2.astype(np.float64), _discount(n2)
        self.ctx2, self.tot2, self.typ2 = _contexts(self.bi, self.n2, base)
        self.uni, n1 = np.unique(self.bi % base, return_counts=True)
        self.n1, self.d1 = n1.astype(np.float64), _discount(n1)
        self.bigram_types = max(len(self.bi), 1)

    def _trigrams(self, blocks: np.ndarray):
        b = np.asarray(blocks, dtype=np.int64)
        p = np.concatenate([np.full((len(b), 1), self.vocab, dtype=np.int64), b], axis=1)
        return p[:, :-2].ravel(), p[:, 1:-1].ravel(), p[:, 2:].ravel()

    def prob(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        base = self.base
        i, hit = _find(self.uni, w)
        p = (np.maximum(np.where(hit, self.n1[i], 0) - self.d1, 0)
             + self.d1 * len(self.uni) / self.vocab) / self.bigram_types
        for (grams, counts, d, ctx, tot, typ), key, context in (
            ((self.bi, self.n2, self.d2, self.ctx2, self.tot2, self.typ2), v * base + w, v),
            ((self.tri, self.c3, self.d3, self.ctx3, self.tot3, self.typ3),
             (u * base + v) * base + w, u * base + v),
        ):
            i, hit = _find(grams, key)
            j, seen = _find(ctx, context)
            total = np.where(seen, tot[j], 1.0)
            higher = (np.maximum(np.where(hit, counts[i], 0) - d, 0) + d * typ[j] * p) / total
            p = np.where(seen, higher, p)
        return p

    def nll(self, blocks: np.ndarray) -> np.ndarray:
        """Negative log-likelihood of every next token of every block: shape (n, block_size - 1)."""
        u, v, w = self._trigrams(blocks)
        return -np.log(self.prob(u, v, w)).reshape(len(blocks), -1)


@torch.no_grad()
def model_nll(model, blocks: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Per-token NLL of the next-token targets, exactly as validation computes it (token_nll)."""
    from huggingtweets.train.module import token_nll

    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = [token_nll(model, blocks[i : i + batch_size].to(device)).double().cpu().numpy()
           for i in range(0, len(blocks), batch_size)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, blocks.shape[1] - 1))


def heldout(model, dm) -> dict:
    """val loss/ppl per user and overall, the model's and the baseline's, on the same tokens."""
    vocab = int(model.get_output_embeddings().weight.shape[0])
    ngram = KneserNeyTrigram(dm.train_set.blocks.numpy(), vocab)
    blocks, users = dm.val_set.blocks, dm.val_set.user_idx.numpy()
    ours, base = model_nll(model, blocks, dm.batch_size), ngram.nll(blocks.numpy())
    rows = {}
    for key, mask in [("all", np.ones(len(users), bool)),
                      *((h, users == i) for i, h in enumerate(dm.handles))]:
        loss, bloss = float(ours[mask].mean()), float(base[mask].mean())
        rows[key] = {"tokens": int(ours[mask].size), "loss": loss, "ppl": math.exp(min(loss, 50)),
                     "baseline_loss": bloss, "baseline_ppl": math.exp(min(bloss, 50)),
                     # < 1: the model is better; 0.6 means a 40% lower perplexity than the baseline
                     "ppl_ratio": math.exp(min(loss - bloss, 50))}
    return {"baseline": BASELINE, "discounts": [ngram.d1, ngram.d2, ngram.d3], "users": rows}


_WORD = re.compile(rf"{DENSE_SCRIPT.pattern}|(?:(?!{DENSE_SCRIPT.pattern})\S)+")


def words(text: str) -> list[str]:
    """Whitespace-separated words, and each letter of scripts written without spaces."""
    return _WORD.findall(text.casefold())


def diversity(texts: list[str]) -> dict:
    """distinct-n: unique n-grams of words / all n-grams of words, over all the texts together."""
    toks = [words(t) for t in texts]
    out = {"texts": len(texts), "mean_words": float(np.mean([len(t) for t in toks])) if toks else 0.0}
    for n in (1, 2):
        grams = [tuple(t[i : i + n]) for t in toks for i in range(len(t) - n + 1)]
        out[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else 0.0
    return out


def mix_shares(dm) -> dict[str, float]:
    """Each user's share of one training epoch's characters (after oversampling)."""
    stats = getattr(dm, "stats", None) or {}
    chars = stats.get("epoch_chars") or {h: int(dm.train[h]["text"].str.len().sum()) for h in dm.handles}
    total = sum(chars.values()) or 1
    return {h: chars[h] / total for h in dm.handles}


def char_classifier(seed: int = 0):
    """The evaluation's text classifier: character 1-4-gram TF-IDF + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                                         min_df=2, lowercase=False, max_features=100_000),
                         LogisticRegression(max_iter=2000, class_weight="balanced",
                                            random_state=seed))


VOICE = ("char 1-4-gram TF-IDF + logistic regression telling real held-out tweets from samples, "
         "5-fold cross-validated on equal numbers of each")


def voice_accuracy(real: list[str], generated: list[str], seed: int = 0,
                   folds: int = 5) -> float | None:
    """How well `char_classifier` tells `real` texts from `generated` ones: its cross-validated
    accuracy on equal numbers of each (0.5: indistinguishable, 1.0: always told apart); None
    with fewer than `folds` texts of either kind. Whitespace is made single spaces in both, as
    samples are cut at their first newline."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    k = min(len(real), len(generated))
    if k < folds:
        return None
    rng = np.random.default_rng(seed)

    def pick(texts):
        return [" ".join(texts[i].split()) for i in rng.permutation(len(texts))[:k]]

    x, y = pick(real) + pick(generated), [0] * k + [1] * k
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(char_classifier(seed), x, y, cv=cv).mean())


def voice_check(gen: Generator, dm, c: dict) -> dict | None:
    """Does it sound like the person? Up to `voice_samples` tweets started from nothing (the
    empty prompt: no prompt words to give them away), filtered as generate.py filters them (no
    copies of training tweets, no empty ones), against as many real held-out tweets."""
    cap = int(c["voice_samples"])
    if cap <= 0:
        return None
    samples = gen.sample([""], n=cap, temperature=c["temperature"], top_p=c["top_p"],
                         top_k=c["top_k"], max_new_tokens=c["max_new_tokens"],
                         seed=c["seed"] + 1, filter_copies=True, keep_empty=False)
    generated = [s["text"] for s in samples]
    real = [t for h in dm.handles for t in dm.val[h]["text"]]
    k = min(len(real), len(generated))
    return {"classifier": VOICE, "accuracy": voice_accuracy(real, generated, c["seed"]),
            "chance": 0.5, "real": k, "generated": k, "cap": cap,
            "filtered": {"copies": gen.copies is not None, "empty": True},
            "dropped": dict(gen.dropped)}


def attribution(dm, samples: list[dict], seed: int = 0) -> dict:
    """Whose style is each sample? A character 1-4-gram TF-IDF + logistic regression trained on
    each user's training tweets; its balanced accuracy on the held-out tweets says how much to
    trust it. Classifies the generated continuation (the prompt is the same for everyone)."""
    from sklearn.metrics import balanced_accuracy_score

    handles = dm.handles
    x = [t for h in handles for t in dm.train[h]["text"]]
    y = [h for h in handles for _ in range(len(dm.train[h]))]
    clf = char_classifier(seed)
    clf.fit(x, y)
    vx = [t for h in handles for t in dm.val[h]["text"]]
    vy = [h for h in handles for _ in range(len(dm.val[h]))]
    accuracy = float(balanced_accuracy_score(vy, clf.predict(vx)))
    conts = [(i, s["text"][len(s["prompt"]):].strip() or s["text"]) for i, s in enumerate(samples)]
    conts = [(i, c) for i, c in conts if c]
    preds = clf.predict([c for _, c in conts]) if conts else []
    for (i, _), p in zip(conts, preds, strict=True):
        samples[i]["attributed"] = str(p)
    counts = {h: int(sum(p == h for p in preds)) for h in handles}
    n = max(len(preds), 1)
    shares, mix = {h: counts[h] / n for h in handles}, mix_shares(dm)
    out = {"classifier": "char 1-4-gram TF-IDF + logistic regression on the training tweets",
           "heldout_balanced_accuracy": accuracy, "chance": 1 / len(handles),
           "samples": len(preds), "counts": counts, "shares": shares, "mix": mix,
           # total variation distance between the two distributions: 0 = identical, 1 = disjoint
           "tv_distance": 0.5 * sum(abs(shares[h] - mix[h]) for h in handles)}
    requested = [(s.get("user"), s.get("attributed")) for s in samples if s.get("attributed")]
    if any(u for u, _ in requested):  # author conditioning: did user= produce that user's style?
        out["conditioning_accuracy"] = sum(u == a for u, a in requested) / len(requested)
    return out


def _cfg(cfg: Mapping | None) -> dict:
    from omegaconf import DictConfig, OmegaConf

    d = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {k: v for k, v in d.items() if k != "enabled"}  # conf/eval/default.yaml's settings


def flat_metrics(results: dict) -> dict[str, float]:
    """The headline numbers under eval/ for W&B's summary."""
    out = {}
    for key, row in results["heldout"]["users"].items():
        sfx = "" if key == "all" else f"_{key}"
        for m in ("loss", "ppl", "baseline_ppl", "ppl_ratio"):
            out[f"eval/{m}{sfx}"] = row[m]
    s = results["samples"]
    out.update({f"eval/{k}": s[k] for k in ("memorized", "memorized_exact", "empty")})
    for k in ("distinct_1", "distinct_2", "mean_words"):
        out[f"eval/{k}"], out[f"eval/real_{k}"] = s["generated"][k], s["real"][k]
    if (results.get("voice") or {}).get("accuracy") is not None:
        out["eval/voice_accuracy"] = results["voice"]["accuracy"]
    a = results.get("attribution")
    if a:
        out["eval/attribution_accuracy"] = a["heldout_balanced_accuracy"]
        out["eval/attribution_tv"] = a["tv_distance"]
        out.update({f"eval/attributed_{h}": v for h, v in a["shares"].items()})
    return out


def evaluate_run(module, dm, cfg: Mapping | None, run_dir: str | Path,
                 model_dir: str | Path | None = None, copies: CopyCheck | None = None) -> dict:
    """Evaluate `module` (.model and .tokenizer, or an exported model dir) on the set-up `dm`;
    write eval.json, predictions.jsonl and the copy index to `run_dir`, predictions.png to
    `model_dir`."""
    c = _cfg(cfg)
    t0 = time.time()
    run_dir = Path(run_dir)
    model_dir = Path(model_dir) if model_dir else run_dir / "model"
    if isinstance(module, (str, Path)):
        loaded = Generator.from_dir(module, copy_index=None)
        model, tok = loaded.model, loaded.tok
    else:
        model, tok = module.model, module.tokenizer
    results = {"heldout": heldout(model, dm)}

    if copies is None:  # generate.py and the demo then apply this very check
        copies = CopyCheck.build(dm.train_texts, tok, c["copy_ngram"])
        copies.save(run_dir / COPY_INDEX)
    gen = Generator(model, tok, copies)
    voices = [u for u in gen.users if u in dm.handles] or [None]  # author conditioning: each user
    per_voice = max(1, math.ceil(c["n"] / len(voices)))
    samples = []
    for k, voice in enumerate(voices):
        samples += gen.sample(c["prompts"], n=per_voice, temperature=c["temperature"],
                              top_p=c["top_p"], top_k=c["top_k"], max_new_tokens=c["max_new_tokens"],
                              seed=c["seed"] + k, filter_copies=False, keep_empty=True, user=voice)
    texts = [s["text"] for s in samples if s["text"]]
    real = [t for h in dm.handles for t in dm.val[h]["text"]]
    rng = np.random.default_rng(c["seed"])
    real_sample = [real[i] for i in rng.permutation(len(real))[: len(texts)]]
    n = max(len(samples), 1)
    results["samples"] = {
        "n": len(samples), "prompts": c["prompts"], "per_prompt": per_voice * len(voices),
        "seed": c["seed"], "temperature": c["temperature"], "top_p": c["top_p"],
        "top_k": c["top_k"], "max_new_tokens": c["max_new_tokens"],
        "copy_rule": "equal to a training tweet after normalization (case, punctuation, emoji, "
                     f"spacing), or sharing a run of at least {c['copy_ngram']} consecutive "
                     "tokens with one",
        "copy_ngram": c["copy_ngram"],
        "memorized": sum(bool(s["copy"]) for s in samples) / n,
        "memorized_exact": sum(s["copy"] == "exact" for s in samples) / n,
        "empty": sum(not s["text"] for s in samples) / n,
        "generated": diversity(texts),
        "real": {**diversity(real_sample), "mean_words": diversity(real)["mean_words"]},
    }
    results["attribution"] = attribution(dm, samples, c["seed"]) if len(dm.handles) > 1 else None
    results["voice"] = voice_check(gen, dm, c)
    results["predictions"] = samples

    cards = [{"handle": s.get("attributed") or s.get("user") or dm.handles[0], "text": s["text"]}
             for s in _pick(samples, c["picture_samples"])]
    for card in cards:
        card["name"] = dm.meta.get(card["handle"], {}).get("display_name") or card["handle"]
    model_dir.mkdir(parents=True, exist_ok=True)
    png = render_cards(cards, model_dir / "predictions.png")
    results["picture"] = png.name if png else None
    results["seconds"] = round(time.time() - t0, 2)
    (run_dir / "eval.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (run_dir / "predictions.jsonl").write_text(
        "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    print(summary(results))
    return results


def _pick(samples: list[dict], k: int) -> list[dict]:
    """Up to k non-copies, non-empty, one prompt after the other so the prompts all show; within
    a prompt, those the installed fonts draw best first (fewest letters left out)."""
    chars = fonts()[1]
    good = [s for s in samples if s["text"] and not s["copy"]]
    good.sort(key=lambda s: sum(ord(ch) not in chars for ch in s["text"]))  # stable
    by_prompt: dict[str, list[dict]] = {s["prompt"]: [] for s in samples}  # the prompts' order
    for s in good:
        by_prompt[s["prompt"]].append(s)
    rounds = zip_longest(*by_prompt.values())  # the first of each prompt, then the second, ...
    return [s for rank in rounds for s in rank if s is not None][:k]


def summary(results: dict) -> str:
    row, s = results["heldout"]["users"]["all"], results["samples"]
    ratio = row["ppl_ratio"]
    verdict = f"{(1 - ratio) * 100:.0f}% lower" if ratio < 1 else f"{ratio:.1f}x higher: worse"
    lines = [f"eval: val/ppl {row['ppl']:.2f} vs {row['baseline_ppl']:.2f} for a Kneser-Ney "
             f"trigram ({verdict})",
             f"eval: {s['n']} samples, {s['memorized']:.0%} copy a training tweet, distinct-2 "
             f"{s['generated']['distinct_2']:.2f} (real {s['real']['distinct_2']:.2f}), "
             f"{s['generated']['mean_words']:.1f} words (real {s['real']['mean_words']:.1f})"]
    v = results.get("voice") or {}
    if v.get("accuracy") is not None:
        lines.append(f"eval: voice check: a classifier tells {v['generated']} samples from as many "
                     f"real held-out tweets {v['accuracy']:.0%} of the time (50%: indistinguishable)")
    a = results.get("attribution")
    if a:
        shares = ", ".join(f"{h} {a['shares'][h]:.0%} (mix {a['mix'][h]:.0%})" for h in a["shares"])
        lines.append(f"eval: attributed {shares}; classifier accuracy "
                     f"{a['heldout_balanced_accuracy']:.0%}")
        if "conditioning_accuracy" in a:
            lines.append(f"eval: user= samples attributed to that user: "
                         f"{a['conditioning_accuracy']:.0%} (chance {a['chance']:.0%})")
    return "\n".join(lines)
