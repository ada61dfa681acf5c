"""ingest/prepare.py, the step train.py runs before torch: it fetches each missing user of a mix
(across platforms, from the fake servers) and says how to get posts when it cannot."""

from __future__ import annotations

import pytest
from fakes.servers import TOKEN

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts

HANDLE = "alice.bsky.social"


def test_training_config_fetches_a_missing_mix_across_platforms(api, tmp_path, compose_cfg,
                                                                 monkeypatch):
    """`python train.py user=...` in process: its prepare step fetches each missing user."""
    from hydra.utils import instantiate

    from huggingtweets.ingest.prepare import prepare

    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    api.x.add_user("carol", 120)
    api.bsky.add_user(HANDLE, 110)
    api.masto.add_user("bob", 130)
    user = f"carol+{HANDLE}+bob@mastodon.example"
    cfg = compose_cfg(f"user={user}", *[f"source.{p}.base_url={api.url}"
                                        for p in ("x", "bluesky", "mastodon")])
    prepared = prepare(**cfg.data, source=cfg.source)
    dm = instantiate(cfg.data, _partial_=True)(prepared=prepared)
    assert dm.handles == ["carol", HANDLE, "bob@mastodon.example"]
    assert {h: t["Tweets downloaded"] for h, t in dm.tables.items()} == {
        "carol": 120, HANDLE: 110, "bob@mastodon.example": 130}
    assert posts.read_meta(cfg.data.data_dir, HANDLE)["source"] == "bluesky"
    requests = len(api.log)
    prepare(**cfg.data, source=cfg.source)  # cached now: no request at all
    instantiate(cfg.data)
    assert len(api.log) == requests


def test_train_without_a_way_to_fetch_says_how(tmp_path, compose_cfg, monkeypatch):
    from huggingtweets.ingest.prepare import prepare

    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    cfg = compose_cfg("user=demo_ada+nobody_here")
    with pytest.raises(UserError) as caught:
        prepare(**cfg.data, source=cfg.source)
    for needle in ("no posts cached for @nobody_here", "X_BEARER_TOKEN",
                   "python fetch.py user=nobody_here source=x", "source=archive source.path="):
        assert needle in str(caught.value), str(caught.value)
