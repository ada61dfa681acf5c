"""Sampling from an exported model directory (what generate.py and, later, the web demo call)."""

from __future__ import annotations

from pathlib import Path

from huggingtweets.errors import UserError


def generate(
    model_dir: str | Path,
    prompts: list[str],
    n: int = 5,
    temperature: float = 1.0,
    top_p: float = 0.95,
    top_k: int = 0,
    max_new_tokens: int = 60,
    seed: int = 0,
    cut_newline: bool = True,
) -> list[dict]:
    import torch
    import transformers

    path = Path(model_dir).expanduser()
    if not (path / "config.json").exists():
        raise UserError(f"{path} is not an exported model directory (no config.json): "
                        "pass model_dir=outputs/<run>/model")
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    prefix = getattr(model.config, "prefix", None) or tok.eos_token
    torch.manual_seed(seed)
    out = []
    for prompt in prompts:
        ids = tok(prefix + prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            seqs = model.generate(
                ids.repeat(n, 1),
                attention_mask=torch.ones_like(ids).repeat(n, 1),
                do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k or None,
                max_new_tokens=max_new_tokens, max_length=None,
                pad_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
            )
        for seq in seqs[:, ids.shape[1]:]:
            text = prompt + tok.decode(seq, skip_special_tokens=True)
            if cut_newline:
                text = text.split("\n")[0]
            out.append({"prompt": prompt, "text": text.strip()})
    return out
