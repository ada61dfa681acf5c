"""source=mastodon: account lookup + statuses of a fake instance on a real loopback HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.servers import kill_mid_fetch_then_resume, same_posts, source_node

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts, sources
from huggingtweets.ingest.sources import mastodon

HANDLE = "bob@mastodon.example"


def cfg(api, **overrides):
    node = source_node("mastodon")
    node.merge_with({"base_url": api.url, "page_size": 10, "backoff": 0.01, "progress": False,
                     **overrides})
    return node


def fetch(api, data_dir, handle=HANDLE, refresh="merge", **overrides):
    return sources.fetch_user(cfg(api, **overrides), handle, data_dir, refresh=refresh)


def test_follows_link_headers_and_turns_html_into_text(api, tmp_path):
    api.masto.add_user("bob", 33)
    got = fetch(api, tmp_path)
    df = got.merged
    assert got.source == "mastodon" and len(df) == 33 and df["id"].is_unique
    requests = api.page_requests()
    assert len(requests) == 4 and requests[0].get("max_id") is None
    assert [r["max_id"] for r in requests[1:]] == [str(s["id"]) for s in
                                                  sorted(api.masto.statuses[next(iter(api.masto.statuses))],
                                                         key=lambda s: -int(s["id"]))[9:30:10]]
    assert df["is_retweet"].sum() == 4 and df["is_reply"].sum() == 3
    assert df["content_warning"].eq("food").sum() == 3
    post = df[df["text"].str.startswith("note 0:")]["text"].iloc[0]
    assert post.endswith(" &amp; &lt;b&gt;\n\nsecond para\nhttps://example.org/p/0 @pal #tag")
    assert df[df["is_retweet"]]["text"].str.startswith("RT @friend@other.example: note").all()
    assert posts.tweets_path(tmp_path, HANDLE).name == "masto-bob_at_mastodon.example.parquet"
    assert set(df["handle"]) == {HANDLE} and set(df["display_name"]) == {"bob 🐘"}


def test_second_fetch_passes_since_id_and_full_refetches(api, tmp_path):
    api.masto.add_user("bob", 15)
    fetch(api, tmp_path)
    newest = max(s["id"] for s in next(iter(api.masto.statuses.values())))
    api.masto.add_statuses("bob", 12, seed=3)
    before = len(api.page_requests())
    got = fetch(api, tmp_path)
    again = api.page_requests()[before:]
    assert {r["since_id"] for r in again} == {newest} and len(again) == 2
    assert len(got.new) == 12 and len(got.merged) == 27
    next(iter(api.masto.statuses.values())).pop()
    assert len(fetch(api, tmp_path, refresh="full").merged) == 26


def test_rate_limit_then_success_with_an_iso_reset(api, tmp_path):
    api.masto.add_user("bob", 5)
    reset = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    api.fail(429, '{"error": "Too many requests"}', where="/statuses",
             headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"})
    assert len(fetch(api, tmp_path).merged) == 5


def test_rate_limit_stop_mode_then_resume(api, tmp_path):
    api.masto.add_user("bob", 25)
    api.fail(429, "{}", where="/statuses", headers={"Retry-After": "3600"}, after=1)
    with pytest.raises(UserError, match=r"rate limit reached.*resets at .* \(in 1h00m\).*"
                                        "run the same command again"):
        fetch(api, tmp_path, on_rate_limit="stop")
    journal = posts.partial_dir(tmp_path, HANDLE)
    assert len(list(journal.glob("page-*.json"))) == 1  # the page it had is kept
    assert not posts.tweets_path(tmp_path, HANDLE).exists()
    before = len(api.page_requests())
    assert len(fetch(api, tmp_path).merged) == 25
    assert len(api.page_requests()) - before == 2  # resumed at the second page


def test_server_error_malformed_json_then_success(api, tmp_path):
    api.masto.add_user("bob", 5)
    api.fail(500, where="/statuses")
    api.fail(200, "[{", where="/statuses")
    api.fail(200, '{"not": "a list"}', where="/statuses")
    assert len(fetch(api, tmp_path).merged) == 5


def test_empty_timeline_and_locked_account(api, tmp_path):
    api.masto.add_user("quiet", 0)
    assert len(fetch(api, tmp_path, handle="quiet@mastodon.example").merged) == 0
    api.masto.add_user("shy", 0, locked=True)
    with pytest.raises(UserError, match="locked account"):
        fetch(api, tmp_path, handle="shy@mastodon.example")
    assert not posts.partial_dir(tmp_path, "shy@mastodon.example").exists()


@pytest.mark.parametrize("setup,needle", [
    (lambda m: None, "has no account @ghost@mastodon.example"),
    (lambda m: m.add_user("ghost", 3, suspended=True), "suspended"),
    (lambda m: m.add_user("ghost", 3, gone=True), "suspended or gone"),
])
def test_missing_and_suspended_accounts(api, tmp_path, setup, needle):
    setup(api.masto)
    with pytest.raises(UserError, match=needle):
        fetch(api, tmp_path, handle="ghost@mastodon.example")


def test_base_url_defaults_to_the_handles_instance():
    node = source_node("mastodon")
    node.progress = False
    source = sources.build(node, "Gargron@Mastodon.Social")
    assert source.base_url == "https://mastodon.social" and source.user == "gargron"
    with pytest.raises(UserError, match="user@instance"):
        sources.build(node, "alice.bsky.social")


def test_html_to_text():
    html = ('<p>One &amp; two<br>three</p><p><a href="https://a.example/x/y">'
            '<span class="invisible">https://</span>a.example/x/…</a> '
            '<span class="h-card"><a class="u-url mention" href="https://m/@z">@<span>z</span></a>'
            '</span></p><p class="quote-inline">RE: <a href="https://q">q</a></p>'
            "<ul><li>a</li><li>b</li></ul>")
    assert mastodon.html_to_text(html) == "One & two\nthree\n\nhttps://a.example/x/y @z\n\na\nb"


def test_kill_mid_fetch_then_resume(api, tmp_path):
    api.masto.add_user("bob", 44)
    base = fetch(api, tmp_path / "uninterrupted").merged
    res, resumed = kill_mid_fetch_then_resume(
        api, tmp_path, HANDLE, ["source=mastodon", f"source.base_url={api.url}",
                                "source.page_size=10"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(resumed) == 3 and resumed[0]["max_id"] == base["id"].iloc[-20]
    assert same_posts(posts.read_posts(tmp_path / "data", HANDLE), base)
