"""The voice check: a classifier of the attribution's kind, trained to tell a user's real held-out
tweets from the model's samples. Two halves of one person's tweets are indistinguishable (~50%),
two different people are told apart; a trained run reports it in eval.json, W&B and the card,
on samples filtered as generate.py filters them."""

import json

import pytest

from huggingtweets.ingest.sources import demo
from huggingtweets.publish.evaluate import flat_metrics, summary, voice_accuracy


def _texts(handle, n):
    return list(demo.generate(handle, n)["text"])


def test_one_persons_tweets_against_themselves_are_indistinguishable():
    tweets = _texts("demo_ada", 400)
    acc = voice_accuracy(tweets[:200], tweets[200:], seed=0)
    assert 0.35 < acc < 0.65


def test_two_people_are_told_apart():
    acc = voice_accuracy(_texts("demo_ada", 200), _texts("demo_bo", 200), seed=0)
    assert acc > 0.85


def test_too_few_texts_give_no_verdict():
    assert voice_accuracy(["a b c"] * 3, ["d e f"] * 50) is None


def test_a_trained_run_reports_the_voice_check(tiny):
    ev = json.loads((tiny["run"] / "eval.json").read_text())
    v = ev["voice"]
    assert v["generated"] == v["real"] > 0 and 0 <= v["accuracy"] <= 1
    assert v["generated"] <= v["cap"]
    assert v["filtered"] == {"copies": True, "empty": True}
    assert flat_metrics(ev)["eval/voice_accuracy"] == pytest.approx(v["accuracy"])
    assert "voice check" in summary(ev)
    card = (tiny["model"] / "README.md").read_text()
    assert f"{v['accuracy'] * 100:.0f}%" in card and "indistinguishable" in card
