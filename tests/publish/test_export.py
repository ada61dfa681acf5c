"""publish/export.py: an exported model dir holds no local path (of the run or the tmp dir)."""

import json

from fakes.configs import SAMPLING, conf


def test_an_exported_model_dir_holds_no_local_path(tiny):
    # every file, binary or not: the folder it was exported to, and the tmp dir around it
    needles = [str(tiny["model"].resolve()), str(tiny["run"].resolve().parent)]
    files = [f for f in tiny["model"].rglob("*") if f.is_file()]
    assert {"README.md", "huggingtweets.json", "config.json"} <= {f.name for f in files}
    for f in files:
        data = f.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, (f.name, needle)
    info = json.loads((tiny["model"] / "huggingtweets.json").read_text())
    assert info["model_id"] == "huggingtweets-demo_ada-demo_bo"


def test_a_scratch_model_with_unmerged_lora_exports_merged_weights(tiny, tmp_path, capsys):
    # model=scratch has no base on disk or on the Hub: an adapter alone could never be loaded
    from huggingtweets.publish import export
    from huggingtweets.publish.generate import Generator
    from huggingtweets.train.module import TweetLM

    dm = tiny["dm"]
    module = TweetLM(name_or_path=None, optim=conf("optim/adamw", lr=1e-3),
                     scratch={"vocab_size": 512, "n_positions": 64, "n_embd": 32, "n_layer": 2,
                              "n_head": 2, "arch": "gpt2", "dropout": 0.0},
                     lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": None, "merge": False})
    module.tokenizer = dm.tokenizer
    module.model = __import__("huggingtweets.train.module", fromlist=["x"]).scratch_model(
        module.hparams.scratch, len(dm.tokenizer), dm.tokenizer.eos_token_id)
    module.setup("fit")
    assert hasattr(module.model, "peft_config")
    out = export.export_model(module, dm, tmp_path / "model", tiny["metrics"], tiny["hparams"])
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    assert "model.lora.merge=false" in capsys.readouterr().err
    assert len(Generator.from_dir(out, copy_index=None).sample(["hi"], **{**SAMPLING, "n": 1, "max_new_tokens": 4})) == 1
