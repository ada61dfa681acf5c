"""ingest/sources/__init__.py: source=auto picks the platform from the handle, and every
conf/source/*.yaml instantiates the function or class it names."""

from __future__ import annotations

import pytest
from fakes.archives import write_csv, write_data_folder
from fakes.servers import CONF, TOKEN
from omegaconf import OmegaConf

from huggingtweets.ingest import handles, posts, sources
from huggingtweets.ingest.sources import archive, demo, files

HANDLE = "alice.bsky.social"


# --- source=auto -------------------------------------------------------------------------------


def compose_fetch(*overrides):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import huggingtweets.config  # noqa: F401

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
            return compose("fetch", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def test_auto_picks_the_source_from_the_handle(api, tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    api.x.add_user("carol", 12)
    api.bsky.add_user(HANDLE, 11)
    api.masto.add_user("bob", 13)
    cfg = compose_fetch("source.x.base_url=" + api.url, "source.bluesky.base_url=" + api.url,
                        "source.mastodon.base_url=" + api.url, "source.bluesky.progress=false")
    assert cfg.source.x.on_rate_limit == "wait"
    got = {h: sources.fetch_user(cfg.source, h, tmp_path, name="auto")
           for h in handles.parse_users("carol+alice.bsky.social+bob@mastodon.example+demo_bo")}
    assert {h: (g.source, len(g.merged)) for h, g in got.items()} == {
        "carol": ("x", 12), HANDLE: ("bluesky", 11), "bob@mastodon.example": ("mastodon", 13),
        "demo_bo": ("demo", cfg.source.demo.n)}  # the configured count (conf/source/demo.yaml)
    assert posts.read_meta(tmp_path, "demo_bo")["source"] == "demo"
    monkeypatch.delenv("X_BEARER_TOKEN")
    with pytest.raises(sources.NoSource, match="cannot fetch @dave from X.*X_BEARER_TOKEN.*"
                                               "source=archive"):
        sources.fetch_user(cfg.source, "dave", tmp_path, name="auto")


def test_auto_rate_limit_setting_reaches_every_platform():
    cfg = compose_fetch("source.on_rate_limit=stop")
    assert {cfg.source[p].on_rate_limit for p in ("x", "bluesky", "mastodon")} == {"stop"}


# --- Hydra configs ----------------------------------------------------------------------------


def test_source_configs_instantiate(tmp_path):
    hydra_utils = pytest.importorskip("hydra.utils")

    from huggingtweets.ingest import sources
    from huggingtweets.ingest.sources import bluesky, mastodon, twarc, x

    targets = {
        "archive": archive.read_archive,
        "csv": files.read_csv,
        "jsonl": files.read_jsonl,
        "demo": demo.generate,
        "twarc": twarc.read_twarc,
        "x": x.XSource,
        "bluesky": bluesky.BlueskySource,
        "mastodon": mastodon.MastodonSource,
        "auto": sources.auto,
    }
    assert set(targets) == {p.stem for p in CONF.glob("*.yaml")}  # every source is listed here
    for name, function in targets.items():
        cfg = OmegaConf.load(CONF / f"{name}.yaml")
        assert cfg._target_ == f"{function.__module__}.{function.__name__}"

    cfg = OmegaConf.load(CONF / "demo.yaml")
    cfg.n = 7
    assert len(hydra_utils.instantiate(cfg, handle="demo_bo")) == 7

    path = write_csv(tmp_path / "t.csv", [{"tweet_id": 1, "created_at": "2020-01-01", "text": "a"}])
    cfg = OmegaConf.load(CONF / "csv.yaml")
    cfg.path = str(path)
    cfg.columns.id = "tweet_id"
    df = hydra_utils.instantiate(cfg, handle="me")
    assert df["id"].tolist() == ["1"]

    write_data_folder(tmp_path / "arch" / "data")
    cfg = OmegaConf.load(CONF / "archive.yaml")
    cfg.path = str(tmp_path / "arch")
    assert len(hydra_utils.instantiate(cfg, handle="me")) == 5
