"""ingest/sources/demo.py: the demo personas are deterministic, distinct and as messy as real
timelines."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import COLUMNS
from huggingtweets.ingest.sources import demo

# --- demo personas --------------------------------------------------------------------------

N = 400  # posts per persona: the config's 800 would only make the tests slower


@pytest.fixture(scope="module")
def personas() -> dict[str, pd.DataFrame]:
    return {handle: demo.generate(handle, N) for handle in demo.PERSONAS}


def test_demo_is_deterministic(personas):
    again = demo.generate("demo_ada", N)
    pd.testing.assert_frame_equal(personas["demo_ada"], again)
    assert personas["demo_ada"].to_json() == again.to_json()
    assert not demo.generate("demo_ada", N, seed=1)["text"].equals(personas["demo_ada"]["text"])
    assert len(demo.generate("demo_bo", n=50)) == 50


def test_demo_schema_and_time_order(personas):
    for handle, df in personas.items():
        assert list(df.columns) == list(COLUMNS)
        assert len(df) == N
        assert (df["handle"] == handle).all() and (df["source"] == "demo").all()
        assert df["created_at"].is_monotonic_increasing and df["created_at"].is_unique
        assert df["created_at"].min() >= pd.Timestamp("2021-01-01", tz="UTC")
        assert df["id"].str.isdigit().all() and df["id"].astype(int).is_monotonic_increasing
        assert df["id"].is_unique
    all_ids = pd.concat([df["id"] for df in personas.values()])
    assert all_ids.is_unique  # a mix of personas never collides


def test_demo_personas_are_distinct(personas):
    ada, bo, cy = (personas[h] for h in ("demo_ada", "demo_bo", "demo_cy"))
    assert not set(ada["text"]) & set(bo["text"]) - {"lol"}

    def share(df, pattern):
        return df["text"].str.contains(pattern, regex=True).mean()

    assert share(bo, "!!!") > 0.2 and share(ada, "!!!") < 0.05
    assert share(bo, "#") > 0.2 and share(cy, "#") == 0
    assert share(ada, "coffee|espresso|cortado|brew|moon|jupiter|saturn|orion") > 0.2
    assert share(cy, "[\u3040-\u30ff\u4e00-\u9fff]") > 0.2 and share(ada, "[\u4e00-\u9fff]") == 0
    # ada writes lowercase; bo shouts
    originals = ada[~(ada["is_retweet"] | ada["is_quote"])]["text"]
    originals = originals.str.replace(r"https://t\.co/\w+", "", regex=True)  # links are mixed-case
    assert (originals == originals.str.lower()).mean() > 0.9
    assert share(bo, r"\b[A-Z]{4,}\b") > 0.5


def test_demo_contains_the_mess_of_real_timelines(personas):
    for handle, df in personas.items():
        text = df["text"]
        rt = df["is_retweet"].mean()
        assert 0.04 < rt < 0.13, handle
        assert text[df["is_retweet"]].str.startswith("RT @").all()
        assert 0.08 < df["is_reply"].mean() < 0.22, handle
        assert text[df["is_reply"]].str.startswith("@").all()
        assert df["is_quote"].sum() >= 3
        assert text.str.contains("https://t.co/").sum() > 20
        assert text.str.contains(r"\nhttps://t\.co/\w+$", regex=True).any()  # own line
        assert text.str.contains(r"https://t\.co/\w+ \S", regex=True).any()  # mid-text
        assert text.str.contains("&amp;").any()
        assert text.str.contains("&lt;|&gt;", regex=True).any()
        assert text.str.contains("[\U0001f300-\U0001faff\u2600-\u27bf]", regex=True).any()  # emoji
        assert text.str.contains("  ").any() and text.str.contains("\n").any()
        assert (text.str.len() < 15).sum() >= 5  # short ones like "lol"
        assert text.duplicated().sum() >= 2
        plain = df[~(df["is_retweet"] | df["is_reply"] | df["is_quote"])]["text"]
        assert plain.duplicated().sum() >= 2  # exact duplicates of real posts, not just "lol"
        assert text.nunique() > 300
        assert 40 <= text.str.len().median() <= 200
        # plenty left after dropping retweets, links and mentions
        cleaned = text[~df["is_retweet"]].str.replace(r"https://t\.co/\w+|@\w+", "", regex=True)
        assert cleaned.str.len().sum() > 6000


@pytest.mark.parametrize("handle", sorted(demo.PERSONAS))
def test_a_post_keeps_to_one_topic(handle):
    """The structure a trigram cannot see: every slot a topic narrows is filled from the same
    topic within one post (what lets the demo model beat its trigram)."""
    style = demo.STYLES[handle]
    slots = sorted(set.intersection(*(set(t) for t in style.topics)))
    assert len(style.topics) >= 3 and len(slots) >= 3
    template = "|".join(f"{{{s}}}" for s in slots)
    rng, seen = random.Random(0), set()
    for _ in range(300):
        words = demo._fill(template, style, rng).split("|")
        topics = [i for i, t in enumerate(style.topics)
                  if all(w in t[s] for s, w in zip(slots, words, strict=True))]
        assert topics, f"{handle}: {dict(zip(slots, words))} mixes topics"
        seen.update(topics)
    assert seen == set(range(len(style.topics)))  # and every topic is used


def test_demo_japanese(personas):
    cy = personas["demo_cy"]
    ja = cy[cy["lang"] == "ja"]
    assert len(ja) > 50 and set(cy["lang"]) == {"en", "ja"}
    assert ja["text"].str.contains("。").any()
    assert set(personas["demo_ada"]["lang"]) == {"en"}


def test_demo_unknown_persona():
    with pytest.raises(UserError) as err:
        demo.generate("demo_zed", N)
    message = str(err.value)
    assert all(h in message for h in ("demo_ada", "demo_bo", "demo_cy"))
    assert len(demo.generate("@Demo_Ada", n=5)) == 5
