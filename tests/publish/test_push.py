"""push.py: a dry run lists exactly the repo id and the files; a push (against a stand-in for the
Hub, offline) uploads those files with the card pointing at the repo, using HF_TOKEN only."""

import json
import shutil

import pytest
import yaml
from conftest import run_cli

from huggingtweets.errors import UserError
from huggingtweets.publish import push

LOCAL = "/somewhere/outputs/runs/2024_demo_ada/model"


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "run" / "model"
    (d / "sub").mkdir(parents=True)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "sub/extra.txt"):
        (d / name).write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 64)
    (d / "predictions.png").write_bytes(b"\x89PNG")
    (d / "README.md").write_text(f'---\nmodel-index:\n- name: {LOCAL}\n---\n'
                                 f'pipeline("text-generation", model="{LOCAL}")\n')
    (d / "huggingtweets.json").write_text(json.dumps({"handles": ["demo_ada", "demo_bo"],
                                                      "model_id": LOCAL}))
    (d / ".cache").write_text("hidden")  # hidden files and a copy index never go up
    (d / "copycheck.npz").write_bytes(b"x")
    (d.parent / "copycheck.npz").write_bytes(b"x")
    return d


FILES = ["README.md", "config.json", "generation_config.json", "huggingtweets.json",
         "model.safetensors", "predictions.png", "sub/extra.txt", "tokenizer.json"]


def test_dry_run_cli_lists_exactly_the_repo_and_files_offline(model_dir):
    res = run_cli("push.py", f"model_dir={model_dir}", "repo_id=me/bot", "dry_run=true",
                  env={"HF_TOKEN": ""})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "repo: me/bot (public model)"
    assert [x.strip() for x in lines[1:-1]] == FILES
    assert lines[-1] == "dry run: nothing uploaded (8 files)"


def test_plan_names_the_repo_after_the_users_and_validates_it(model_dir):
    p = push.plan(model_dir)
    assert p["repo_id"] == "huggingtweets-demo_ada-demo_bo" and p["files"] == FILES
    with pytest.raises(UserError, match="repo_id"):
        push.plan(model_dir, "me/has space")
    with pytest.raises(UserError, match="not an exported model"):
        push.plan(model_dir.parent)


class FakeApi:
    def __init__(self):
        self.calls = []

    def whoami(self):
        return {"name": "someone"}

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_commit(self, repo_id, operations, **kw):
        self.calls.append(("create_commit", repo_id, operations))


def test_push_uploads_the_planned_files_with_the_card_naming_the_repo(model_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(UserError, match="HF_TOKEN"):
        push.push(model_dir, "me/bot", api=FakeApi())
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    api = FakeApi()
    out = push.push(model_dir, None, private=True, api=api)
    assert out["repo_id"] == "someone/huggingtweets-demo_ada-demo_bo"  # owner from the token
    (_, repo, kw), (_, repo2, ops) = api.calls
    assert repo == repo2 == out["repo_id"] and kw["private"] is True and kw["exist_ok"] is True
    assert sorted(op.path_in_repo for op in ops) == FILES
    readme = next(op for op in ops if op.path_in_repo == "README.md").path_or_fileobj
    readme = readme if isinstance(readme, bytes) else readme.read()
    text = readme.decode()
    assert LOCAL not in text and 'model="someone/huggingtweets-demo_ada-demo_bo"' in text
    assert "name: someone/huggingtweets-demo_ada-demo_bo" in text
    assert (model_dir / "README.md").read_text().count(LOCAL) == 2  # the local card is untouched
    # an older export's huggingtweets.json names its local folder: the uploaded one, the repo
    info = next(op for op in ops if op.path_in_repo == "huggingtweets.json").path_or_fileobj
    info = json.loads(info if isinstance(info, bytes) else info.read())
    assert info == {"handles": ["demo_ada", "demo_bo"], "model_id": out["repo_id"]}


def _uploaded(op) -> bytes:
    data = op.path_or_fileobj
    if isinstance(data, str):
        with open(data, "rb") as f:
            return f.read()
    return data if isinstance(data, bytes) else data.read()


def test_push_of_an_export_names_the_repo_everywhere(tiny, tmp_path, monkeypatch):
    model = tmp_path / "copy" / "model"
    shutil.copytree(tiny["model"], model)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    api = FakeApi()
    out = push.push(model, None, api=api)
    repo = "someone/huggingtweets-demo_ada-demo_bo"  # the local name is a substring of it
    assert out["repo_id"] == repo
    ops = {op.path_in_repo: _uploaded(op) for op in api.calls[-1][2]}
    readme = ops["README.md"].decode()
    front = yaml.safe_load(readme.split("\n---\n", 1)[0].removeprefix("---\n"))
    assert front["model-index"][0]["name"] == repo
    assert f'pipeline("text-generation", model="{repo}")' in readme
    assert readme.count(repo) == 2 and "someone/someone" not in readme
    assert json.loads(ops["huggingtweets.json"])["model_id"] == repo
    # the rest of the card is the exported one, byte for byte
    local = (model / "README.md").read_text()
    local_front = yaml.safe_load(local.split("\n---\n", 1)[0].removeprefix("---\n"))
    local_front["model-index"][0]["name"] = repo
    assert front == local_front
    assert readme.split("\n---\n", 1)[1] == local.split("\n---\n", 1)[1].replace(
        'model="huggingtweets-demo_ada-demo_bo"', f'model="{repo}"')
    for name, data in ops.items():
        for needle in (str(model), str(tiny["run"].parent), str(tmp_path)):
            assert needle.encode() not in data, (name, needle)
