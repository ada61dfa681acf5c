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


def test_api_serves_the_page_info_and_tweets(tiny):
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
def test_web_demo_in_a_real_headless_browser(tiny, tmp_path):
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


# -- attacks on the server (a stand-in model: these test HTTP, not sampling) -----------------

class FakeGen:
    """Generator's interface, answering at once: two users, one voice (demo_ada)."""

    users = ["demo_ada"]
    copies = None
    info = {"handles": ["demo_ada", "demo_bo"], "display_names": {"demo_ada": "Ada"}}

    def __init__(self):
        self.dropped = {"copies": 0, "empty": 0}
        self.calls = []

    def sample(self, prompts, n, **kw):
        self.calls.append({"prompts": prompts, "n": n, **kw})
        if prompts[0] == "crash":
            raise RuntimeError("a bug\x1b[31m")
        return [{"text": f"{prompts[0]} {i}", "prompt": prompts[0]} for i in range(n)]


@pytest.fixture
def served(monkeypatch, tmp_path):
    """A server with the stand-in model, short timeouts, 4 connections at most: (port, demo)."""
    from huggingtweets.publish import app

    monkeypatch.setattr(app.Generator, "from_dir", classmethod(lambda cls, *a, **k: FakeGen()))
    demo = Demo(tmp_path, filter_copies=False, seed=0)
    server = make_server(demo, "127.0.0.1", 0, read_timeout=0.6, request_deadline=1.5,
                         max_connections=4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], demo
    server.shutdown()
    server.server_close()


def _raw(port, data: bytes, timeout=10) -> tuple[int, dict]:
    """Send `data` as is on a fresh connection: (status, JSON body or {}); status 0 when the
    server closed the connection without an answer."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return 0, {}
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {}


def _post(port, body: bytes, headers: dict | None = None, length: str | None = "auto") -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json", **(headers or {})}
    if length == "auto":
        length = str(len(body))
    if length is not None:
        headers["Content-Length"] = length
    lines = ["POST /api/generate HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()
                                               if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _get(port, path="/", headers: dict | None = None) -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _no_traceback(capfd):
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    return err


@pytest.mark.parametrize("length,body,status", [
    ("-1", b'{"n": 1}', 400),                     # int() would take it: read to the end of the stream
    ("abc", b"{}", 400),
    ("+2", b"{}", 400),
    ("1e3", b"{}", 400),
    ("٢", b"{}", 400),                            # an Arabic-Indic digit: int() takes that too
    ("10001", b"{}", 413),                        # over the cap (nothing sent: refused at once)
    ("99999999999999999999999", b"{}", 413),
    (None, b"{}", 411),                           # no Content-Length
])
def test_a_post_needs_a_valid_content_length_under_the_cap(served, capfd, length, body, status):
    port, _ = served
    got, out = _raw(port, _post(port, body, length=length))
    assert got == status and out["error"]
    assert _raw(port, _post(port, b'{"n": 1}'))[0] == 200  # the server is still fine
    _no_traceback(capfd)


def test_chunked_conflicting_and_short_bodies_are_refused(served, capfd):
    port, _ = served
    chunked = _post(port, b'2\r\n{}\r\n0\r\n\r\n', {"Transfer-Encoding": "chunked"}, length=None)
    assert _raw(port, chunked)[0] == 411
    two = _post(port, b"{}", {"Content-Length": "2\r\nContent-Length: 9"}, length=None)
    assert _raw(port, two)[0] == 400
    # says 50 bytes, sends 2, then goes quiet: dropped at the read timeout, no answer
    assert _raw(port, _post(port, b"{}", length="50"))[0] == 0
    _no_traceback(capfd)


@pytest.mark.parametrize("headers,status", [
    ({"Host": "evil.example"}, 403),                      # DNS rebinding: a name that is not ours
    ({"Host": "evil.example:{port}"}, 403),
    ({"Host": "127.0.0.1:1"}, 403),                       # another port
    ({"Host": None}, 403),                                # none at all
    ({"Host": "localhost:{port}"}, 200),
    ({"Origin": "http://evil.example"}, 403),             # a page elsewhere
    ({"Origin": "null"}, 403),                            # a sandboxed frame, a file:// page
    ({"Origin": "http://127.0.0.1:{port}"}, 200),         # the demo's own page
    ({"Origin": "https://127.0.0.1:{port}"}, 403),
])
def test_host_and_origin_must_name_this_server(served, capfd, headers, status):
    port, _ = served
    headers = {k: v.format(port=port) if v else v for k, v in headers.items()}
    assert _raw(port, _get(port, "/api/info", headers))[0] == status
    assert _raw(port, _post(port, b'{"n": 1}', headers))[0] == status
    _no_traceback(capfd)


def test_cross_site_fetches_and_non_json_posts_are_refused(served, capfd):
    port, _ = served
    assert _raw(port, _get(port, "/api/info", {"Sec-Fetch-Site": "cross-site"}))[0] == 403
    assert _raw(port, _get(port, "/api/info", {"Sec-Fetch-Site": "same-origin"}))[0] == 200
    # a form on another site can POST text/plain without a CORS preflight, never JSON
    assert _raw(port, _post(port, b'{"n": 1}', {"Content-Type": "text/plain"}))[0] == 415
    assert _raw(port, _post(port, b'{"n": 1}', {"Content-Type": "application/json; charset=utf-8"}))[0] == 200
    _no_traceback(capfd)


BAD_BODIES = [
    b'{"user": 5}', b'{"user": ["demo_ada"]}', b'{"user": {"a": 1}}', b'{"user": true}',
    b'{"user": "demo_bo"}',                     # a user, but not a voice this model has
    b'{"user": "nobody"}',
    b'{"n": "3"}', b'{"n": true}', b'{"n": 2.5}', b'{"n": 0}', b'{"n": 11}', b'{"n": -1}',
    b'{"n": [3]}', b'{"n": 1e400}',
    b'{"temperature": 1e-300}', b'{"temperature": 0}', b'{"temperature": -1}',
    b'{"temperature": 2.5}', b'{"temperature": "hot"}', b'{"temperature": true}',
    b'{"temperature": NaN}', b'{"temperature": Infinity}', b'{"temperature": 1e400}',
    b'{"prompt": 5}', b'{"prompt": ["a"]}', b'{"prompt": "' + b"x" * 281 + b'"}',
    b'{"promt": "typo"}', b"[1, 2]", b'"text"', b"null", b"3",
    b"not json", b'{"prompt": "\xff\xfe"}', b"[" * 5000 + b"]" * 5000,
]


def test_every_json_field_is_type_checked(served, capfd):
    port, demo = served
    for body in BAD_BODIES:
        status, out = _raw(port, _post(port, body))
        assert status == 400 and out["error"], (body[:40], status, out)
    assert demo.gen.calls == []  # none of them reached the model
    status, out = _raw(port, _post(port, json.dumps(
        {"prompt": "hi", "n": 2, "temperature": 0.05, "user": "demo_ada"}).encode()))
    assert status == 200 and [s["text"] for s in out["samples"]] == ["hi 0", "hi 1"]
    assert out["samples"][0]["name"] == "Ada" and out["samples"][0]["handle"] == "@demo_ada"
    assert demo.gen.calls[-1]["user"] == "demo_ada" and demo.gen.calls[-1]["temperature"] == 0.05
    status, out = _raw(port, _post(port, b'{"prompt": null, "n": null, "user": ""}'))
    assert status == 200 and len(out["samples"]) == demo.n  # null and "" take the defaults
    _no_traceback(capfd)


def test_a_failing_generation_is_a_500_and_one_log_line(served, capfd):
    port, _ = served
    status, out = _raw(port, _post(port, b'{"prompt": "crash"}'))
    assert status == 500 and out["error"] == "generation failed"
    err = _no_traceback(capfd)
    assert "error: generation failed: RuntimeError: a bug" in err and "\x1b" not in err


def test_silent_and_dripping_clients_are_dropped_and_block_nobody(served, capfd):
    import socket

    port, _ = served
    start = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    drip = socket.create_connection(("127.0.0.1", port), timeout=10)
    request = _get(port, "/api/info")
    dropped = {}

    def dripper():  # a byte every 0.2 s: never silent for the read timeout (0.6 s)
        try:
            for b in request:
                drip.sendall(bytes([b]))
                time.sleep(0.2)
        except OSError:
            pass
        dropped["drip"] = time.monotonic() - start

    t = threading.Thread(target=dripper, daemon=True)
    t.start()
    # meanwhile a good client is served at once
    t0 = time.monotonic()
    assert _raw(port, _get(port, "/api/info"))[0] == 200
    assert _raw(port, _post(port, b'{"n": 1}'))[0] == 200
    assert time.monotonic() - t0 < 0.5
    assert silent.recv(1) == b""  # closed by the server: the read timeout
    assert time.monotonic() - start < 3
    assert drip.recv(1) == b""  # closed by the request deadline (1.5 s), mid-request
    assert time.monotonic() - start < 4  # the whole request would take len(request) * 0.2 s
    silent.close()
    drip.close()
    t.join(timeout=30)
    _no_traceback(capfd)


def test_connections_past_the_limit_are_closed_at_once(served, capfd):
    import socket

    port, _ = served
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    time.sleep(0.2)  # let the server accept them all
    t0 = time.monotonic()
    assert _raw(port, _get(port, "/api/info"))[0] == 0  # a fifth: closed, no answer
    assert time.monotonic() - t0 < 0.5
    for s in held:
        s.close()
    time.sleep(0.2)
    assert _raw(port, _get(port, "/api/info"))[0] == 200  # slots free again
    _no_traceback(capfd)


def test_the_banner_prints_display_names_without_terminal_controls(tiny, tmp_path):
    # a display name that would retitle the terminal, clear it and print a banner line of its own
    model = tmp_path / "model"
    shutil.copytree(tiny["model"], model)
    info = json.loads((model / "huggingtweets.json").read_text())
    info["display_names"]["demo_bo"] = "\x1b]0;pwned\x07Bo\x1b[2J\nserving evil on http://evil/ \x9b1m"
    (model / "huggingtweets.json").write_text(json.dumps(info))
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), f"model_dir={model}", "port=0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("serving "):
            line = proc.stdout.readline()
            assert line, "the app did not start:\n" + "".join(lines)[-3000:]
            lines.append(line)
        url = lines[-1].split(" on ")[-1].split()[0]
        assert _request(url + "api/info")[0] == 200  # the banner names the real address
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = "".join(lines)
    assert not any(c in out for c in "\x1b\x07\x9b")
    assert sum(line.startswith("serving ") for line in lines) == 1  # the name printed no line
    assert "\ufffd]0;pwned\ufffdBo\ufffd[2J serving evil" in lines[-1]  # shown, inert


def test_the_demo_serves_an_adapter_export(tiny, tmp_path):
    from fakes.models import adapter_export

    demo = Demo(adapter_export(tiny["model"], tmp_path / "model"), seed=0, max_new_tokens=8,
                copy_index=None)
    out = demo.generate({"prompt": "My dream is", "n": 2})
    assert len(out["samples"]) == 2 and demo.info()["title"]


def test_app_without_model_dir_or_with_a_damaged_info_file_is_one_line(tiny, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny["model"], model)
    (model / "huggingtweets.json").write_text('{"handles": ')
    for args in ([], [f"model_dir={model}"]):
        res = subprocess.run([sys.executable, str(ROOT / "app.py"), "port=0", *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        err = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(err) == 1 and err[0].startswith("error: "), res.stderr
        assert ("model_dir=" if not args else "huggingtweets.json") in err[0]
