"""Writers of the offline inputs the sources read: X archive files (tweets.js, account.js, the
data folder of an extracted archive) and CSV exports. Everything is written into tmp_path:
nothing from real data is copied into the repo."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# --- X archive fixtures ---------------------------------------------------------------------


def tweet(
    id_: str,
    text: str,
    when: str = "Wed Oct 12 17:21:38 +0000 2022",
    reply_to: str | None = None,
    urls: tuple[str, ...] = (),
    lang: str = "en",
    **extra,
) -> dict:
    """An archive tweet with the fields X writes (counts as strings, like real archives)."""
    t = {
        "retweeted": False,
        "entities": {
            "hashtags": [],
            "user_mentions": [],
            "urls": [
                {"url": "https://t.co/abc", "expanded_url": u, "display_url": u[8:30]} for u in urls
            ],
        },
        "favorite_count": "1",
        "id_str": id_,
        "id": id_,
        "created_at": when,
        "full_text": text,
        "lang": lang,
        "retweet_count": "0",
        **extra,
    }
    if reply_to:
        t["in_reply_to_status_id_str"] = reply_to
        t["in_reply_to_status_id"] = reply_to
    return t


def ytd(name: str, items: list) -> str:
    return f"window.YTD.{name}.part0 = " + json.dumps(items, indent=2, ensure_ascii=False)


TWEETS = [
    tweet("1001", "hello world", "Mon Jan 03 10:00:00 +0000 2022"),
    tweet("1002", "RT @friend: something worth sharing", "Tue Jan 04 10:00:00 +0000 2022"),
    tweet("1003", "@friend I agree", "Wed Jan 05 10:00:00 +0000 2022", reply_to="999"),
    tweet(
        "1004",
        "look at this https://t.co/abc",
        "Thu Jan 06 10:00:00 +0200 2022",
        urls=("https://twitter.com/someone/status/555",),
    ),
    tweet("1005", "🙂🙂", "Fri Jan 07 10:00:00 +0000 2022", lang="und"),
]


ACCOUNT = [
    {"account": {"username": "arch_user", "accountId": "42", "accountDisplayName": "Arch U"}}
]


def write_data_folder(data: Path, tweets_name: str = "tweets", account: bool = True) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / f"{tweets_name}.js").write_text(ytd(tweets_name, [{"tweet": t} for t in TWEETS]))
    if account:
        (data / "account.js").write_text(ytd("account", ACCOUNT))


# --- CSV ---


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path
