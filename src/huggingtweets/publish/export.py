"""After training: the best weights as a Hugging Face model directory, its card, metrics, config."""

import json
import sys
from pathlib import Path

import transformers
import yaml

from huggingtweets.publish import card
from huggingtweets.publish.generate import COPY_INDEX, INFO, CopyCheck
from huggingtweets.train import gguf

# Sampling defaults of the original huggingtweets models: nucleus sampling, tweets of at most
# 160 tokens, and an EOS prefix so an empty or short prompt starts a fresh tweet.
GENERATION = {"do_sample": True, "top_p": 0.95, "max_length": 160}


def languages(dm) -> list[str]:
    langs = {}
    for h in dm.handles:
        for lang, n in dm.train[h]["lang"].dropna().value_counts().items():
            if len(lang) == 2:  # ISO 639-1 only: drops X's "und", "qme", "zxx" pseudo-languages
                langs[lang] = langs.get(lang, 0) + int(n)
    return sorted(langs, key=langs.get, reverse=True)[:5]


def publish_run(cfg, trainer, module, dm, metrics: dict, run_dir: str | Path) -> Path | None:
    """What a finished run leaves: metrics.json, the resolved config and, with cfg.export, the
    model dir (returned), the copy index, the evaluation, the card and the W&B artifacts."""
    from omegaconf import OmegaConf

    from huggingtweets.train import tracking
    from huggingtweets.train.tracking import redact

    resolved = redact(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    write_run_files(run_dir, metrics, resolved)
    if not cfg.export:
        return None
    hparams = {**resolved["optim"], "epochs": cfg.trainer.max_epochs, "steps": trainer.global_step,
               "seed": cfg.seed, "block_size": cfg.data.block_size, "batch_size": cfg.data.batch_size}
    model_dir = export_model(module, dm, Path(run_dir) / "model", metrics, hparams)
    copies = CopyCheck.build(dm.train_texts, module.tokenizer, cfg.eval.copy_ngram)
    copies.save(Path(run_dir) / COPY_INDEX)  # beside the model dir: never published (generate.py)
    evaluation = None
    if cfg.eval.enabled:  # vs a baseline, memorization, voice
        from huggingtweets.publish.evaluate import evaluate_run, flat_metrics

        evaluation = evaluate_run(module, dm, cfg.eval, run_dir, model_dir, copies)
        tracking.log_eval(trainer, evaluation["predictions"], flat_metrics(evaluation),
                          model_dir / "predictions.png")
    write_card(module, dm, model_dir, metrics, hparams, evaluation, tracking.run_url(trainer))
    tracking.log_model(trainer, model_dir, metrics, dm.handles)
    print(f"model: {model_dir}")
    return model_dir


def export_model(module, dm, out_dir: str | Path, metrics: dict, hparams: dict) -> Path:
    """Weights, tokenizer, generation defaults, the demo's info file and a first card."""
    out = Path(out_dir)
    model, tok = module.model, module.tokenizer
    adapter = hasattr(model, "peft_config") and not module.hparams.lora.get("merge", True)
    if adapter and not module.hparams.name_or_path:
        # a random-init base exists nowhere but in this process: an adapter alone loads on nothing
        print("note: model=scratch has no base model to ship an adapter for: the LoRA updates "
              "are merged into the exported weights (model.lora.merge=false needs a pretrained "
              "base)", file=sys.stderr)
        adapter = False
    if hasattr(model, "peft_config") and not adapter:
        # LoRA merged into the weights: a plain model dir that pipeline() loads without peft
        model = module.model = model.merge_and_unload()
    # Every tweet was trained as [EOS, tweet...], EOS being the model's own (GPT-2's
    # <|endoftext|>, Llama's </s>, Qwen's <|endoftext|>, ...): generating from it starts a fresh
    # tweet. text-generation pipelines prepend `prefix` to every prompt; it must be a token the
    # tokenizer knows whole, never GPT-2's string on another family (that is 9 junk byte tokens).
    eos, prefix = tok.eos_token_id, tok.eos_token
    model.config.prefix = prefix
    model.config.task_specific_params = {"text-generation": {**GENERATION, "prefix": prefix}}
    model.generation_config = transformers.GenerationConfig(
        **GENERATION, eos_token_id=eos,
        bos_token_id=tok.bos_token_id if tok.bos_token_id is not None else eos,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos)
    model.save_pretrained(out)  # safetensors; the adapter alone (+ base_model in its config) if not merged
    if adapter:
        model.generation_config.save_pretrained(out)
    tok.save_pretrained(out)
    gguf.carry_provenance(module.hparams.name_or_path, module.cache_dir, out)  # a GGUF base's terms
    info = {"handles": list(dm.handles), "languages": languages(dm), "prompts": card.PROMPTS,
            "display_names": {h: dm.meta.get(h, {}).get("display_name") or h for h in dm.handles},
            # what the card's snippet names (never the local path); push.py swaps in the repo id
            "model_id": card.model_name(dm.handles)}
    (out / INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    write_card(module, dm, out, metrics, hparams)
    return out


def write_card(module, dm, out_dir: str | Path, metrics: dict, hparams: dict,
               evaluation: dict | None = None, wandb_url: str | None = None) -> Path:
    out = Path(out_dir)
    text = card.render(handles=dm.handles, meta=dm.meta, tables=dm.tables,
                       base_model=module.hparams.name_or_path, hparams=hparams, metrics=metrics,
                       languages=languages(dm), evaluation=evaluation, wandb_url=wandb_url,
                       model_id=card.model_name(dm.handles),  # not str(out): a published path
                       model_type=module.model.config.model_type,
                       base_info=gguf.read_provenance(out))
    (out / "README.md").write_text(text)
    return out / "README.md"


def write_run_files(run_dir: str | Path, metrics: dict, resolved_cfg: dict) -> None:
    run = Path(run_dir)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (run / "config_resolved.yaml").write_text(yaml.safe_dump(resolved_cfg, sort_keys=False))
