"""The card of a model fine-tuned from a packaged GGUF base (model=gemma3) names the base, its
quantized origin and checksum, and carries the base's licence (front matter, a line with the link,
the required notice); other bases keep the project's licence and say nothing of Gemma."""

import logging

from huggingtweets.publish import card
from huggingtweets.train import gguf

SHA = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def _render(base_model, base_info=None, model_type="gemma3_text"):
    return card.render(handles=["alice"], meta={}, tables={"alice": {"Tweets kept": 1}},
                       base_model=base_model, hparams={"lr": 2e-4}, metrics={"val/loss": 3.0},
                       languages=["en"], model_id="huggingtweets-alice", model_type=model_type,
                       base_info=base_info)


def _front(text, caplog):
    from huggingface_hub import ModelCard

    with caplog.at_level(logging.WARNING):
        parsed = ModelCard(text, ignore_metadata_errors=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    return parsed.data


def test_a_gguf_base_card_names_base_origin_and_gemma_terms(caplog):
    info = gguf.provenance(gguf.BASES["gemma3-270m"], SHA)
    text = _render("gguf:gemma3-270m", info)
    data = _front(text, caplog)
    assert data.license == "gemma" and data.base_model == "google/gemma-3-270m"
    body = text.split("\n---\n", 1)[1]
    assert "Q4\\_K\\_M GGUF" in body and SHA in body and "hugginllam" in body
    assert "[Gemma Terms of Use](https://ai.google.dev/gemma/terms)" in body
    assert ("Gemma is provided under and subject to the Gemma Terms of Use found at "
            "ai.google.dev/gemma/terms") in body
    assert "NOTICE.md" in body and "gguf:" not in body
    assert "A Gemma 3 that writes like" in body


def test_other_bases_keep_the_projects_licence(caplog):
    text = _render("gpt2", model_type="gpt2")
    assert _front(text, caplog).license == card.LICENSE
    assert "Gemma" not in text and "GGUF" not in text


def test_a_hostile_provenance_file_cannot_inject(caplog):
    info = {**gguf.provenance(gguf.BASES["gemma3-270m"], SHA),
            "source": "[x](javascript:alert(1))", "sha256": "`evil`\n# h",
            "license_url": "javascript:alert(1)", "upstream": "evil\nlicense: mit"}
    text = _render("gguf:gemma3-270m", info)
    data = _front(text, caplog)
    front = text.split("\n---\n")[0]
    assert "](javascript" not in text and "`evil`" not in text and "\n# h" not in text
    assert "base_model" not in front and data.license == "gemma"
