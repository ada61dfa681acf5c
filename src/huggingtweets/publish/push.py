"""Publish an exported model directory to the Hugging Face Hub: exactly `plan()`'s files (no hidden
ones, no copy-check index), with the card and huggingtweets.json naming the repo; with `space`,
also a Gradio Space that demos it (`space_files()`: rendered from templates/space_*). The token
comes from the environment only (HF_TOKEN).
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import yaml

from huggingtweets.errors import UserError, printable
from huggingtweets.publish import card
from huggingtweets.publish.generate import (
    ADAPTER,
    COPY_INDEX,
    INFO,
    check_model_dir,
    read_info,
    read_json,
)

# the usage snippet's model argument, as card.snippet_model writes it (a JSON string literal)
_SNIPPET = re.compile(r'(pipeline\("text-generation", )model="(?:[^"\\\n]|\\.)*"')


def plan(model_dir: str | Path, repo_id: str | None = None, private: bool = False,
         space: bool = False, space_id: str | None = None) -> dict:
    """What goes up: the model repo and its files; with `space`, the Space (`space_id`, by
    default the model's name) and its files."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path, base = check_model_dir(model_dir)
    if base is not None and not card.hub_base_model(base):
        # the adapter would name a folder on this machine: nobody else could load it
        raise UserError(f"{path} is a LoRA adapter of a local folder, not of a Hub model: export "
                        "with model.lora.merge=true to publish it, or set base_model_name_or_path "
                        f"in {path / ADAPTER} to the Hub repo it came from")
    info = read_info(path)
    repo_id = repo_id or card.model_name(info.get("handles") or [path.resolve().parent.name])
    space_id = (space_id or repo_id) if space else None
    for key, value in (("repo_id", repo_id), ("space_id", space_id)):
        try:
            if value is not None:
                validate_repo_id(value)
        except HFValidationError as err:
            raise UserError(f"{key}={value}: {err}") from None
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                   if p.is_file() and p.name != COPY_INDEX
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if "README.md" not in files:
        raise UserError(f"{path} has no README.md model card: export it with train.py")
    return {"repo_id": repo_id, "files": files, "model_dir": str(path), "private": bool(private),
            "local_id": info.get("model_id"), "handles": list(info.get("handles") or []),
            "adapter": base is not None, "space_id": space_id,
            "space_files": sorted(space_files(repo_id, base is not None)) if space else []}


def space_files(model_id: str, adapter: bool = False) -> dict[str, bytes]:
    """The Space that demos `model_id`: app.py (the demo page, loading the model with a
    transformers pipeline), requirements.txt and README.md (the Space's card: sdk, app, model)."""
    from huggingface_hub import SpaceCard, SpaceCardData

    folder = resources.files(__package__) / "templates"
    # a validated repo id as a JSON string: a valid Python literal that no id can break out of
    app = re.sub(r"^MODEL_ID = .*$", lambda _: f"MODEL_ID = {json.dumps(model_id)}",
                 (folder / "space_app.py").read_text(encoding="utf-8"), count=1, flags=re.M)
    requirements = (folder / "space_requirements.txt").read_text(encoding="utf-8")
    if adapter:  # the pipeline loads an adapter repo on its base through peft
        requirements += "peft\n"
    title = model_id.rpartition("/")[2]
    data = SpaceCardData(title=title, emoji="🐦", colorFrom="blue", colorTo="gray", sdk="gradio",
                         app_file="app.py", pinned=False, models=[model_id], tags=["huggingtweets"])
    readme = SpaceCard.from_template(data, template_str=(folder / "space_readme.md").read_text(
        encoding="utf-8"), title=title, model_id=model_id)
    return {"README.md": str(readme).encode(), "app.py": app.encode(),
            "requirements.txt": requirements.encode()}


def readme_for(p: dict, repo_id: str) -> bytes:
    """The card naming the repo in the snippet and the model-index (YAML parsed, not searched)."""
    from huggingface_hub import ModelCard

    text = (Path(p["model_dir"]) / "README.md").read_text()
    model_card = ModelCard(text)
    if model_card.data.eval_results:  # the model-index's name; a card without one gains none
        model_card.data.model_name = repo_id
        text = str(model_card)
    text = _SNIPPET.sub(lambda m: m.group(1) + card.snippet_model(repo_id), text)
    local = p.get("local_id")
    if local and Path(local).is_absolute():  # an older export: its folder's path, anywhere
        text = text.replace(local, repo_id)
    return text.encode()


def push(model_dir: str | Path, repo_id: str | None = None, private: bool = False,
         dry_run: bool = False, api=None, overwrite: bool = False, timeout: float = 60,
         space: bool = False, space_id: str | None = None) -> dict:
    """Upload `plan()`'s files (and, with `space`, the Space's). A repo that already holds
    another user set's model (or files that are no huggingtweets model), or a Space that is not
    this model's demo, is left alone unless `overwrite`. Every Hub failure is a UserError of one
    line that says what to do; `timeout`: seconds the Hub may stay silent."""
    if not (isinstance(timeout, int | float) and not isinstance(timeout, bool)
            and 0 < timeout <= 3600):
        raise UserError(f"timeout={timeout!r}: must be seconds, over 0 and at most 3600")
    p = plan(model_dir, repo_id, private, space, space_id)
    if dry_run:
        return p
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise UserError("set HF_TOKEN to a Hugging Face write token "
                        "(https://huggingface.co/settings/tokens); dry_run=true needs none")
    from huggingface_hub import CommitOperationAdd, HfApi

    repo = p["repo_id"]
    try:
        if api is None:
            _bounded_client(timeout)
            api = HfApi(token=token)
        names = [n for n in (repo, p["space_id"]) if n]
        owner = api.whoami()["name"] if any("/" not in n for n in names) else None
        repo, space = (n and (n if "/" in n else f"{owner}/{n}") for n in (repo, p["space_id"]))
        if not overwrite:  # both checked before anything is created
            _check_owner(api, repo, p["handles"])
            if space:
                _check_space(api, space, repo)
        api.create_repo(repo, private=p["private"], exist_ok=True, repo_type="model")
        root = Path(p["model_dir"])
        info = {**read_info(root), "model_id": repo}  # an older export's names its local folder
        rewritten = {"README.md": readme_for(p, repo),
                     INFO: (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()}
        ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=rewritten.get(f) or str(root / f))
               for f in p["files"]]
        api.create_commit(repo, operations=ops, repo_type="model",
                          commit_message="Upload a huggingtweets model")
        if space:
            api.create_repo(space, private=p["private"], exist_ok=True, repo_type="space",
                            space_sdk="gradio")
            ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data)
                   for name, data in space_files(repo, p["adapter"]).items()]
            api.create_commit(space, operations=ops, repo_type="space",
                              commit_message=f"A demo of {repo}")
    except UserError:
        raise
    except Exception as err:
        raise hub_error(err, repo, token, timeout) from None
    return {**p, "repo_id": repo, "url": f"https://huggingface.co/{repo}", "space_id": space,
            "space_url": space and f"https://huggingface.co/spaces/{space}"}


def _same_users(a, b) -> bool:
    """One user set? Handles compare as the platforms do: without "@", whatever the case."""
    return {str(h).removeprefix("@").casefold() for h in a} == \
        {str(h).removeprefix("@").casefold() for h in b}


def _check_owner(api, repo: str, handles: list[str]) -> None:
    """Refuse to push into a repo that holds another user set's model, or anything else that is
    not a huggingtweets model (an empty repo is fine: a push that failed half-way left it)."""
    import tempfile

    from huggingface_hub.errors import RepositoryNotFoundError

    try:  # model_info: one request (listing the files retries a failing Hub for ~25 s)
        files = [f.rfilename for f in api.model_info(repo, files_metadata=False).siblings or []]
    except RepositoryNotFoundError:
        return  # new (or not visible to this token: create_repo then says so)
    fix = "pick another repo_id=, or overwrite=true to replace it"
    if INFO not in files:
        if set(files) - {".gitattributes"}:
            raise UserError(f"{repo} already holds files that are not a huggingtweets model "
                            f"(no {INFO}): {fix}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            theirs = read_json(api.hf_hub_download(repo, INFO, repo_type="model", local_dir=tmp))
        except UserError:
            raise UserError(f"{repo} already holds a model whose {INFO} is damaged: {fix}") from None
    users = theirs.get("handles") if isinstance(theirs.get("handles"), list) else []
    if not _same_users(users, handles):
        who = ", ".join("@" + str(h).removeprefix("@") for h in users) or "nobody named"
        raise UserError(f"{repo} already holds a model of {who}, not of "
                        f"{', '.join('@' + h for h in handles) or 'this model'}: {fix}")


def _check_space(api, space: str, model: str) -> None:
    """Refuse to push into a Space that is not the demo of `model` (its card's `models:`); an
    empty one is fine."""
    import tempfile

    from huggingface_hub import SpaceCard
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        files = [f.rfilename for f in api.space_info(space, files_metadata=False).siblings or []]
    except RepositoryNotFoundError:
        return
    if not set(files) - {".gitattributes"}:
        return
    if "README.md" in files:
        with tempfile.TemporaryDirectory() as tmp:
            path = api.hf_hub_download(space, "README.md", repo_type="space", local_dir=tmp)
            try:
                models = SpaceCard.load(path).data.models or []
            except (ValueError, yaml.YAMLError):  # a card whose metadata does not parse: not ours
                models = []
        if model in models:
            return
    raise UserError(f"the Space {space} already holds something other than the demo of {model}: "
                    "pick another space_id=, or overwrite=true to replace it")


def _bounded_client(timeout: float) -> None:
    """huggingface_hub waits for an answer forever by default: bound every connect and read, and
    keep its per-request log lines (URLs) out of the output."""
    import logging

    import httpx2
    from huggingface_hub.utils import _http, set_client_factory
    from huggingface_hub.utils import logging as hf_logging

    def factory():
        client = _http.default_client_factory()
        client.timeout = httpx2.Timeout(float(timeout), connect=min(10.0, float(timeout)))
        return client

    set_client_factory(factory)
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    hf_logging.set_verbosity_error()  # its retry warnings: the one line at the end says it all


# what to do, by the Hub's HTTP status
_HINTS = {
    400: "the Hub refused the request: check repo_id=",
    401: "the Hub refused HF_TOKEN: set it to a valid token (https://huggingface.co/settings/tokens)",
    403: "HF_TOKEN may not write there: use a token with write access, or a repo_id= under your "
         "own account or an organisation you can write to",
    404: "the Hub does not know this repo or account: check repo_id= and HF_ENDPOINT",
    409: "the Hub reports a conflict (a repo of that name in another type, or a concurrent push): "
         "pick another repo_id=, or push again",
    413: "a file is larger than the Hub takes",
    429: "the Hub is rate-limiting this token: wait a few minutes and push again",
}


def hub_error(err: Exception, repo: str, token: str | None, timeout: float) -> UserError:
    """One line for any failure talking to the Hub: what happened and what to do; never the
    token (a hostile or buggy server may echo it back)."""
    import httpx2
    from huggingface_hub.constants import ENDPOINT
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    def clean(text) -> str:
        text = str(text or "")
        if token:
            text = text.replace(token, "<HF_TOKEN>")
        return printable(text, limit=200)

    if isinstance(err, HfHubHTTPError) and err.response is not None:
        status = err.response.status_code
        hint = _HINTS.get(status) or ("the Hub failed: try again in a few minutes" if status >= 500
                                      else "the Hub refused the request")
        server = clean(err.server_message or str(err).splitlines()[0])
        return UserError(f"pushing to {repo}: {hint} (HTTP {status}: {server})")
    if isinstance(err, OfflineModeIsEnabled):
        return UserError("HF_HUB_OFFLINE is set: push.py needs the network; unset HF_HUB_OFFLINE")
    if isinstance(err, httpx2.TimeoutException | TimeoutError):
        return UserError(f"cannot reach the Hugging Face Hub at {ENDPOINT}: no answer in "
                         f"{timeout:g} s; check the network, or allow more with timeout=")
    if isinstance(err, httpx2.HTTPError | ConnectionError | OSError) or _is_requests_error(err):
        return UserError(f"cannot reach the Hugging Face Hub at {ENDPOINT} "
                         f"({type(err).__name__}: {clean(err)}): check the network (or "
                         "HF_ENDPOINT) and push again")
    return UserError(f"pushing to {repo} failed ({type(err).__name__}: {clean(err)})")


def _is_requests_error(err: Exception) -> bool:
    try:
        import requests
    except ImportError:
        return False
    return isinstance(err, requests.RequestException)
