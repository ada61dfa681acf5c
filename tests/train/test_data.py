"""train/data.py, the TweetDataModule: packing, splitting, mixing, author conditioning and the
token cache; it never fetches."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch
from fakes.configs import DATA
from fakes.servers import TOKEN
from fakes.timelines import CLEAN, make_dm, write_user

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.train import data, tokenizer
from huggingtweets.train.tokenizer import train_tokenizer


def packed(tweets: list[list[int]], order: list[int], block: int, eos: int) -> list[list[int]]:
    """The packing rule written plainly, as the oracle: EOS before each tweet taken in `order`,
    one stream, cut into full blocks, the ragged tail dropped."""
    stream = [tok for i in order for tok in [eos, *tweets[i]]]
    return [stream[k:k + block] for k in range(0, len(stream) - block + 1, block)]


def flat(tweets: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Tweets as pack_flat takes them: one id array and the offsets of each tweet."""
    ids = np.array([i for t in tweets for i in t], dtype=np.int32)
    return ids, np.concatenate([[0], np.cumsum([len(t) for t in tweets])]).astype(np.int64)


def test_pack_puts_eos_before_every_tweet_and_cuts_full_blocks():
    tweets = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
    blocks = data.pack_flat(*flat(tweets), range(len(tweets)), block_size=4, eos_id=0)
    stream = [0, 1, 2, 3, 0, 4, 5, 0, 6, 7, 8, 9, 0, 10]
    assert blocks.shape == (3, 4)  # 14 tokens -> 3 full blocks, the 2-token tail dropped
    assert blocks.flatten().tolist() == stream[:12]
    assert blocks.dtype == torch.long


def test_split_by_time_puts_the_newest_tweets_in_validation(tmp_path):
    write_user(tmp_path, "alice", 50)
    dm = make_dm(tmp_path, "alice", val_share=0.2)
    train, val = dm.train["alice"], dm.val["alice"]
    assert len(val) == 10 and len(train) == 40
    assert train["created_at"].max() < val["created_at"].min()
    assert not set(train["id"]) & set(val["id"])


def test_random_split_is_deterministic_and_disjoint(tmp_path):
    write_user(tmp_path, "alice", 60)
    a = make_dm(tmp_path, "alice", split="random", seed=7)
    b = make_dm(tmp_path, "alice", split="random", seed=7)
    c = make_dm(tmp_path, "alice", split="random", seed=8)
    assert list(a.val["alice"]["id"]) == list(b.val["alice"]["id"])
    assert list(a.val["alice"]["id"]) != list(c.val["alice"]["id"])
    assert not set(a.train["alice"]["id"]) & set(a.val["alice"]["id"])
    assert len(a.train["alice"]) + len(a.val["alice"]) == 60


def test_balanced_mix_oversamples_the_smaller_user_to_the_same_characters():
    chars = {"big": 10_000, "small": 2_500}
    assert data.mix_counts(chars, "natural", None) == chars
    assert data.mix_counts(chars, "balanced", None) == {"big": 10_000, "small": 10_000}
    w = data.mix_counts(chars, "weights", {"big": 1, "small": 3})
    assert w["small"] / (w["big"] + w["small"]) == pytest.approx(0.75, abs=1e-3)
    assert w["big"] >= 10_000  # never drops anyone's tweets
    with pytest.raises(UserError, match="weight for every user"):
        data.mix_counts(chars, "weights", {"big": 1})


def test_oversample_reaches_the_target_and_repeats_every_tweet_evenly():
    order = data.oversample([10] * 7, 210, np.random.default_rng(0))
    assert len(order) == 21 and sorted(order) == sorted(list(range(7)) * 3)
    assert list(order[:7]) != list(range(7)) or list(order[7:14]) != list(range(7))  # shuffled
    # stops at the tweet that reaches the target, within a pass
    order = data.oversample([5, 50, 500], 556, np.random.default_rng(1))
    lengths = np.array([5, 50, 500])[order]
    assert lengths.sum() >= 556 and lengths[:-1].sum() < 556 and len(order) == 4
    assert len(data.oversample([3, 4], 0, np.random.default_rng(0))) == 0


def test_weighted_mix_is_respected_in_the_packed_training_tokens(tmp_path):
    write_user(tmp_path, "alice", 200, words="apples apples apples")
    write_user(tmp_path, "bob", 40, words="bananas bananas bananas", start="2023-01-01")
    dm = make_dm(tmp_path, "alice-bob", mix="weights", weights={"alice": 1, "bob": 1},
                 block_size=16)
    dm.setup("fit")
    text = dm.tokenizer.decode(dm.train_set.blocks.flatten())
    a, b = text.count("apples"), text.count("bananas")
    assert b / (a + b) == pytest.approx(0.5, abs=0.05)


def test_each_user_has_its_own_validation_blocks(tmp_path):
    write_user(tmp_path, "alice", 100)
    write_user(tmp_path, "bob", 100)
    dm = make_dm(tmp_path, "alice-bob", block_size=16)
    dm.setup("fit")
    users = dm.val_set.user_idx.unique().tolist()
    assert users == [0, 1]
    assert (dm.train_set.blocks[:, 0] >= 0).all()
    assert dm.train_set.blocks.shape[1] == 16


def test_token_cache_is_reused_and_keyed_by_the_texts(tmp_path, monkeypatch):
    write_user(tmp_path, "alice", 80)
    dm = make_dm(tmp_path, "alice", block_size=16)
    dm.setup("fit")
    cached = list((tmp_path / "cache").glob("tokens-*.npz"))
    assert len(cached) == 1
    dm2 = make_dm(tmp_path, "alice", block_size=16)
    calls = []
    monkeypatch.setattr(type(dm2.tokenizer), "__call__", lambda *a, **k: calls.append(1))
    dm2.setup("fit")
    assert not calls, "a warm cache must not tokenize again"
    assert torch.equal(dm.train_set.blocks, dm2.train_set.blocks)
    monkeypatch.undo()
    dm3 = make_dm(tmp_path, "alice", block_size=16, val_share=0.3)  # other texts -> other key
    dm3.setup("fit")
    assert len(list((tmp_path / "cache").glob("tokens-*.npz"))) == 2


def test_epoch_shuffle_depends_only_on_seed_and_epoch():
    s = data.EpochShuffle(20, seed=3)
    s.set_epoch(1)
    first = list(s)
    s.set_epoch(2)
    assert list(s) != first
    t = data.EpochShuffle(20, seed=3)
    t.set_epoch(1)
    assert list(t) == first and sorted(first) == list(range(20))


def test_too_small_validation_set_says_what_to_change(tmp_path):
    write_user(tmp_path, "alice", 12)
    dm = make_dm(tmp_path, "alice", block_size=128)
    with pytest.raises(UserError, match="data.block_size"):
        dm.setup("fit")


def test_pack_flat_matches_the_plain_rule_for_any_order_with_repeats():
    rng = random.Random(5)
    tweets = [[rng.randrange(1, 50) for _ in range(rng.randrange(0, 9))] for _ in range(40)]
    order = [rng.randrange(len(tweets)) for _ in range(120)]  # oversampling repeats tweets
    ids, offsets = flat(tweets)
    for block in (1, 4, 7, 32):
        got = data.pack_flat(ids, offsets, order, block_size=block, eos_id=0)
        assert got.tolist() == packed(tweets, order, block, eos=0) and got.dtype == torch.long
    assert data.pack_flat(ids, offsets, [], 4, 0).shape == (0, 4)


def test_cleaned_split_is_cached_and_keyed_by_the_raw_posts_and_settings(tmp_path, monkeypatch):
    from huggingtweets.ingest import clean as cleaning

    write_user(tmp_path, "alice", 80)
    dm = make_dm(tmp_path, "alice", block_size=16)
    assert len(list((tmp_path / "cache").glob("split-*.arrow"))) == 1
    calls = []
    real = cleaning.clean_posts
    monkeypatch.setattr(cleaning, "clean_posts", lambda *a, **k: calls.append(1) or real(*a, **k))
    warm = make_dm(tmp_path, "alice", block_size=16)
    assert not calls, "a warm cache must not read and clean the posts again"
    for split in ("train", "val"):
        pd.testing.assert_frame_equal(getattr(dm, split)["alice"], getattr(warm, split)["alice"])
    assert warm.tables == dm.tables
    make_dm(tmp_path, "alice", block_size=16, val_share=0.3)  # another split: another key
    assert len(calls) == 1
    write_user(tmp_path, "alice", 81)  # new posts: the raw cache's bytes change
    newer = make_dm(tmp_path, "alice", block_size=16)
    assert len(calls) == 2 and len(newer.train["alice"]) + len(newer.val["alice"]) == 81
    assert not list((tmp_path / "cache").glob(".*.tmp")), "caches are written by rename"


def test_token_cache_hit_with_tokenizers_keyed_by_their_files(tmp_path, monkeypatch):
    from huggingtweets.train.tokenizer import load_tokenizer

    write_user(tmp_path, "alice", 80)
    dm = make_dm(tmp_path, "alice", block_size=16)
    dm.tokenizer.save_pretrained(tmp_path / "tok")
    dm.tokenizer = load_tokenizer(str(tmp_path / "tok"))
    dm.setup("fit")
    warm = data.TweetDataModule(user="alice", clean=CLEAN, data_dir=str(tmp_path),
                                **{**DATA, "block_size": 16})
    warm.tokenizer = load_tokenizer(str(tmp_path / "tok"))  # a new object
    monkeypatch.setattr(type(warm.tokenizer), "__call__", lambda *a, **k: 1 / 0)
    warm.setup("fit")  # a cache hit: the tokenizer is never called
    assert torch.equal(dm.train_set.blocks, warm.train_set.blocks)


def test_unreadable_caches_are_rebuilt_not_fatal(tmp_path):
    write_user(tmp_path, "alice", 80)
    first = make_dm(tmp_path, "alice", block_size=16)
    first.setup("fit")
    for f in (tmp_path / "cache").glob("split-*.arrow"):
        f.write_bytes(b"not arrow")
    for f in (tmp_path / "cache").glob("tokens-*.npz"):
        f.write_bytes(b"not npz")
    again = make_dm(tmp_path, "alice", block_size=16)
    again.setup("fit")
    pd.testing.assert_frame_equal(first.train["alice"], again.train["alice"])
    assert torch.equal(first.train_set.blocks, again.train_set.blocks)


HANDLE = "alice.bsky.social"


def test_the_datamodule_never_fetches(api, tmp_path, compose_cfg, monkeypatch):
    from hydra.utils import instantiate

    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    api.bsky.add_user(HANDLE, 110)
    cfg = compose_cfg(f"user={HANDLE}", f"source.bluesky.base_url={api.url}")
    with pytest.raises(Exception) as caught:
        instantiate(cfg.data)
    assert "no posts cached for @alice.bsky.social" in str(caught.value)
    assert "python fetch.py user=alice.bsky.social" in str(caught.value)
    assert api.log == [] and not posts.tweets_path(cfg.data.data_dir, HANDLE).exists()


def write_word_user(data_dir, handle, n, word):
    rows = [{"id": str(1000 + i),
             "created_at": pd.Timestamp("2022-01-01", tz="UTC") + pd.Timedelta(hours=i),
             "text": f"{word} {word} number {i} from {handle}", "handle": handle}
            for i in range(n)]
    posts.write_posts(data_dir, handle, pd.DataFrame(rows), source="test")


def conditioned_dm(tmp_path, condition=True, **kw):
    write_word_user(tmp_path, "alice", 120, "apples")
    write_word_user(tmp_path, "bob", 60, "bananas")
    dm = data.TweetDataModule(user="alice-bob", clean=CLEAN, data_dir=str(tmp_path),
                              **{**DATA, "block_size": 16, "condition": condition, **kw})
    dm.tokenizer = train_tokenizer(dm.train_texts, vocab_size=300)
    dm.setup("fit")
    return dm


def test_conditioned_blocks_start_every_tweet_with_its_users_token(tmp_path):
    dm = conditioned_dm(tmp_path)
    tok, eos = dm.tokenizer, dm.tokenizer.eos_token_id
    ctl = dict(zip(["alice", "bob"], dm.control_ids, strict=True))
    assert tokenizer.control_users(tok) == ["alice", "bob"]
    # training blocks: every EOS (but a block's last token) is followed by a control token
    blocks = dm.train_set.blocks
    after = blocks[:, 1:][blocks[:, :-1] == eos]
    assert len(after) > 50 and set(after.tolist()) == set(ctl.values())
    # ...and the tweet after <|user:bob|> is bob's
    stream = blocks.flatten().tolist()
    for i in range(len(stream) - 6):
        if stream[i] == eos and stream[i + 1] == ctl["bob"]:
            assert tok.decode(stream[i + 2:i + 5]).startswith("bananas")
            break
    else:
        pytest.fail("no bob tweet in the training blocks")
    # validation blocks per user carry that user's token only
    for i, h in enumerate(["alice", "bob"]):
        b = dm.val_set.blocks[dm.val_set.user_idx == i]
        nxt = b[:, 1:][b[:, :-1] == eos]
        assert len(nxt) and set(nxt.tolist()) == {ctl[h]}
    # the unconditioned module has none of it
    plain = conditioned_dm(tmp_path, condition=False)
    assert tokenizer.control_users(plain.tokenizer) == []
    assert not torch.isin(plain.train_set.blocks, torch.tensor(dm.control_ids)).any()
