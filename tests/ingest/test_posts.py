"""ingest/handles.py and posts.py: handles of every platform (validated, parsed, safe cache names)
and the cache (refetches merge by id, writes are atomic)."""

import pandas as pd
import pytest

from huggingtweets.errors import UserError
from huggingtweets.ingest import handles, posts


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "way_too_long_handle_x", "x y"])
def test_invalid_handles_are_rejected(bad):
    with pytest.raises(UserError, match="invalid handle|no user"):
        handles.parse_users(bad)
    with pytest.raises(UserError):
        posts.tweets_path("data", bad)


def test_mix_handles_parse_in_order_without_duplicates():
    assert handles.parse_users("@bob-alice-bob") == ["bob", "alice"]


@pytest.mark.parametrize("user,expected,names", [
    ("alice.bsky.social", ["alice.bsky.social"], ["bsky-alice.bsky.social"]),
    ("Jeremy-Data.BSKY.social", ["jeremy-data.bsky.social"], ["bsky-jeremy-data.bsky.social"]),
    ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", ["did:plc:ewvi7nxzyoun6zhxrhs64oiz"],
     ["did-plc-ewvi7nxzyoun6zhxrhs64oiz"]),
    ("@Gargron@Mastodon.Social", ["gargron@mastodon.social"], ["masto-gargron_at_mastodon.social"]),
    ("alice.bsky.social+bob@mastodon.social+carol", ["alice.bsky.social", "bob@mastodon.social",
     "carol"], ["bsky-alice.bsky.social", "masto-bob_at_mastodon.social", "carol"]),
    ("demo_ada-demo_bo", ["demo_ada", "demo_bo"], ["demo_ada", "demo_bo"]),
])
def test_handles_of_every_platform_and_their_cache_names(user, expected, names):
    assert handles.parse_users(user) == expected
    assert [posts.cache_name(h) for h in expected] == names
    assert [handles.platform(h) for h in expected] == [  # the cache name's prefix says where
        "bluesky" if n.startswith(("bsky-", "did-")) else "mastodon" if n.startswith("masto-")
        else "x" for n in names]


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
        handles.parse_users(bad)


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
