"""After training: the best weights as a Hugging Face model directory, its card, metrics, config."""

from __future__ import annotations

import json
from pathlib import Path

import transformers
import yaml

from huggingtweets.publish import card
from huggingtweets.publish.generate import COPY_INDEX, INFO, CopyCheck
from huggingtweets.train.module import EOS

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


def export_model(module, dm, out_dir: str | Path, metrics: dict, hparams: dict,
                 copy_ngram: int = 8) -> Path:
    """Weights, tokenizer, generation defaults, the demo's info file and the card (without an
    evaluation yet: `write_card` rewrites it once `evaluate` has run). The copy check's index goes
    to the run dir around `out_dir`, not into the published model dir (see generate.py)."""
    out = Path(out_dir)
    model, tok = module.model, module.tokenizer
    eos = tok.eos_token_id
    model.config.prefix = EOS  # text-generation pipelines prepend this to every prompt
    model.config.task_specific_params = {"text-generation": {**GENERATION, "prefix": EOS}}
    model.generation_config = transformers.GenerationConfig(
        **GENERATION, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos
    )
    model.save_pretrained(out)  # safetensors
    tok.save_pretrained(out)
    info = {
        "handles": list(dm.handles),
        "display_names": {h: dm.meta.get(h, {}).get("display_name") or h for h in dm.handles},
        "languages": languages(dm),
        "prompts": card.PROMPTS,
        "model_id": str(out),  # what the card's snippet names; push.py swaps in the repo id
    }
    (out / INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    CopyCheck.build(dm.train_texts, tok, copy_ngram).save(out.parent / COPY_INDEX)
    write_card(module, dm, out, metrics, hparams)
    return out


def write_card(module, dm, out_dir: str | Path, metrics: dict, hparams: dict,
               evaluation: dict | None = None, wandb_url: str | None = None) -> Path:
    out = Path(out_dir)
    text = card.render(
        handles=dm.handles,
        meta=dm.meta,
        tables=dm.tables,
        base_model=module.hparams.name_or_path,
        hparams=hparams,
        metrics=metrics,
        languages=languages(dm),
        model_id=str(out),
        evaluation=evaluation,
        wandb_url=wandb_url,
    )
    (out / "README.md").write_text(text)
    return out / "README.md"


def write_run_files(run_dir: str | Path, metrics: dict, resolved_cfg: dict) -> None:
    run = Path(run_dir)
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (run / "config_resolved.yaml").write_text(yaml.safe_dump(resolved_cfg, sort_keys=False))
