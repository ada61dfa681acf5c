"""The web demo: its JSON API in-process, and end to end in a real headless chromium (Debian's,
driven by Playwright): type a prompt, click, see the requested number of tweet cards with the
user's name, copy one, no console errors, and a hostile display name stays text."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT
from test_evaluate import tiny  # noqa: F401  (the trained tiny run, shared)

from huggingtweets.publish.app import Demo, make_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE = '<img src=x onerror=alert("xss")> & "Bo"'


def _request(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_api_serves_the_page_info_and_tweets(tiny):  # noqa: F811
    demo = Demo(tiny["model"], seed=0, max_new_tokens=12)
    server = make_server(demo, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, headers, page = _request(url + "/")
        assert status == 200 and b'<script src="/app.js">' in page
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert b"ada" not in page  # the page is static: names arrive as JSON, shown as text
        info = json.loads(_request(url + "/api/info")[2])
        assert [u["user"] for u in info["users"]] == ["demo_ada", "demo_bo"]
        assert info["filter_copies"] is True and info["voices"] == []
        status, _, body = _request(url + "/api/generate", {"prompt": "My dream is", "n": 2})
        out = json.loads(body)
        assert status == 200 and len(out["samples"]) == 2
        assert all(s["text"].startswith("My dream is") and s["handle"] == "@demo_ada · @demo_bo"
                   for s in out["samples"])
        for bad in ({"n": 0}, {"n": 99}, {"temperature": "hot"}, {"prompt": "x" * 300},
                    {"user": "nobody"}, [1, 2]):
            status, _, body = _request(url + "/api/generate", bad)
            assert status == 400 and json.loads(body)["error"], bad
        assert _request(url + "/nope")[0] == 404
        assert _request(url + "/favicon.ico")[0] == 204
    finally:
        server.shutdown()
        server.server_close()


def _ensure_chromium() -> None:
    """Debian's chromium, installed with apt when missing (CI: a fresh Debian, root)."""
    if Path(CHROMIUM).exists():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get: cannot install chromium")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"] if shutil.which("sudo") else None
    if sudo is None:
        pytest.skip("apt-get needs root, and there is no sudo")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env, timeout=900)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], check=True, env=env,
                   timeout=1800)
    assert Path(CHROMIUM).exists()


def _ensure_playwright() -> None:
    """The Python driver only (`playwright install` would download a browser: never)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "playwright"], check=True,
                       timeout=900)


def _start_app(model_dir: Path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), f"model_dir={model_dir}", "port=0", "n=2",
         "max_new_tokens=16"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline, lines = time.time() + 300, []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith("serving "):
            return proc, line.split(" on ")[-1].split()[0]
    proc.kill()
    raise AssertionError("the app did not start:\n" + "".join(lines)[-3000:])


@pytest.mark.slow
@pytest.mark.browser
def test_web_demo_in_a_real_headless_browser(tiny, tmp_path):  # noqa: F811
    _ensure_chromium()
    _ensure_playwright()
    from playwright.sync_api import expect, sync_playwright

    # The trained tiny model, with a display name that tries to inject HTML.
    model = tmp_path / "run" / "model"
    shutil.copytree(tiny["model"], model)
    shutil.copy(tiny["run"] / "copycheck.npz", tmp_path / "run")
    info = json.loads((model / "huggingtweets.json").read_text())
    info["display_names"]["demo_bo"] = HOSTILE
    (model / "huggingtweets.json").write_text(json.dumps(info))

    proc, url = _start_app(model)
    errors, dialogs = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"{r.url} {r.failure}"))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            assert "ada" in page.inner_text("#title") and HOSTILE in page.inner_text("#title")

            page.fill("#prompt", "My dream is")
            page.fill("#n", "4")
            page.fill("#temperature", "0.9")
            page.click("#generate")
            # (locator waits: the page's CSP forbids the eval behind wait_for_function)
            cards = page.locator("#results .tweet")
            expect(cards).to_have_count(4, timeout=120_000)
            for i in range(4):
                card = cards.nth(i)
                assert card.locator(".text").inner_text().startswith("My dream is")
                name = card.locator(".name").inner_text()
                assert "ada" in name and HOSTILE in name  # shown as text, not parsed
                assert card.locator(".handle").inner_text() == "@demo_ada · @demo_bo"
                assert card.locator(".avatar").inner_text() == "A"
            assert page.locator("#results img").count() == 0
            cards.nth(0).locator(".copy").click()
            expect(cards.nth(0).locator(".copy")).to_have_text("Copied")
            assert page.inner_text("#status").startswith("4 tweets")

            # ask again with other settings: the cards are replaced, not appended
            page.fill("#n", "1")
            page.click("#generate")
            expect(cards).to_have_count(1, timeout=120_000)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not errors, errors
    assert not dialogs, dialogs
