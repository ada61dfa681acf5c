"""The web demo (Gradio): its bounds as an API client meets them, loopback by default, one line
when the extra is missing, and the Space's app.py end to end in a real headless chromium (Debian's,
driven by Playwright; `make test` installs it): type a prompt, pick a number, read that many
tweets, and a hostile display name stays text."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from fakes.configs import DEMO

from huggingtweets.errors import UserError

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = '<img src=x onerror=alert("xss")> **Bo** [link](http://evil.example)'


def _hostile_copy(tiny, tmp_path, name=HOSTILE) -> Path:
    """The trained tiny model (and its copy index), with a display name that injects."""
    model = tmp_path / "run" / "model"
    shutil.copytree(tiny["model"], model)
    shutil.copy(tiny["run"] / "copycheck.npz", tmp_path / "run")
    info = json.loads((model / "huggingtweets.json").read_text())
    info["display_names"]["demo_bo"] = name
    (model / "huggingtweets.json").write_text(json.dumps(info))
    return model


@pytest.fixture(scope="module")
def served(tiny):
    """The local demo of the tiny model on a free loopback port: (Demo, url)."""
    pytest.importorskip("gradio")
    from huggingtweets.publish.app import Demo, serve

    demo = Demo(tiny["model"], **{**DEMO, "n": 2, "max_n": 4, "seed": 0, "max_new_tokens": 12})
    blocks, url = serve(demo, port=0)
    yield demo, url
    blocks.close()


def test_an_api_client_gets_tweets_within_the_bounds_and_nothing_past_them(served, monkeypatch):
    from gradio_client import Client

    demo, url = served
    assert url.startswith("http://127.0.0.1:")  # loopback unless host= says otherwise
    calls = []
    sample = demo.gen.sample
    monkeypatch.setattr(demo.gen, "sample", lambda *a, **k: calls.append(k) or sample(*a, **k))
    client = Client(url, verbose=False)
    text = client.predict("My dream is", 3, 0.9, api_name="/generate")
    tweets = text.split("\n\n")
    assert len(tweets) == 3 and all(t.startswith("My dream is") for t in tweets), text
    assert calls[-1]["temperature"] == 0.9 and calls[-1]["n"] == 3
    for bad in (("x" * 281, 2, 1.0),   # longer than a tweet: the page's max_length binds no API
                ("hi", 5, 1.0),        # over max_n=4
                ("hi", 0, 1.0), ("hi", 2.5, 1.0),
                ("hi", 2, 0.0), ("hi", 2, 2.5), ("hi", 2, float("nan"))):
        with pytest.raises(Exception):  # gradio_client's AppError: the page's message
            client.predict(*bad, api_name="/generate")
    assert len(calls) == 1  # none of them reached the model
    client.close()


def test_the_bounds_say_what_to_send_and_show_as_text_only(served):
    demo, _ = served
    import gradio as gr

    page = demo.blocks()
    run = next(f.fn for f in page.fns.values() if f.api_name == "generate")
    with pytest.raises(gr.Error, match="at most 280 characters"):
        run("x" * 281, 2, 1.0)
    with pytest.raises(gr.Error, match="from 1 to 4"):
        run("hi", 5, 1.0)
    # a prompt over the model's context (64 tokens) is the Generator's UserError, as text:
    # gr.Error renders HTML, so its message is escaped
    with pytest.raises(gr.Error) as err:
        run("<b>é</b>" * 30, 1, 1.0)
    assert "shorten it" in err.value.message and "<b>" not in err.value.message
    assert run("My dream is", 1, 1.0).startswith("My dream is")


def test_defaults_out_of_bounds_fail_before_the_model_loads(tiny, monkeypatch):
    pytest.importorskip("gradio")
    from huggingtweets.publish import app

    monkeypatch.setattr(app.Generator, "from_dir", lambda *a, **k: pytest.fail("loaded"))
    for kw, says in (({"n": 11}, "n=11"), ({"max_n": 50}, "max_n=50"),
                     ({"temperature": 9.0}, "temperature=9.0"), ({"top_p": 2}, "top_p=2")):
        with pytest.raises(UserError, match=says):
            app.Demo(tiny["model"], **{**DEMO, **kw})


def test_the_demo_serves_an_adapter_export(tiny, tmp_path):
    pytest.importorskip("gradio")
    from fakes.models import adapter_export

    from huggingtweets.publish.app import Demo

    demo = Demo(adapter_export(tiny["model"], tmp_path / "model"),
                **{**DEMO, "seed": 0, "max_new_tokens": 8, "copy_index": None})
    tweets = demo.generate("My dream is", 2, 1.0, None)
    assert len(tweets) == 2 and all(t.startswith("My dream is") for t in tweets)


def test_a_missing_gradio_is_one_line_naming_the_extra(tmp_path):
    # gradio hidden from the import system: `import gradio` fails as if it were not installed
    code = ("import runpy, sys; sys.modules['gradio'] = None; "
            f"sys.argv = [{str(ROOT / 'app.py')!r}, 'model_dir={tmp_path}']; "
            f"runpy.run_path({str(ROOT / 'app.py')!r}, run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "error: the web demo needs Gradio: pip install -e '.[demo]'"], res.stderr[-2000:]


def test_app_without_model_dir_or_with_a_damaged_info_file_is_one_line(tiny, tmp_path):
    pytest.importorskip("gradio")
    model = tmp_path / "model"
    shutil.copytree(tiny["model"], model)
    (model / "huggingtweets.json").write_text('{"handles": ')
    for args, says in (([], "model_dir="), ([f"model_dir={model}"], "huggingtweets.json"),
                       ([f"model_dir={tiny['model']}", "n=20"], "n=20")):
        res = run_cli("app.py", "port=0", *args, timeout=120)
        err = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(err) == 1 and err[0].startswith("error: "), res.stderr
        assert says in err[0]


def _wait_for(proc, prefix: str, timeout=120) -> list[str]:
    """The process's output lines up to the first that starts with `prefix`."""
    deadline, lines = time.time() + timeout, []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.lstrip("* ").startswith(prefix):
            return lines
    proc.kill()
    raise AssertionError("the app did not start:\n" + "".join(lines)[-3000:])


def test_the_banner_prints_display_names_without_terminal_controls(tiny, tmp_path):
    pytest.importorskip("gradio")
    # a display name that would retitle the terminal, clear it and print a banner line of its own
    model = _hostile_copy(tiny, tmp_path,
                          "\x1b]0;pwned\x07Bo\x1b[2J\nserving evil on http://evil/ \x9b1m")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), f"model_dir={model}", "port=0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _wait_for(proc, "serving ")
        url = lines[-1].split(" on ")[-1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", int(url.rstrip("/").rsplit(":", 1)[1]))):
            pass  # the banner names the real address
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = "".join(lines)
    assert not any(c in out for c in "\x1b\x07\x9b")
    assert sum(line.startswith("serving ") for line in lines) == 1  # the name printed no line
    assert "pwned" not in out and "Bo serving evil" in lines[-1]  # escape sequences gone whole


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_the_spaces_app_in_a_real_headless_browser(tiny, tmp_path):
    """The Space's app.py as push.py writes it, pointed at the local tiny model."""
    pytest.importorskip("gradio")
    pytest.importorskip("playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Debian chromium (make test installs it)")
    from playwright.sync_api import expect, sync_playwright

    from huggingtweets.publish.push import space_files

    model = _hostile_copy(tiny, tmp_path)  # shown as is: text, never HTML nor Markdown
    app = space_files("me/bot")["app.py"].decode().replace(
        'MODEL_ID = "me/bot"', f"MODEL_ID = {str(model)!r}")
    (tmp_path / "space").mkdir()
    (tmp_path / "space" / "app.py").write_text(app)
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_SERVER_NAME", None)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=tmp_path / "space", env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    errors, dialogs, outside = [], [], []
    try:
        lines = _wait_for(proc, "Running on local URL")
        url = lines[-1].split("URL:")[-1].strip()
        assert url == f"http://127.0.0.1:{port}"  # loopback: a Space sets GRADIO_SERVER_NAME
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith("data:")
                    else outside.append(r.url))
            page.goto(url)
            title = page.locator("#title textarea")
            names = json.loads((model / "huggingtweets.json").read_text())["display_names"]
            expect(title).to_have_value(f"{names['demo_ada']} & {HOSTILE}", timeout=60_000)
            page.locator("#prompt textarea").fill("My dream is")
            page.locator("#n input[type=number]").fill("4")
            page.locator("#n input[type=number]").press("Enter")
            page.locator("#generate").click()
            tweets = page.locator("#tweets textarea")
            # seconds here; the margin is for a machine busy with other work
            expect(tweets).to_have_value(re.compile("My dream is"), timeout=120_000)
            got = tweets.input_value().split("\n\n")
            assert len(got) == 4 and all(t.startswith("My dream is") for t in got), got
            assert page.locator("img[src=x]").count() == 0 and page.locator("strong").count() == 0
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not errors, errors
    assert not dialogs, dialogs
    assert not outside, outside  # no font, script or telemetry from another site
