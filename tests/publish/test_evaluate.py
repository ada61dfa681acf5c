"""The evaluation: the n-gram baseline is a distribution, the held-out loss matches val/loss, and a
run dir gets eval.json, predictions and the picture.

The trained `tiny` run (conftest.py) is built once per test run and shared with test_generate,
test_card, test_app, test_push and test_export.
"""

import json

import numpy as np
import pytest
from conftest import EVAL

from huggingtweets.publish.evaluate import KneserNeyTrigram, diversity, words
from huggingtweets.publish.generate import COPY_INDEX, CopyCheck


def test_kneser_ney_is_a_distribution_for_seen_and_unseen_contexts():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 20, size=(40, 16))
    blocks[:, ::3] = 7  # some structure to learn
    lm = KneserNeyTrigram(blocks, vocab_size=60)
    w = np.arange(60)
    for u, v in [(7, 3), (60, 7), (45, 46), (60, 45)]:  # seen, block start, unseen, unseen start
        p = lm.prob(np.full(60, u), np.full(60, v), w)
        assert p.sum() == pytest.approx(1.0, abs=1e-9) and (p > 0).all()
    # it learns: the training blocks are likelier than fresh random ones, and beat uniform
    assert lm.nll(blocks).mean() < np.log(20) < lm.nll(rng.integers(0, 20, size=(5, 16))).mean()
    assert lm.nll(blocks).shape == (40, 15)  # one NLL per next-token target, like val/loss


def test_kneser_ney_backs_off_to_the_shorter_context():
    # "2 3" follows many different tokens; after the unseen pair "39 2", 3 must stay likely
    blocks = np.array([[u, 2, 3, u + 1] for u in range(10, 30)] * 2 + [[5, 6, 7, 8]] * 5)
    lm = KneserNeyTrigram(blocks, vocab_size=40)
    assert lm.prob(np.array([39]), np.array([2]), np.array([3]))[0] > 0.5
    assert lm.prob(np.array([5]), np.array([6]), np.array([7]))[0] > 0.8
    assert lm.prob(np.array([39]), np.array([2]), np.array([7]))[0] < 0.05


def test_diversity_and_words():
    assert words("Hello World 今日は") == ["hello", "world", "今", "日", "は"]
    d = diversity(["a b a b", "a b c"])
    assert d["distinct_1"] == pytest.approx(3 / 7) and d["distinct_2"] == pytest.approx(3 / 5)
    assert d["mean_words"] == pytest.approx(3.5)


# -- the whole evaluation on a trained run ---------------------------------------------------

def test_evaluation_of_a_trained_mix(tiny):
    run, model, results = tiny["run"], tiny["model"], tiny["results"]
    ev = json.loads((run / "eval.json").read_text())
    assert ev["samples"]["n"] == results["samples"]["n"] == 4 * 3
    users = ev["heldout"]["users"]
    # the same tokens and targets as val/loss: the two computations agree
    assert users["all"]["loss"] == pytest.approx(tiny["metrics"]["val/loss"], abs=1e-4)
    assert users["demo_bo"]["loss"] == pytest.approx(tiny["metrics"]["val/loss_demo_bo"], abs=1e-4)
    assert set(users) == {"all", "demo_ada", "demo_bo"}
    for row in users.values():
        assert row["tokens"] > 0 and 1 < row["baseline_ppl"] < 512 and 1 < row["ppl"] < 512
        assert row["ppl_ratio"] == pytest.approx(row["ppl"] / row["baseline_ppl"], rel=1e-6)
    s = ev["samples"]
    assert 0 <= s["memorized_exact"] <= s["memorized"] <= 1 and "8 consecutive tokens" in s["copy_rule"]
    assert 0 < s["real"]["distinct_2"] <= 1 and s["real"]["mean_words"] > 3
    a = ev["attribution"]
    assert sum(a["shares"].values()) == pytest.approx(1) and sum(a["mix"].values()) == pytest.approx(1)
    assert a["mix"]["demo_ada"] == pytest.approx(0.5, abs=0.05)  # balanced mix
    assert a["heldout_balanced_accuracy"] > 0.8  # the two personas are easy to tell apart
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == s["n"] and {p["prompt"] for p in preds} == set(EVAL["prompts"])
    # the picture: a real PNG in the model dir (the card shows it); the index beside the model
    png = model / "predictions.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    assert (run / COPY_INDEX).exists() and not (model / COPY_INDEX).exists()
    # memorization is the copy check's verdict on each sample
    cc = CopyCheck.load(run / COPY_INDEX)
    tok = tiny["module"].tokenizer
    assert [p["copy"] for p in preds] == [cc.check(p["text"], tok) if p["text"] else None for p in preds]


def test_a_model_that_copies_is_caught(tiny):
    """Samples equal to training tweets count as memorized (the check the evaluation uses)."""
    dm, tok = tiny["dm"], tiny["module"].tokenizer
    # the tiny model's 512-entry BPE cuts a word into ~3 tokens: 16 of them span about what the
    # product's 8 do with its 2,048-4,096-entry vocabularies (~6 words)
    cc = CopyCheck.build(dm.train_texts, tok, 16)
    tweets = list(dm.train["demo_ada"]["text"][:20])
    assert all(cc.check(t, tok) for t in tweets)
    assert all(cc.check("so " + t + " indeed", tok) for t in tweets if len(tok(t)["input_ids"]) >= 16)
    held_out = [t for h in dm.handles for t in dm.val[h]["text"] if not cc.check(t, tok)]
    assert held_out, "every held-out tweet flagged as a copy: the check is far too loose"


def test_eval_config_group_composes_and_none_skips(compose_cfg):
    cfg = compose_cfg("user=demo_ada")
    assert cfg.eval.enabled and cfg.eval.copy_ngram == 8 and "" in cfg.eval.prompts
    assert compose_cfg("user=demo_ada", "eval=none").eval.enabled is False


def test_evaluating_an_exported_model_dir_gives_the_same_numbers(tiny, tmp_path):
    from huggingtweets.publish.evaluate import evaluate_run

    again = evaluate_run(tiny["model"], tiny["dm"], EVAL, tmp_path, tmp_path / "model")
    assert again["heldout"] == tiny["results"]["heldout"]
    assert [s["text"] for s in again["predictions"]] == [s["text"] for s in tiny["results"]["predictions"]]
    assert (tmp_path / "eval.json").exists() and (tmp_path / "model" / "predictions.png").exists()
