"""train/loss.py: the chunked output layer gives the model's own loss and gradients (full and
LoRA, tied and untied heads, chunks that do not divide the tokens) and trains through train.py's
config; a head it cannot reproduce is refused, not approximated."""

import pytest
import torch
import transformers
from conftest import TINY

from huggingtweets.train.loss import chunked_lm_loss
from huggingtweets.train.module import add_lora


def tiny(family: str, tied: bool = True):
    torch.manual_seed(0)
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=97, n_positions=32, n_embd=16, n_layer=2,
                                         n_head=2, tie_word_embeddings=tied)
    else:  # the Gemma 3 family, as model=gemma3 (tied head, no soft-cap)
        config = transformers.Gemma3TextConfig(
            vocab_size=97, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=32,
            tie_word_embeddings=tied, final_logit_softcapping=None)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family,tied,lora", [("gpt2", True, False), ("gpt2", False, False),
                                              ("gemma3", True, False), ("gemma3", True, True)])
@pytest.mark.parametrize("chunk", [7, 1000])  # 7 does not divide 3 x 11 tokens; 1000 is one chunk
def test_same_loss_and_gradients_as_the_model_s_own(family, tied, lora, chunk):
    model = tiny(family, tied)
    if lora:
        model = add_lora(model, {"r": 4, "alpha": 8, "dropout": 0.0,
                                 "target_modules": ["q_proj", "v_proj"]}, [])
    ids = torch.randint(0, 97, (3, 12))
    labels = torch.roll(ids, 1, dims=1)  # targets unlike the inputs: a shift bug shows
    reference = model(input_ids=ids, labels=labels).loss
    reference.backward()
    expected = grads(model)
    model.zero_grad(set_to_none=True)
    loss = chunked_lm_loss(model, ids, labels, chunk)
    loss.backward()
    got = grads(model)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    assert got.keys() == expected.keys() and len(got) > 0
    for name, g in expected.items():
        torch.testing.assert_close(got[name], g, rtol=1e-5, atol=1e-6, msg=name)


def test_a_soft_capped_head_is_refused_not_approximated():
    model = tiny("gemma3")
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ValueError, match="loss_chunk=0"):
        chunked_lm_loss(model, torch.randint(0, 97, (1, 8)), torch.randint(0, 97, (1, 8)), 4)


def test_train_py_config_trains_with_the_chunked_loss_and_checkpointing(compose_cfg):
    """model.loss_chunk and model.gradient_checkpointing through the real config: one step runs
    and the loss it logs is the model's own loss of that batch."""
    from hydra.utils import instantiate

    from huggingtweets.train.fit import make_trainer

    cfg = compose_cfg("user=demo_ada", *TINY, "model.loss_chunk=5",
                      "model.gradient_checkpointing=true", "trainer.fast_dev_run=true")
    dm, module = instantiate(cfg.data), instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)
    assert module.model.is_activation_checkpointing
    trainer = make_trainer(cfg)
    trainer.fit(module, datamodule=dm)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def saved_bytes(fn):
    """(fn(), bytes autograd keeps for the backward outside checkpointed regions)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        return fn(), total


@pytest.mark.parametrize("chunk", [0, 5])  # the model's own loss, and the chunked one
def test_gradient_checkpointing_gives_the_same_gradients_from_fewer_saved_activations(chunk):
    """model=gemma3's levers together, with LoRA dropout on (a user's model.lora.dropout: the
    recomputation must draw the same masks), the chunked loss, checkpointing as TweetLM.build
    enables it."""
    ids = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(3))
    runs = {}
    for checkpointing in (False, True):
        model = tiny("gemma3")
        torch.manual_seed(1)
        model = add_lora(model, {"r": 4, "alpha": 8, "dropout": 0.2,
                                 "target_modules": "all-linear"}, [])
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable({"use_reentrant": False})
        torch.manual_seed(2)
        loss, saved = saved_bytes(lambda m=model: chunked_lm_loss(m, ids, ids, chunk) if chunk
                                  else m(input_ids=ids, labels=ids).loss)
        loss.backward()
        runs[checkpointing] = (loss.item(), grads(model), saved)
    (loss_off, g_off, saved_off), (loss_on, g_on, saved_on) = runs[False], runs[True]
    assert loss_on == pytest.approx(loss_off, rel=1e-6)
    assert g_on.keys() == g_off.keys() and any("lora_B" in n for n in g_on)
    for name, g in g_off.items():
        torch.testing.assert_close(g_on[name], g, rtol=1e-5, atol=1e-6, msg=name)
    assert saved_on < saved_off / 2, (saved_on, saved_off)
