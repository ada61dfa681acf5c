"""Publish an exported model directory to the Hugging Face Hub: exactly `plan()`'s files (no hidden
ones, no copy-check index), with the card and huggingtweets.json naming the repo. The token comes
from the environment only (HF_TOKEN).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from huggingtweets.errors import UserError
from huggingtweets.publish import card
from huggingtweets.publish.generate import COPY_INDEX, INFO, read_info

# the usage snippet's model argument, as card.snippet_model writes it (a JSON string literal)
_SNIPPET = re.compile(r'(pipeline\("text-generation", )model="(?:[^"\\\n]|\\.)*"')


def plan(model_dir: str | Path, repo_id: str | None = None, private: bool = False) -> dict:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(model_dir).expanduser()
    if not (path / "config.json").exists():
        raise UserError(f"{path} is not an exported model directory (no config.json): "
                        "pass model_dir=outputs/<run>/model")
    info = read_info(path)
    repo_id = repo_id or card.model_name(info.get("handles") or [path.resolve().parent.name])
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"repo_id={repo_id}: {err}") from None
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                   if p.is_file() and p.name != COPY_INDEX
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if "README.md" not in files:
        raise UserError(f"{path} has no README.md model card: export it with train.py")
    return {"repo_id": repo_id, "files": files, "model_dir": str(path), "private": bool(private),
            "local_id": info.get("model_id")}


def readme_for(p: dict, repo_id: str) -> bytes:
    """The card naming the repo in the snippet and the model-index (YAML parsed, not searched)."""
    text = (Path(p["model_dir"]) / "README.md").read_text()
    if text.startswith("---\n") and "\n---\n" in text:
        head, body = text[4:].split("\n---\n", 1)
        front = yaml.safe_load(head) or {}
        for entry in front.get("model-index") or []:
            entry["name"] = repo_id
        head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()
        text = f"---\n{head}\n---\n{body}"
    text = _SNIPPET.sub(lambda m: m.group(1) + card.snippet_model(repo_id), text)
    local = p.get("local_id")
    if local and Path(local).is_absolute():  # an older export: its folder's path, anywhere
        text = text.replace(local, repo_id)
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
    info = {**read_info(root), "model_id": repo}  # an older export's names its local folder
    rewritten = {"README.md": readme_for(p, repo),
                 INFO: (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()}
    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=rewritten.get(f) or str(root / f))
           for f in p["files"]]
    api.create_commit(repo, operations=ops, repo_type="model",
                      commit_message="Upload a huggingtweets model")
    return {**p, "repo_id": repo, "url": f"https://huggingface.co/{repo}"}
