"""Writers of the same user at once, and writers killed mid-write: one lock per user for every
writer (API, archive, CSV, JSONL, twarc), bounded and never stale; an atomic cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from conftest import ROOT

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts

pytestmark = pytest.mark.timeout(180)

# Slows every parquet write down, so that two writers' read-merge-write windows overlap for sure
# (without the lock, both read the same old cache and the second write drops the first's posts).
SLOW_WRITES = """
import time, pandas as pd
_write = pd.DataFrame.to_parquet
def slow(self, *a, **kw):
    time.sleep(float(__import__("os").environ.get("SLOW_S", "0")))
    return _write(self, *a, **kw)
pd.DataFrame.to_parquet = slow
"""


def python(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def csv_file(path, first: int, n: int):
    rows = [{"id": i, "created_at": f"2021-01-01T00:{i % 60:02d}:00Z", "text": f"post {i}"}
            for i in range(first, first + n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


IMPORT = SLOW_WRITES + """
import sys
from omegaconf import OmegaConf
from huggingtweets.ingest import sources
cfg = OmegaConf.create({"_target_": "huggingtweets.ingest.sources.files." + sys.argv[3],
                        "path": sys.argv[2]})
got = sources.fetch_user(cfg, "alice", sys.argv[1], name="import")
print(len(got.merged))
"""


def test_two_imports_of_the_same_user_at_once_keep_both(tmp_path):
    data = tmp_path / "data"
    a = csv_file(tmp_path / "a.csv", 1, 40)
    b = tmp_path / "b.jsonl"
    b.write_text("".join(f'{{"id": {i}, "created_at": "2021-02-01", "text": "b {i}"}}\n'
                         for i in range(100, 130)))
    children = [python(IMPORT, str(data), str(a), "read_csv", env={"SLOW_S": "1.0"}),
                python(IMPORT, str(data), str(b), "read_jsonl", env={"SLOW_S": "1.0"})]
    outs = [c.communicate(timeout=120) for c in children]
    assert [c.returncode for c in children] == [0, 0], [o[1][-1500:] for o in outs]
    merged = posts.read_posts(data, "alice")
    assert len(merged) == 70 and merged["id"].is_unique  # 40 from the CSV + 30 from the JSONL
    first, second = sorted(int(o[0]) for o in outs)  # the second to write saw the first's posts
    assert first in (30, 40) and second == 70


HOLD = """
import sys, time
from huggingtweets.ingest import posts
with posts.user_lock(sys.argv[1], "alice"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_waiting_for_the_lock_is_bounded_and_names_the_holder(tmp_path):
    holder = python(HOLD, str(tmp_path), "30")
    try:
        assert holder.stdout.readline().strip() == "held"
        df = pd.DataFrame({"id": ["1"], "created_at": ["2022-01-01"], "text": ["a"]})
        started = time.monotonic()
        with pytest.raises(UserError, match=rf"another fetch or import of @alice \(pid "
                                            rf"{holder.pid}\).*over 0.5s.*lock_timeout"):
            posts.write_posts(tmp_path, "alice", df, source="test", lock_timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.communicate()


def test_a_lock_held_by_a_killed_process_is_not_stale(tmp_path):
    holder = python(HOLD, str(tmp_path), "600")
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    assert posts.lock_path(tmp_path, "alice").exists()  # the file stays; the lock died
    df = pd.DataFrame({"id": ["1"], "created_at": ["2022-01-01"], "text": ["a"]})
    started = time.monotonic()
    posts.write_posts(tmp_path, "alice", df, source="test", lock_timeout=5)
    assert time.monotonic() - started < 2


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path):
    import threading

    with posts.user_lock(tmp_path, "alice"):
        with posts.user_lock(tmp_path, "alice", timeout=0.5):  # the API path: fetch, then write
            pass
        outcome = []

        def other():
            try:
                with posts.user_lock(tmp_path, "alice", timeout=0.3):
                    outcome.append("got it")
            except UserError:
                outcome.append("timed out")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
    assert outcome == ["timed out"]


WRITER = """
import sys, pandas as pd
from huggingtweets.ingest import posts
n = 20000
def table(tag):
    return pd.DataFrame({"id": [f"{tag}{i}" for i in range(n)],
                         "created_at": pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC"),
                         "text": [f"{tag} post {i} " * 5 for i in range(n)]})
print("start", flush=True)
while True:
    for tag in "ab":
        posts.write_posts(sys.argv[1], "alice", table(tag), source="test", refresh="full")
"""


def test_a_writer_killed_mid_write_leaves_the_old_or_the_new_cache(tmp_path):
    """SIGKILL a process that rewrites the cache in a loop, at moments spread over a write:
    each time the cache reads back whole (all a-posts or all b-posts), and the next write works."""
    seen = set()
    for attempt, delay in enumerate([0.9, 1.3, 1.7, 2.1, 2.6, 3.2]):
        writer = python(WRITER, str(tmp_path))
        assert writer.stdout.readline().strip() == "start"
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.communicate()
        if not posts.tweets_path(tmp_path, "alice").exists():
            continue  # killed before the first write finished: no cache, never half a cache
        cached = posts.read_posts(tmp_path, "alice")
        tags = set(cached["id"].str[0])
        assert len(cached) == 20000 and len(tags) == 1, (attempt, len(cached), tags)
        seen |= tags
    assert seen, "the writer never finished a write: give it longer"
    df = pd.DataFrame({"id": ["z"], "created_at": ["2022-01-01"], "text": ["z"]})
    merged = posts.write_posts(tmp_path, "alice", df, source="test", lock_timeout=5)
    assert len(merged) == 20001
    leftovers = list((tmp_path / "tweets").glob(".*.tmp"))
    assert not leftovers, leftovers  # a killed writer's temp files are swept by the next write
