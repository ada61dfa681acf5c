"""train/tokenizer.py: the scratch BPE tokenizer, the cache keys of tokenizers (scratch, loaded from
files, with added tokens) and the author-conditioning control tokens."""

import pytest
from fakes.timelines import make_dm, write_user

from huggingtweets.errors import UserError
from huggingtweets.train import tokenizer
from huggingtweets.train.tokenizer import _BASE_KEYS, train_tokenizer


def test_token_cache_key_follows_the_tokenizer_and_its_added_tokens(tmp_path):
    write_user(tmp_path, "alice", 80)
    dm = make_dm(tmp_path, "alice", block_size=16)
    tok = dm.tokenizer
    key = tokenizer.key(tok)
    other = train_tokenizer(dm.train_texts, vocab_size=280)
    assert tokenizer.key(other) != key
    tokenizer.add_control_tokens(tok, ["alice"])
    assert tokenizer.key(tok) != key  # conditioning's control tokens: other ids


def test_load_pretrained_keys_a_tokenizer_by_its_files(tmp_path):
    from huggingtweets.train.tokenizer import load_tokenizer

    write_user(tmp_path, "alice", 80)
    tok = make_dm(tmp_path, "alice").tokenizer
    tok.save_pretrained(tmp_path / "tok")
    a = load_tokenizer(str(tmp_path / "tok"))
    b = load_tokenizer(str(tmp_path / "tok"))
    assert tokenizer._BASE_KEYS[a].startswith("files-") and tokenizer.key(a) == tokenizer.key(b)
    train_tokenizer(make_dm(tmp_path, "alice", val_share=0.5).train_texts, 280).save_pretrained(
        tmp_path / "tok")
    c = load_tokenizer(str(tmp_path / "tok"))
    assert tokenizer.key(c) != tokenizer.key(a)


def test_control_token_helpers():
    assert tokenizer.control_token("alice") == "<|user:alice|>"
    assert tokenizer.control_token("@Bob_1") == "<|user:bob_1|>"  # handles ignore case
    with pytest.raises(UserError):
        tokenizer.control_token("../x")
    tok = train_tokenizer(["hello world"] * 20, vocab_size=260)
    assert tokenizer.control_users(tok) == []
    ids = tokenizer.add_control_tokens(tok, ["bob", "alice"])
    assert tokenizer.add_control_tokens(tok, ["bob", "alice"]) == ids  # idempotent
    assert tokenizer.control_users(tok) == ["bob", "alice"]
    text = "<|endoftext|><|user:alice|>hello"
    enc = tok(text, add_special_tokens=False)["input_ids"]
    assert enc[:2] == [tok.eos_token_id, ids[1]]  # never split into pieces
    assert tok.decode(enc, skip_special_tokens=True) == "hello"
    assert ids[1] not in tok("user:alice hello")["input_ids"]  # plain text never makes one


TEXTS = [f"tweet number {i} about apples and the weather" for i in range(50)]


def test_scratch_tokenizer_carries_its_cache_key(tmp_path):
    tok = train_tokenizer(TEXTS, 300, tmp_path)
    again = train_tokenizer(TEXTS, 300, tmp_path)
    assert _BASE_KEYS[tok] == _BASE_KEYS[again] and _BASE_KEYS[tok].startswith("bpe-")
    # keyed by the tokenizer itself (its saved file), not by what it was trained on
    other = train_tokenizer([f"zebra {i} quartz jukebox" for i in range(50)], 300, tmp_path)
    assert _BASE_KEYS[other] != _BASE_KEYS[tok]
