"""TweetLM's throughput levers: the fused GELU and the fused AdamW change speed, not the model."""

from types import SimpleNamespace

import pytest
import torch
import transformers

from huggingtweets.train.module import TweetLM, fuse_gelu
from huggingtweets.train.tokenizer import _BASE_KEYS, train_tokenizer

SCRATCH = {"vocab_size": 300, "n_positions": 32, "n_embd": 32, "n_layer": 2, "n_head": 2,
           "dropout": 0.0}
TEXTS = [f"tweet number {i} about apples and the weather" for i in range(50)]


def build(**kw) -> TweetLM:
    torch.manual_seed(0)
    m = TweetLM(name_or_path=None, scratch=SCRATCH, **kw)
    m.build(TEXTS)
    return m.eval()


def test_fused_gelu_is_the_same_function_and_survives_export(tmp_path):
    stock, fused = build(fused_gelu=False), build(fused_gelu=True)
    assert stock.model.config.activation_function == "gelu_new"
    assert fused.model.config.activation_function == "gelu_pytorch_tanh"
    fused.model.load_state_dict(stock.model.state_dict())
    ids = torch.randint(0, 300, (2, 16))
    with torch.no_grad():
        a, b = stock(ids).logits, fused(ids).logits
    assert torch.allclose(a, b, atol=1e-5)
    fused.model.save_pretrained(tmp_path)
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(again(input_ids=ids).logits, b, atol=1e-6)
    assert fuse_gelu(again) == 0  # already fused: nothing left to swap


@pytest.mark.parametrize("fused,precision,expected", [
    (True, "32-true", True), (False, "32-true", False),
    # Lightning refuses gradient clipping with a fused optimizer under mixed precision
    (True, "bf16-mixed", False), (True, "16-mixed", False)])
def test_adamw_is_fused_as_configured(monkeypatch, fused, precision, expected):
    monkeypatch.setattr(TweetLM, "trainer", property(lambda self: SimpleNamespace(
        estimated_stepping_batches=10, precision=precision)))
    m = build(optim={"lr": 1e-3, "fused": fused})
    opt = m.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.AdamW) and bool(opt.defaults["fused"]) is expected
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0


def test_scratch_tokenizer_carries_its_cache_key(tmp_path):
    tok = train_tokenizer(TEXTS, 300, tmp_path)
    again = train_tokenizer(TEXTS, 300, tmp_path)
    assert _BASE_KEYS[tok] == _BASE_KEYS[again] and _BASE_KEYS[tok].startswith("bpe-")
    # keyed by the tokenizer itself (its saved file), not by what it was trained on
    other = train_tokenizer([f"zebra {i} quartz jukebox" for i in range(50)], 300, tmp_path)
    assert _BASE_KEYS[other] != _BASE_KEYS[tok]
