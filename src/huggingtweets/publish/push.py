"""Publish an exported model directory to the Hugging Face Hub.

What goes up is exactly `plan()`'s file list: every file of the model dir except hidden ones and
a copy-check index (the run dir keeps that one; see generate.py). The card's usage snippet names
the local folder it was exported to; the uploaded README names the repo instead. The token comes
from the environment only (HF_TOKEN), never from the command line or a config file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from huggingtweets.errors import UserError
from huggingtweets.publish.generate import COPY_INDEX, read_info


def default_name(handles: list[str]) -> str:
    name = "huggingtweets-" + "-".join(handles)
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)[:96].strip("-.")


def plan(model_dir: str | Path, repo_id: str | None = None, private: bool = False) -> dict:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(model_dir).expanduser()
    if not (path / "config.json").exists():
        raise UserError(f"{path} is not an exported model directory (no config.json): "
                        "pass model_dir=outputs/<run>/model")
    info = read_info(path)
    repo_id = repo_id or default_name(info.get("handles") or [path.resolve().parent.name])
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"repo_id={repo_id}: {err}") from None
    files = sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and p.name != COPY_INDEX
    )
    if "README.md" not in files:
        raise UserError(f"{path} has no README.md model card: export it with train.py")
    return {"repo_id": repo_id, "files": files, "model_dir": str(path), "private": bool(private),
            "local_id": info.get("model_id")}


def readme_for(p: dict, repo_id: str) -> bytes:
    """The card with the local export path (usage snippet, model-index name) replaced by the repo."""
    text = (Path(p["model_dir"]) / "README.md").read_text()
    if p.get("local_id"):
        text = text.replace(p["local_id"], repo_id)
    return text.encode()


def push(model_dir: str | Path, repo_id: str | None = None, private: bool = False,
         dry_run: bool = False, api=None) -> dict:
    p = plan(model_dir, repo_id, private)
    if dry_run:
        return p
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise UserError("set HF_TOKEN to a Hugging Face write token "
                        "(https://huggingface.co/settings/tokens); dry_run=true needs none")
    from huggingface_hub import CommitOperationAdd, HfApi

    api = api or HfApi(token=token)
    repo = p["repo_id"]
    if "/" not in repo:
        repo = f"{api.whoami()['name']}/{repo}"
    api.create_repo(repo, private=p["private"], exist_ok=True, repo_type="model")
    root = Path(p["model_dir"])
    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=readme_for(p, repo) if f == "README.md"
                              else str(root / f)) for f in p["files"]]
    api.create_commit(repo, operations=ops, repo_type="model",
                      commit_message="Upload a huggingtweets model")
    return {**p, "repo_id": repo, "url": f"https://huggingface.co/{repo}"}
