"""Every user-facing error: one clear line on stderr, exit status 2, no traceback, nothing touched."""

import pandas as pd
import pytest
from conftest import TINY, run_cli

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.train.module import TweetLM


def assert_clean_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    line = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert len(line) == 1, res.stderr[-2000:]
    for n in needles:
        assert n in line[0], line[0]


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "way_too_long_handle_x", "x y"])
def test_invalid_handles_are_rejected(bad):
    with pytest.raises(UserError, match="invalid handle|no user"):
        posts.parse_users(bad)
    with pytest.raises(UserError):
        posts.tweets_path("data", bad)


def test_mix_handles_parse_in_order_without_duplicates():
    assert posts.parse_users("@bob-alice-bob") == ["bob", "alice"]


@pytest.mark.parametrize("user,handles,names", [
    ("alice.bsky.social", ["alice.bsky.social"], ["bsky-alice.bsky.social"]),
    ("Jeremy-Data.BSKY.social", ["jeremy-data.bsky.social"], ["bsky-jeremy-data.bsky.social"]),
    ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", ["did:plc:ewvi7nxzyoun6zhxrhs64oiz"],
     ["did-plc-ewvi7nxzyoun6zhxrhs64oiz"]),
    ("@Gargron@Mastodon.Social", ["Gargron@mastodon.social"], ["masto-Gargron_at_mastodon.social"]),
    ("alice.bsky.social+bob@mastodon.social+carol", ["alice.bsky.social", "bob@mastodon.social",
     "carol"], ["bsky-alice.bsky.social", "masto-bob_at_mastodon.social", "carol"]),
    ("demo_ada-demo_bo", ["demo_ada", "demo_bo"], ["demo_ada", "demo_bo"]),
])
def test_handles_of_every_platform_and_their_cache_names(user, handles, names):
    assert posts.parse_users(user) == handles
    assert [posts.cache_name(h) for h in handles] == names
    assert [posts.platform(h) for h in handles] != []


@pytest.mark.parametrize("bad", [
    "..", ".", "a/../b", "alice.bsky.social/../../etc", "bob@../etc", "bob@host/..", "did:plc:../x",
    "a\x00b", "alice.bsky.social\x00", "\x00", "bob@mastodon.social@evil.com", "a@b",
    "x" * 10_000, "a." * 200 + "com", "b" * 64 + ".bsky.social", "~/x", "C:\\x", "a..b.com",
    "-alice.bsky.social", "alice-.bsky.social", "alice.bsky.123",
])
def test_nothing_a_handle_contains_escapes_data(tmp_path, bad):
    with pytest.raises(UserError, match="invalid handle|no user"):
        posts.tweets_path(tmp_path, bad)
    with pytest.raises(UserError):
        posts.parse_users(bad)


def test_long_valid_handles_get_short_safe_unique_names(tmp_path):
    label = "a" * 63
    a, b = f"{label}.{label}.{label}.bsky.social", f"{label}.{label}.{label}.bsky.socia1"
    for handle in (a, b, f"{'u' * 64}@{label}.{label}.{label}.example"):
        path = posts.tweets_path(tmp_path, handle)
        assert path.parent == tmp_path / "tweets" and len(path.name) <= 200
        assert path.resolve().is_relative_to((tmp_path / "tweets").resolve())
    assert posts.cache_name(a) != posts.cache_name(b)


def test_refetch_merges_by_id_and_writes_atomically(tmp_path):
    first = pd.DataFrame({"id": ["1", "2"], "created_at": ["2022-01-01", "2022-01-02"],
                          "text": ["a", "b"], "handle": "al"})
    second = pd.DataFrame({"id": ["2", "3"], "created_at": ["2022-01-02", "2022-01-03"],
                           "text": ["b edited", "c"], "handle": "al"})
    posts.write_posts(tmp_path, "al", first, source="test")
    merged = posts.write_posts(tmp_path, "al", second, source="test")
    assert list(merged["id"]) == ["1", "2", "3"] and merged["text"].tolist()[1] == "b edited"
    meta = posts.read_meta(tmp_path, "al")
    assert meta["posts"] == 3 and meta["newest_id"] == "3" and meta["source"] == "test"
    assert not list((tmp_path / "tweets").glob("*.tmp")), "temp files left behind"
    full = posts.write_posts(tmp_path, "al", second, source="test", refresh="full")
    assert list(full["id"]) == ["2", "3"]


def test_failed_write_leaves_the_cache_untouched(tmp_path, monkeypatch):
    df = pd.DataFrame({"id": ["1"], "created_at": ["2022-01-01"], "text": ["a"], "handle": "al"})
    posts.write_posts(tmp_path, "al", df, source="test")
    before = posts.tweets_path(tmp_path, "al").read_bytes()

    def boom(self, path, **kw):
        open(path, "wb").write(b"half a parquet")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(KeyboardInterrupt):
        posts.write_posts(tmp_path, "al", df, source="test")
    assert posts.tweets_path(tmp_path, "al").read_bytes() == before
    assert not list((tmp_path / "tweets").glob(".*tmp"))


def test_unavailable_hub_model_says_scratch_works_offline():
    module = TweetLM(name_or_path="no-such-org/no-such-model", optim={})
    with pytest.raises(UserError, match="model=scratch"):
        module.build(["hello world"])


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
