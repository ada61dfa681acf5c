"""Every model family end to end, offline: a tiny random model of each (GPT-2, GPT-NeoX/Pythia,
Llama/SmolLM2, Qwen2, Phi, Gemma) with a tokenizer built here in its family's conventions (its own
EOS, a BOS that is added or not, no pad token), trained, exported and loaded by pipeline(); full
fine-tuning and LoRA."""

import json

import pytest
import torch
import transformers
from conftest import write_demo
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from huggingtweets.ingest.prepare import prepare
from huggingtweets.publish.export import publish_run
from huggingtweets.train.fit import fit

# family -> (config class, extra config, bos, eos, pad, tokenizer adds BOS)
FAMILIES = {
    "gpt2": (transformers.GPT2Config, {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64},
             "<|endoftext|>", "<|endoftext|>", None, False),
    "gpt_neox": (transformers.GPTNeoXConfig, {"hidden_size": 32, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64},
                 "<|endoftext|>", "<|endoftext|>", None, False),
    "llama": (transformers.LlamaConfig, {"hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 64,
              "max_position_embeddings": 64}, "<s>", "</s>", None, True),
    "qwen2": (transformers.Qwen2Config, {"hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 64,
              "max_position_embeddings": 64}, None, "<|endoftext|>", None, False),
    "phi": (transformers.PhiConfig, {"hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64},
            "<|endoftext|>", "<|endoftext|>", None, False),
    "gemma": (transformers.GemmaConfig, {"hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
              "intermediate_size": 64, "max_position_embeddings": 64}, "<bos>", "<eos>", "<pad>", True),
}
TEXTS = [f"the night sky over the hill number {i} was bright and the coffee was hot" for i in range(40)]


def make_base(path, family: str):
    """A tiny random model of `family` and its tokenizer, saved like a Hub checkpoint."""
    config_cls, extra, bos, eos, pad, adds_bos = FAMILIES[family]
    specials = list(dict.fromkeys(t for t in (pad, eos, bos) if t))
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(TEXTS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if adds_bos:  # Llama and Gemma tokenizers put their BOS before every text
        tk.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tk.token_to_id(bos))])
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=eos,
                                               pad_token=pad)
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("bos", bos), ("eos", eos), ("pad", pad)) if t}
    config = config_cls(vocab_size=len(tok), **extra, **{f"{k}_token_id": v for k, v in ids.items()})
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tok.save_pretrained(path)
    return tok


def train_family(compose_cfg, tmp_path, family, *overrides):
    base = tmp_path / f"base-{family}"
    tok = make_base(base, family)
    cfg = compose_cfg("user=demo_ada-demo_bo", "model=gpt2", f"model.name_or_path={base}",
                      "model.fused_gelu=false", "optim.lr=1e-3", "data.block_size=32",
                      "data.batch_size=16", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                      "logger=csv", "eval.n=2", "eval.max_new_tokens=8", *overrides)
    write_demo(cfg.data.data_dir, cfg.user)
    prepared = prepare(**cfg.data, source=None, quiet=True)
    trainer, module, dm, metrics = fit(cfg, prepared, str(tmp_path / "run"))
    model_dir = publish_run(cfg, trainer, module, dm, metrics, str(tmp_path / "run"))
    return tok, module, model_dir, metrics


@pytest.mark.slow
@pytest.mark.parametrize("lora", [0, 4], ids=["full", "lora"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_trains_exports_and_loads_in_pipeline(compose_cfg, tmp_path, family, lora):
    tok, module, model_dir, metrics = train_family(compose_cfg, tmp_path, family,
                                                   f"model.lora.r={lora}")
    assert 0 < metrics["val/loss"] < 20
    config = json.loads((model_dir / "config.json").read_text())
    # the generation prefix is the model's own EOS, one whole token, never GPT-2's string
    assert config["prefix"] == tok.eos_token
    gen_cfg = json.loads((model_dir / "generation_config.json").read_text())
    assert gen_cfg["eos_token_id"] == tok.eos_token_id
    assert gen_cfg["bos_token_id"] == (tok.bos_token_id if tok.bos_token_id is not None
                                       else tok.eos_token_id)
    assert not (model_dir / "adapter_config.json").exists()  # LoRA merged: a plain model dir
    pipe = transformers.pipeline("text-generation", model=str(model_dir))
    seen = pipe.tokenizer(pipe.prefix + "the night", add_special_tokens=True)["input_ids"]
    start = [tok.bos_token_id] if FAMILIES[family][5] else []
    assert seen[: len(start) + 1] == start + [tok.eos_token_id]  # no junk bytes before the prompt
    out = pipe("the night", max_new_tokens=5, do_sample=True, num_return_sequences=2)
    assert len(out) == 2 and all(o["generated_text"].startswith("the night") for o in out)


@pytest.mark.slow
def test_lora_trains_only_the_adapters_and_conditioning_tokens(compose_cfg, tmp_path):
    tok, module, model_dir, _ = train_family(compose_cfg, tmp_path, "llama", "model.lora.r=4",
                                             "data.condition=true")
    trained = {n for n, p in module.model.named_parameters()}  # merged now: a plain model
    assert not any("lora" in n for n in trained)
    base = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base-llama")
    out = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    emb_in, emb_out = base.get_input_embeddings().weight, out.get_input_embeddings().weight
    n = emb_in.shape[0]
    assert emb_out.shape[0] == n + 2  # two control tokens
    assert torch.equal(emb_in, emb_out[:n])  # the base's token rows were frozen
    control = transformers.AutoTokenizer.from_pretrained(model_dir).convert_tokens_to_ids(
        "<|user:demo_ada|>")
    assert control >= n
    q_base = base.model.layers[0].self_attn.q_proj.weight
    q_out = out.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q_base, q_out)  # the adapter was merged into the weights
    k_base = base.model.layers[0].mlp.up_proj.weight
    assert torch.equal(k_base, out.model.layers[0].mlp.up_proj.weight)  # untargeted: untouched


@pytest.mark.slow
def test_lora_unmerged_exports_the_adapter_with_its_base(compose_cfg, tmp_path):
    tok, module, model_dir, _ = train_family(compose_cfg, tmp_path, "qwen2", "model.lora.r=4",
                                             "model.lora.merge=false")
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tmp_path / "base-qwen2")
    assert not (model_dir / "model.safetensors").exists()
    loaded = transformers.AutoModelForCausalLM.from_pretrained(model_dir)  # base + adapter (peft)
    assert loaded is not None


@pytest.mark.slow
def test_lora_resumes_from_its_checkpoint(compose_cfg, tmp_path):
    """LoRA wraps the model in setup, before Lightning restores a checkpoint: a resumed run meets
    the same modules (adapter keys) and carries on to the next epoch."""
    train_family(compose_cfg, tmp_path, "gpt2", "model.lora.r=4", "export=false", "eval=none")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["epoch"] == 0 and any("lora_A" in k for k in state["state_dict"])
    *_, metrics = train_family(compose_cfg, tmp_path, "gpt2", "model.lora.r=4", "export=false",
                               "eval=none", "trainer.max_epochs=2", f"ckpt_path={last}")
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 1
    assert 0 < metrics["val/loss"] < 20


@pytest.mark.slow
def test_lora_with_ddp_two_processes(tmp_path):
    from conftest import TINY, run_cli

    make_base(tmp_path / "base", "llama")
    run = tmp_path / "run"
    res = run_cli("train.py", "user=demo_ada", *[o for o in TINY if not o.startswith("model")],
                  "model=gpt2", f"model.name_or_path={tmp_path / 'base'}", "model.fused_gelu=false",
                  "model.lora.r=4", "optim.lr=1e-3", "trainer=ddp", "verbose=true", "trainer.devices=2",
                  "trainer.accelerator=cpu", "eval=none", f"data.data_dir={tmp_path}/data",
                  f"hydra.run.dir={run}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Starting with 2 processes" in res.stdout + res.stderr
    assert (run / "model" / "model.safetensors").exists()  # merged by rank 0
    out = transformers.pipeline("text-generation", model=str(run / "model"))("the night",
                                                                              max_new_tokens=4)
    assert out[0]["generated_text"].startswith("the night")
