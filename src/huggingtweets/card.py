"""The model card (README.md of an exported model directory), Hugging Face card format.

Every user-provided string (display names, handles, tweets) goes through `md()` or YAML's own
quoting, so nothing in a display name can inject HTML, Markdown links or YAML keys.
"""

from __future__ import annotations

import html
import re

import yaml

from huggingtweets import clean as cleaning

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|>~])")


def md(text) -> str:
    """Inert in Markdown and HTML: entities for <>&\"', backslashes before Markdown syntax, one line."""
    text = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))


def render(
    *,
    handles: list[str],
    meta: dict[str, dict],
    tables: dict[str, dict[str, int]],
    base_model: str | None,
    hparams: dict,
    metrics: dict,
    languages: list[str],
    model_id: str,
) -> str:
    front = {
        "language": languages or ["en"],
        "license": "mit",
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["huggingtweets", "text-generation", "gpt2"],
        "widget": [{"text": "My dream is"}],
    }
    if base_model:
        front["base_model"] = base_model
    names = " & ".join(
        f"{md(meta.get(h, {}).get('display_name') or h)} (@{md(h)})" for h in handles
    )
    rows = "\n".join(
        f"| {md(k)} | {md(v)} |" for k, v in hparams.items() if v is not None
    )
    results = "\n".join(f"| {md(k)} | {v:.4f} |" for k, v in metrics.items())
    return f"""---
{yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()}
---

# {names}

A GPT-2 fine-tuned to write like {names}, trained with
[huggingtweets](https://github.com/borisdayma/huggingtweets)-style data preparation.

## Training data

{cleaning.table_markdown(tables)}

## Training procedure

| | |
|---|---|
| base model | {md(base_model or "GPT-2 trained from scratch (random init, byte-level BPE fitted to the tweets)")} |
{rows}

## Results

| metric | value |
|---|---|
{results}

## How to use

```python
from transformers import pipeline
generator = pipeline("text-generation", model="{model_id}")
generator("My dream is", num_return_sequences=5)
```

## Limitations and bias

The model imitates the posts it was trained on, including their biases, errors and any personal
information in them; it can also produce text the person never wrote nor would write. Generated
text must not be presented as the person's own words.
"""
