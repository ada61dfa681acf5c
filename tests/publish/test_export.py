"""publish/export.py: an exported model dir holds no local path (of the run or the tmp dir)."""

import json


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
