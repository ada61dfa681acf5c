"""push.py: a dry run lists exactly the repo id and the files; a push (against a stand-in for the
Hub, offline) uploads those files with the card pointing at the repo, using HF_TOKEN only."""

import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

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
    (d / "README.md").write_text(f'---\nmodel-index:\n- name: {LOCAL}\n  results:\n'
                                 '  - task: {type: text-generation}\n'
                                 '    dataset: {type: tweets, name: held-out tweets}\n'
                                 '    metrics: [{type: perplexity, value: 40.0}]\n---\n'
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
    """The HfApi calls push() makes, against an in-memory Hub: {repo_id: {path: bytes}}."""

    def __init__(self, repos: dict | None = None, spaces: dict | None = None):
        self.calls = []
        self.repos = repos or {}
        self.spaces = spaces or {}

    def whoami(self):
        return {"name": "someone"}

    def model_info(self, repo_id, **kw):
        from types import SimpleNamespace

        from huggingface_hub.errors import RepositoryNotFoundError

        if repo_id not in self.repos:
            raise RepositoryNotFoundError(f"{repo_id} not found", response=_response(404))
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=f) for f in self.repos[repo_id]])

    def hf_hub_download(self, repo_id, filename, local_dir=None, repo_type="model", **kw):
        path = Path(local_dir) / filename
        path.write_bytes((self.spaces if repo_type == "space" else self.repos)[repo_id][filename])
        return str(path)

    def space_info(self, repo_id, **kw):
        from types import SimpleNamespace

        from huggingface_hub.errors import RepositoryNotFoundError

        if repo_id not in self.spaces:
            raise RepositoryNotFoundError(f"{repo_id} not found", response=_response(404))
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=f) for f in self.spaces[repo_id]])

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_commit(self, repo_id, operations, **kw):
        self.calls.append(("create_commit", repo_id, operations, kw))


def test_push_uploads_the_planned_files_with_the_card_naming_the_repo(model_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(UserError, match="HF_TOKEN"):
        push.push(model_dir, "me/bot", api=FakeApi())
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    api = FakeApi()
    out = push.push(model_dir, None, private=True, api=api)
    assert out["repo_id"] == "someone/huggingtweets-demo_ada-demo_bo"  # owner from the token
    (_, repo, kw), (_, repo2, ops, _) = api.calls
    assert repo == repo2 == out["repo_id"] and kw["private"] is True
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


def _response(status: int):
    import httpx2

    return httpx2.Response(status, request=httpx2.Request("GET", "http://hub.invalid/"))


def _info(*handles) -> bytes:
    return json.dumps({"handles": list(handles)}).encode()


def test_push_refuses_a_repo_that_holds_another_users_model(model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    repo = "me/bot"
    theirs = {repo: {".gitattributes": b"", "README.md": b"x", "huggingtweets.json": _info("carol")}}
    api = FakeApi(theirs)
    with pytest.raises(UserError, match=r"me/bot already holds a model of @carol.*overwrite=true"):
        push.push(model_dir, repo, api=api)
    assert not api.calls  # nothing created, nothing uploaded
    foreign = FakeApi({repo: {".gitattributes": b"", "model.safetensors": b"x"}})
    with pytest.raises(UserError, match="not a huggingtweets model"):
        push.push(model_dir, repo, api=foreign)
    broken = FakeApi({repo: {"huggingtweets.json": b"{nope"}})
    with pytest.raises(UserError, match="overwrite=true"):
        push.push(model_dir, repo, api=broken)
    for api in (FakeApi(theirs), FakeApi({repo: {".gitattributes": b""}}),  # empty: ours to fill
                FakeApi({repo: {"huggingtweets.json": _info("Demo_Bo", "@demo_ada")}})):  # same people
        overwrite = api.repos[repo].get("huggingtweets.json") == _info("carol")
        push.push(model_dir, repo, api=api, overwrite=overwrite)
        assert [c[0] for c in api.calls] == ["create_repo", "create_commit"]


def test_an_adapter_export_is_pushed_and_a_local_base_refused(tiny, tmp_path, monkeypatch):
    from fakes.models import adapter_export

    adapter = adapter_export(tiny["model"], tmp_path / "model", base_name="openai-community/gpt2")
    p = push.plan(adapter)
    assert "adapter_config.json" in p["files"] and "config.json" not in p["files"]
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    api = FakeApi()
    push.push(adapter, "me/bot", api=api)
    assert "adapter_model.safetensors" in {op.path_in_repo for op in api.calls[-1][2]}
    local = adapter_export(tiny["model"], tmp_path / "local")  # its base: a folder here
    with pytest.raises(UserError, match="a local folder"):
        push.plan(local)


def test_push_cli_without_model_dir_or_with_a_damaged_info_file_is_one_line(model_dir):
    (model_dir / "huggingtweets.json").write_text('{"handles": [')
    res = run_cli("push.py", f"model_dir={model_dir}", "timeout=soon", env={"HF_TOKEN": ""})
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [  # the schema's type
        "error: timeout: Value 'soon' of type 'str' could not be converted to Float"]
    res = run_cli("push.py", f"model_dir={model_dir}", "timeout=-1", env={"HF_TOKEN": ""})
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [  # push's own range
        "error: timeout=-1.0: must be seconds, over 0 and at most 3600"]
    for args in (["dry_run=true"], [f"model_dir={model_dir}", "dry_run=true"]):
        res = run_cli("push.py", *args, env={"HF_TOKEN": ""})
        err = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(err) == 1 and err[0].startswith("error: "), res.stderr
        assert ("model_dir=" if len(args) == 1 else "huggingtweets.json") in err[0]


# -- every Hub failure is one line, without the token ----------------------------------------

TOKEN = "hf_SeCrEtToKeN0123456789"


def _push_cli(tmp_path, model_dir, endpoint, *args):
    start = time.monotonic()
    res = run_cli("push.py", f"model_dir={model_dir}", *args, timeout=120, env={
        "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"})
    took = time.monotonic() - start
    out = res.stdout + res.stderr
    assert TOKEN not in out and TOKEN[3:] not in out and "Traceback" not in out, out[-3000:]
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(err) == 1 and err[0].startswith("error: "), res.stderr[-3000:]
    assert took < 40, took
    return err[0]


@pytest.mark.parametrize("status, says", [(401, "HF_TOKEN"), (403, "write"), (404, "404"),
                                          (500, "try again"), (503, "try again")])
@pytest.mark.parametrize("repo_id", [[], ["repo_id=me/bot"]])
def test_hub_http_errors_are_one_line_without_the_token(httpserver, model_dir, tmp_path, status,
                                                        says, repo_id):
    from werkzeug import Response

    def answer(request):  # a hostile Hub also echoes the token back, with escape sequences
        return Response(json.dumps({"error": f"\x1b[2Jno: {request.headers.get('Authorization')}"}),
                        status=status, content_type="application/json")

    httpserver.expect_request(re.compile(".*")).respond_with_handler(answer)
    line = _push_cli(tmp_path, model_dir, httpserver.url_for("").rstrip("/"), *repo_id)
    assert says in line and "\x1b" not in line


def _closing_server():
    """A server that accepts each connection and closes it without answering."""
    srv = socket.create_server(("127.0.0.1", 0))

    def run():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    return srv


def test_a_hub_that_closes_the_connection_or_is_not_there_is_one_line(model_dir, tmp_path):
    srv = _closing_server()
    try:
        line = _push_cli(tmp_path, model_dir, f"http://127.0.0.1:{srv.getsockname()[1]}")
        assert "cannot reach" in line
    finally:
        srv.close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _push_cli(tmp_path, model_dir, f"http://127.0.0.1:{port}")
    assert "cannot reach" in line and f"127.0.0.1:{port}" in line


def test_a_silent_hub_is_given_up_on_after_the_timeout(model_dir, tmp_path):
    srv = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog), never answers
    try:
        line = _push_cli(tmp_path, model_dir, f"http://127.0.0.1:{srv.getsockname()[1]}", "timeout=2")
        assert "cannot reach" in line and "timeout=" in line
    finally:
        srv.close()


def test_offline_mode_is_one_line(model_dir):
    res = run_cli("push.py", f"model_dir={model_dir}", "repo_id=me/bot",
                  env={"HF_HUB_OFFLINE": "1", "HF_TOKEN": TOKEN})
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(err) == 1 and "HF_HUB_OFFLINE" in err[0], res.stderr[-2000:]
    assert TOKEN not in res.stdout + res.stderr


# -- the demo Space ----------------------------------------------------------------------------

SPACE_FILES = ["README.md", "app.py", "requirements.txt"]


def _front(readme: bytes) -> dict:
    return yaml.safe_load(readme.decode().split("\n---\n", 1)[0].removeprefix("---\n"))


def test_space_dry_run_lists_the_spaces_files_offline(model_dir):
    res = run_cli("push.py", f"model_dir={model_dir}", "repo_id=me/bot", "space=true",
                  "dry_run=true", env={"HF_TOKEN": ""})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "repo: me/bot (public model)"
    assert [x.strip() for x in lines[1:9]] == FILES
    assert lines[9] == "space: me/bot (public gradio Space)"
    assert [x.strip() for x in lines[10:-1]] == SPACE_FILES
    assert lines[-1] == "dry run: nothing uploaded (11 files)"


def test_the_spaces_files_load_the_pushed_model():
    files = push.space_files("me/huggingtweets-demo_ada")
    assert sorted(files) == SPACE_FILES
    app = files["app.py"].decode()
    assert re.findall(r"^MODEL_ID = .*$", app, flags=re.M) == ['MODEL_ID = "me/huggingtweets-demo_ada"']
    ns = {}
    exec(compile(app.split("\nimport gradio")[0], "app.py", "exec"), ns)  # its header parses
    front = _front(files["README.md"])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert front["models"] == ["me/huggingtweets-demo_ada"]
    assert front["title"] == "huggingtweets-demo_ada"
    assert "https://huggingface.co/me/huggingtweets-demo_ada" in files["README.md"].decode()
    reqs = files["requirements.txt"].decode()
    assert "transformers" in reqs and "peft" not in reqs
    assert "peft" in push.space_files("me/x", adapter=True)["requirements.txt"].decode()


def test_push_with_a_space_creates_it_after_the_model(model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    api = FakeApi()
    out = push.push(model_dir, None, api=api, space=True)
    repo = "someone/huggingtweets-demo_ada-demo_bo"
    assert out["space_id"] == repo and out["space_url"] == f"https://huggingface.co/spaces/{repo}"
    (_, r1, kw1), (_, r2, _, c1), (_, s1, kw2), (_, s2, ops, c2) = api.calls
    assert r1 == r2 == s1 == s2 == repo and kw1["repo_type"] == c1["repo_type"] == "model"
    assert kw2["repo_type"] == c2["repo_type"] == "space" and kw2["space_sdk"] == "gradio"
    files = {op.path_in_repo: _uploaded(op) for op in ops}
    assert sorted(files) == SPACE_FILES and _front(files["README.md"])["models"] == [repo]
    assert f'MODEL_ID = "{repo}"' in files["app.py"].decode()
    api = FakeApi()
    push.push(model_dir, "me/bot", api=api, space=True, space_id="team/demo")
    assert [c[1] for c in api.calls] == ["me/bot", "me/bot", "team/demo", "team/demo"]
    with pytest.raises(UserError, match="space_id="):
        push.plan(model_dir, "me/bot", space=True, space_id="has space")


def test_push_refuses_a_space_that_is_not_this_models_demo(model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    ours = push.space_files("me/bot")["README.md"]
    other = push.space_files("me/other")["README.md"]
    for files in ({".gitattributes": b"", "app.py": b"print()"},  # someone's own app
                  {"README.md": other, "app.py": b""},  # the demo of another model
                  {"README.md": b"---\n[unclosed\n---\n"}):
        api = FakeApi(spaces={"me/bot": files})
        with pytest.raises(UserError, match=r"Space me/bot .*space_id=.*overwrite=true"):
            push.push(model_dir, "me/bot", api=api, space=True)
        assert not api.calls  # not even the model went up
        push.push(model_dir, "me/bot", api=api, space=True, overwrite=True)
        assert len(api.calls) == 4
    for files in ({".gitattributes": b""}, {"README.md": ours, "app.py": b""}):  # empty; ours
        api = FakeApi(spaces={"me/bot": files})
        push.push(model_dir, "me/bot", api=api, space=True)
        assert len(api.calls) == 4
