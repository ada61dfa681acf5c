"""A LoRA adapter export (`model.lora.merge=false`) built from a local base model: what train.py
writes, without a training run."""

import json
import shutil
from pathlib import Path


def adapter_export(base_dir: Path, out_dir: Path, base_name: str | None = None) -> Path:
    """peft LoRA adapter of the model in `base_dir` (its tokenizer and huggingtweets.json copied
    beside it, as the exporter writes them), saved to `out_dir`. The adapter weights are random,
    not zero, so that the adapter changes what the model writes. `base_name` replaces the base
    recorded in adapter_config.json (a model that is not on this machine)."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM", init_lora_weights=False)
    model = get_peft_model(base, config)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    transformers.AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    for name in ("huggingtweets.json", "README.md", "generation_config.json"):
        if (Path(base_dir) / name).exists():
            shutil.copy(Path(base_dir) / name, out_dir / name)
    cfg = json.loads((out_dir / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(base_dir)
    if base_name is not None:
        cfg["base_model_name_or_path"] = base_name
        (out_dir / "adapter_config.json").write_text(json.dumps(cfg))
    assert not (out_dir / "config.json").exists()
    return out_dir


def merged(adapter_dir: Path, out_dir: Path) -> Path:
    """The adapter merged into its base, saved as a plain model dir (what merge=true exports)."""
    import transformers
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(adapter_dir).merge_and_unload()
    model.save_pretrained(out_dir)
    transformers.AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)
    return Path(out_dir)
