"""Every user-facing error of the entry points (train.py, fetch.py run in a subprocess): one clear
line on stderr, exit status 2, no traceback, nothing touched."""

import pandas as pd
import pytest
from conftest import TINY, run_cli

from huggingtweets.ingest import posts


def assert_clean_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    line = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert len(line) == 1, res.stderr[-2000:]
    for n in needles:
        assert n in line[0], line[0]


def test_cli_invalid_handle(tmp_path):
    res = run_cli("train.py", "user=../../etc", *TINY, f"data.data_dir={tmp_path}/data",
                  f"hydra.run.dir={tmp_path}/run")
    assert_clean_error(res, "invalid handle")


def test_cli_missing_cache_says_how_to_import(tmp_path):
    res = run_cli("train.py", "user=nobody_here", *TINY, f"data.data_dir={tmp_path}/data",
                  f"hydra.run.dir={tmp_path}/run")
    assert_clean_error(res, "no posts cached for @nobody_here", "fetch.py user=nobody_here")


def test_cli_too_little_text_gives_the_counts(tmp_path):
    df = pd.DataFrame({"id": [str(i) for i in range(30)],
                       "created_at": pd.date_range("2022-01-01", periods=30, tz="UTC"),
                       "text": [f"tiny tweet number {i}" for i in range(30)], "handle": "smol"})
    posts.write_posts(tmp_path / "data", "smol", df, source="test")
    before = posts.tweets_path(tmp_path / "data", "smol").read_bytes()
    res = run_cli("train.py", "user=smol", *TINY, f"data.data_dir={tmp_path}/data",
                  f"hydra.run.dir={tmp_path}/run")
    assert_clean_error(res, "@smol", "30 tweets kept", "clean.min_chars")
    assert posts.tweets_path(tmp_path / "data", "smol").read_bytes() == before


def test_cli_unrecognised_archive(tmp_path):
    bad = tmp_path / "tweets.js"
    bad.write_text("this is not an archive")
    res = run_cli("fetch.py", "user=someone", "source=archive", f"source.path={bad}",
                  f"data_dir={tmp_path}/data")
    assert_clean_error(res, str(bad))
    assert not (tmp_path / "data" / "tweets" / "someone.parquet").exists()


def test_cli_archive_without_path(tmp_path):
    res = run_cli("fetch.py", "user=someone", "source=archive", f"data_dir={tmp_path}/data")
    assert_clean_error(res, "source.path")


@pytest.mark.parametrize("args,message", [
    (["source=x", "source.on_rate_limit=later"],
     "source.on_rate_limit: Invalid value 'later', expected one of [wait, stop]"),
    (["source=bluesky", "source.timeout=soon"], "source.timeout: Value 'soon'"),
    (["source=auto", "source.mastodon.max_pages=1.5"], "source.mastodon.max_pages: Value '1.5'"),
    (["source=mastodon", "source.page_sise=10"], "source.page_sise: no such setting"),
])
def test_cli_api_source_settings_are_typed(tmp_path, args, message):
    res = run_cli("fetch.py", "user=someone", *args, f"data_dir={tmp_path}/data")
    assert_clean_error(res, message)
    assert not (tmp_path / "data").exists()


def test_cli_generate_format_is_checked_at_compose(tmp_path):
    """format= is the schema's choice (text | jsonl): a wrong one stops before any model is read."""
    res = run_cli("generate.py", f"model_dir={tmp_path}/none", "format=xml")
    assert_clean_error(res, "format: Invalid value 'xml', expected one of [text, jsonl]")
