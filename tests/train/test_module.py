"""train/module.py, TweetLM: the fused GELU and the fused AdamW change speed, not the model; an
unavailable Hub model says what works offline; a conditioned mix grows the embeddings for its
control tokens, trains and exports them; input noise touches the training inputs only; the scratch
model is a rotary GPT-NeoX or a GPT-2."""

from types import SimpleNamespace

import pytest
import torch
import transformers
from conftest import TINY
from fakes.configs import conf

from huggingtweets.errors import UserError
from huggingtweets.train import tokenizer
from huggingtweets.train.fit import make_trainer
from huggingtweets.train.module import TweetLM, fuse_gelu, noise_inputs, scratch_model


def test_unavailable_hub_model_says_scratch_works_offline():
    module = TweetLM(name_or_path="no-such-org/no-such-model", optim={})
    with pytest.raises(UserError, match="model=scratch"):
        module.build(["hello world"])


def test_a_conditioned_tiny_mix_trains_and_exports_its_control_tokens(compose_cfg, tmp_path):
    import transformers
    from hydra.utils import instantiate

    from huggingtweets.publish import export

    cfg = compose_cfg("user=demo_ada-demo_bo", *TINY, "data.condition=true",
                      "trainer.fast_dev_run=true")
    dm = instantiate(cfg.data)
    module = instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)
    n_vocab = module.model.get_input_embeddings().num_embeddings
    assert len(module.tokenizer) == n_vocab + 2  # the datamodule added the two control tokens
    trainer = make_trainer(cfg)
    trainer.fit(module, datamodule=dm)  # TweetLM.setup grew the embeddings: no index error
    assert module.model.get_input_embeddings().num_embeddings == len(module.tokenizer)
    assert module.model.get_output_embeddings().weight.shape[0] == len(module.tokenizer)
    assert trainer.callback_metrics["val/loss"] > 0 and "val/loss_demo_bo" in trainer.callback_metrics
    out = export.export_model(module, dm, tmp_path / "model", {"val/loss": 1.0}, {})
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer.control_users(tok) == ["demo_ada", "demo_bo"]
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    ids = tok(tok.eos_token + tokenizer.control_token("demo_bo"), return_tensors="pt",
              add_special_tokens=False)["input_ids"]
    assert ids.shape[1] == 2
    gen = model.generate(ids, max_new_tokens=5, do_sample=True, pad_token_id=tok.eos_token_id)
    assert gen.shape[1] > 2


SCRATCH = {"arch": "gpt2", "vocab_size": 300, "n_positions": 32, "n_embd": 32, "n_layer": 2,
           "n_head": 2, "dropout": 0.0}


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
    m = build(optim=conf("optim/adamw", lr=1e-3, fused=fused))
    opt = m.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.AdamW) and bool(opt.defaults["fused"]) is expected
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0


def test_input_noise_swaps_about_p_of_the_inputs_for_tokens_of_the_batch():
    ids = torch.randint(0, 1000, (16, 256))
    assert noise_inputs(ids, 0.0) is ids
    torch.manual_seed(0)
    noised = noise_inputs(ids, 0.1)
    changed = (noised != ids).float().mean().item()
    assert 0.08 < changed < 0.11  # p, less the draws that happen to pick the same token
    assert set(noised[noised != ids].tolist()) <= set(ids.flatten().tolist())
    torch.manual_seed(0)
    assert torch.equal(noise_inputs(ids, 0.1), noised)  # seeded: a run stays reproducible


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_training_noises_the_inputs_only_never_the_targets_or_validation(monkeypatch, p):
    m = build(input_noise=p).train()
    monkeypatch.setattr(TweetLM, "trainer", property(lambda self: SimpleNamespace(
        optimizers=[SimpleNamespace(param_groups=[{"lr": 1e-3}])])))
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    seen = []
    forward = m.model.forward
    monkeypatch.setattr(m.model, "forward", lambda **kw: seen.append(kw) or forward(**kw))
    ids = torch.randint(0, 300, (4, 32))
    m.training_step({"input_ids": ids}, 0)
    assert torch.equal(seen[0]["labels"], ids)
    assert torch.equal(seen[0]["input_ids"], ids) is (p == 0.0)
    m.eval()  # validation scores the real tweets: the same loss twice, whatever p is
    m.on_validation_epoch_start = lambda: None
    sums = []
    for _ in range(2):
        m._val_sums = torch.zeros(1, 2, dtype=torch.float64)
        m.validation_step({"input_ids": ids, "user": torch.zeros(4, dtype=torch.long)}, 0)
        sums.append(m._val_sums.clone())
    assert torch.equal(sums[0], sums[1])


def test_scratch_model_is_a_rotary_gpt_neox_or_gpt2_and_names_a_bad_arch():
    neox = scratch_model({**SCRATCH, "arch": "gpt_neox", "dropout": 0.3}, 300, 0)
    assert neox.config.model_type == "gpt_neox" and neox.config.hidden_size == 32
    names = [n for n, _ in neox.named_parameters()]
    assert not [n for n in names if "wpe" in n or "position" in n]  # positions by rotation only
    assert neox.get_input_embeddings().weight is neox.get_output_embeddings().weight
    assert neox.config.hidden_dropout == neox.config.attention_dropout == 0.3
    # no arch: GPT-2, as runs made before arch existed; a GPT2Config key beats `dropout`
    gpt2 = scratch_model({**SCRATCH, "dropout": 0.3, "attn_pdrop": 0.0}, 300, 0)
    assert gpt2.config.model_type == "gpt2" and "transformer.wpe.weight" in dict(gpt2.named_parameters())
    assert gpt2.config.attn_pdrop == 0.0 and gpt2.config.resid_pdrop == 0.3
    with pytest.raises(UserError, match="model.scratch.arch='llama'"):
        scratch_model({**SCRATCH, "arch": "llama"}, 300, 0)


def test_a_tiny_model_overfits_one_batch():
    """The learning check: TweetLM's training step, loss, optimizer and schedule, driven by the
    Lightning Trainer, must memorise one repeated batch; a wiring bug (targets shifted twice, the
    optimizer not stepping, gradients cut off) leaves the loss near its starting value."""
    import lightning as L

    module = build(optim=conf("optim/adamw", lr=1e-2, warmup_ratio=0.0, weight_decay=0.0,
                              schedule="constant"))
    torch.manual_seed(0)
    ids = torch.randint(0, len(module.tokenizer), (4, 16))
    with torch.no_grad():
        before = module(ids).loss.item()
    trainer = L.Trainer(max_steps=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=1.0)
    one_batch = torch.utils.data.DataLoader([{"input_ids": ids}], batch_size=None)
    trainer.fit(module.train(), train_dataloaders=one_batch)
    with torch.no_grad():
        after = module.eval()(ids).loss.item()
    assert before > 5 and after < 0.05, (before, after)


@pytest.mark.parametrize("preset", ["gemma3", "smollm2", "qwen2.5"])
def test_the_lora_presets_adapt_attention_and_mlp_but_not_the_head(preset):
    """The LoRA presets' `target_modules` (all-linear: measured better than attention alone on
    gemma3) put adapters on q/k/v/o and the MLP of a tiny model of the family, none on lm_head."""
    from conftest import ROOT
    from omegaconf import OmegaConf

    from huggingtweets.train.module import add_lora

    lora = OmegaConf.to_container(OmegaConf.merge(*(  # the preset over gpt2.yaml, as it composes
        OmegaConf.load(ROOT / "conf/model" / f"{name}.yaml").model.lora for name in ("gpt2", preset))))
    family = {"gemma3": (transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM),
              "smollm2": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
              "qwen2.5": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM)}[preset]
    config = family[0](vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    model = add_lora(family[1](config), lora, [])
    adapted = {n.split(".lora_A")[0].split(".")[-1] for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not any("lm_head" in n and "lora" in n for n, _ in model.named_parameters())


def test_a_pretrained_base_trains_with_its_dropout_on(tiny):
    """from_pretrained hands back a model in eval mode and Lightning keeps modules' modes: a base
    loaded from a model dir must be switched to training, or GPT-2 fine-tunes without dropout."""
    import lightning as L

    module = TweetLM(name_or_path=str(tiny["model"]), optim=conf("optim/adamw", lr=1e-3),
                     fused_gelu=False)
    module.build([])
    dropouts = [m for m in module.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.training for m in module.model.modules())
    seen = []
    module.on_train_batch_start = lambda *a: seen.append(all(m.training for m in dropouts))
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0)
    trainer.fit(module, datamodule=tiny["dm"])
    assert seen == [True]
