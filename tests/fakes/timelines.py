"""Cached timelines for the training tests: a user's posts written as `fetch.py` would, and a
TweetDataModule over them with a small BPE tokenizer."""

import pandas as pd

from fakes.configs import DATA
from huggingtweets.ingest import posts
from huggingtweets.train import data
from huggingtweets.train.tokenizer import train_tokenizer

CLEAN = {"preset": "default", "dedupe": True, "min_chars": 0}


def write_user(data_dir, handle, n, words="alpha beta gamma delta", start="2022-01-01"):
    rows = [
        {
            "id": str(1000 + i),
            "created_at": pd.Timestamp(start, tz="UTC") + pd.Timedelta(hours=i),
            "text": f"{handle} says {words} number {i} today",
            "handle": handle,
        }
        for i in range(n)
    ]
    posts.write_posts(data_dir, handle, pd.DataFrame(rows), source="test")


def make_dm(tmp_path, user, **kw):
    dm = data.TweetDataModule(user=user, clean=CLEAN, data_dir=str(tmp_path), **{**DATA, **kw})
    dm.tokenizer = train_tokenizer(dm.train_texts, vocab_size=300)
    return dm
