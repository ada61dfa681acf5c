"""Read the official X "download your data" archive.

Accepts the ZIP as downloaded, the extracted folder (or its `data/` folder), or a bare
`tweets.js`. Each `.js` file is a JSON array behind a JavaScript assignment:

    window.YTD.tweets.part0 = [ {"tweet": {...}}, ... ]     (2022 onwards)
    window.YTD.tweet.part0 = [ ... ]                         (older archives)

Large archives split the tweets into `tweets.js`, `tweets-part1.js`, `tweets-part2.js`, ...; all
parts are read. `account.js` gives the handle and display name.
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import to_frame, validate_handle

# tweets.js / tweet.js and their split parts; deliberately not deleted-tweets.js or
# tweet-headers.js, which newer archives also carry.
TWEETS_FILE = re.compile(r"tweets?(-part\d+)?\.js")
ACCOUNT_FILE = "account.js"
EXPECTED = "data/tweets.js (or tweet.js, tweets-part1.js, ...)"

# `window.YTD.<name>.part<N> = ` in front of the JSON.
YTD_HEADER = re.compile(r"\s*window\.YTD\.\w+\.part\d+\s*=\s*")

CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 12 17:21:38 +0000 2022"

# A link to a post: how a quote shows up when the archive has no is_quote_status.
STATUS_URL = re.compile(
    r"https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/\w+/status(?:es)?/(\d+)", re.IGNORECASE
)


def read_archive(path: str, handle: str | None = None) -> pd.DataFrame:
    """All posts in an X archive as the canonical table; `handle` overrides account.js."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(
            f"X archive not found: {path}. Pass the archive ZIP, its extracted folder or its "
            "data/tweets.js as source.path"
        )
    tweet_files, account_file = _locate(path)

    account = {}
    if account_file is not None:
        items = _parse_ytd(*account_file)
        account = items[0].get("account", {}) if items and isinstance(items[0], dict) else {}
    if handle is None:
        handle = account.get("username")
        if not handle:
            raise UserError(
                f"{path}: no account.js with the username, so whose archive is this? "
                "pass user=<handle>"
            )
    handle = validate_handle(handle)
    display_name = account.get("accountDisplayName")

    records: dict[str, dict] = {}  # by id: split parts (or a re-export) may overlap
    for name, data in tweet_files:
        for item in _parse_ytd(name, data):
            tweet = item.get("tweet", item) if isinstance(item, dict) else None
            if not isinstance(tweet, dict):
                raise UserError(f"{name}: expected a list of tweets; this is not an X archive file")
            record = _record(name, tweet)
            records.setdefault(record["id"], record)

    for record in records.values():
        record.update(handle=handle, display_name=display_name, source="archive")
    return to_frame(list(records.values()))


def _locate(path: Path) -> tuple[list[tuple[str, bytes]], tuple[str, bytes] | None]:
    """(tweets files, account.js or None), each as (name for messages, raw bytes)."""
    if path.is_file() and not zipfile.is_zipfile(path):
        # A bare tweets.js: account.js usually sits beside it in the same data/ folder.
        account = path.parent / ACCOUNT_FILE
        account_file = (str(account), account.read_bytes()) if account.is_file() else None
        return [(str(path), path.read_bytes())], account_file

    if path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                tweets, account = _pick(names, PurePosixPath)
                tweet_files = [(f"{path}:{n}", zf.read(n)) for n in tweets]
                account_file = (f"{path}:{account}", zf.read(account)) if account else None
        except (zipfile.BadZipFile, OSError) as err:
            raise UserError(f"{path}: cannot read this ZIP ({err}); download the archive again")
        where = f"the ZIP {path}"
    else:
        folder = path / "data" if (path / "data").is_dir() else path
        names = [str(p) for p in sorted(folder.iterdir()) if p.is_file()]
        tweets, account = _pick(names, Path)
        tweet_files = [(n, Path(n).read_bytes()) for n in tweets]
        account_file = (account, Path(account).read_bytes()) if account else None
        where = f"the folder {folder}"

    if not tweet_files:
        found = sorted(PurePosixPath(n).name for n in names if n.endswith(".js"))
        found_text = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
        raise UserError(
            f"no tweets file in {where}: expected {EXPECTED}; .js files there: "
            f"{found_text or 'none'}. Is this the X 'Download your data' archive?"
        )
    return tweet_files, account_file


def _pick(names: list[str], as_path) -> tuple[list[str], str | None]:
    """The tweets files (in part order: tweets.js, part1, part2, ...) and account.js among
    `names`. Files in a `data/` folder win: the archive's HTML viewer has scripts elsewhere."""

    def in_data_first(matches: list[str]) -> list[str]:
        return [n for n in matches if as_path(n).parent.name == "data"] or matches

    tweets = in_data_first([n for n in names if TWEETS_FILE.fullmatch(as_path(n).name)])
    accounts = in_data_first([n for n in names if as_path(n).name == ACCOUNT_FILE])
    tweets = sorted(tweets, key=lambda n: _part_number(as_path(n).name))
    return tweets, (accounts[0] if accounts else None)


def _part_number(name: str) -> int:
    match = re.search(r"-part(\d+)", name)
    return int(match.group(1)) if match else 0


def _parse_ytd(name: str, data: bytes) -> list:
    """The JSON array inside one `window.YTD.x.partN = [...]` file."""
    try:
        text = data.decode("utf-8-sig")  # -sig: tolerate a byte-order mark from an editor
    except UnicodeDecodeError as err:
        raise UserError(
            f"{name}: not UTF-8 text (bad byte at offset {err.start}); X archives are UTF-8, "
            "so this file is damaged or not from an X archive: download the archive again"
        )
    header = YTD_HEADER.match(text)
    if header is None:
        raise UserError(
            f"{name}: does not look like an X archive file (expected it to start with "
            f"'window.YTD.tweets.part0 = ['; it starts with {text[:40]!r})"
        )
    try:
        items = json.loads(text[header.end() :].rstrip().rstrip(";"))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{name}: broken JSON at line {err.lineno}, column {err.colno} ({err.msg}); "
            "this does not look like an intact X archive file: download the archive again"
        )
    if not isinstance(items, list):
        raise UserError(f"{name}: expected a JSON list after the header; not an X archive file")
    return items


def _record(name: str, tweet: dict) -> dict:
    """One archive tweet -> one canonical record (handle and source are filled in later)."""
    tweet_id = tweet.get("id_str") or tweet.get("id")
    if tweet_id is None or "created_at" not in tweet:
        raise UserError(f"{name}: a tweet without id_str or created_at; not an X archive file")
    tweet_id = str(tweet_id)
    try:
        created_at = datetime.strptime(tweet["created_at"], CREATED_AT_FORMAT)
    except (TypeError, ValueError):
        raise UserError(
            f"{name}: tweet {tweet_id} has created_at {tweet['created_at']!r}, expected the "
            "archive's format like 'Wed Oct 12 17:21:38 +0000 2022'"
        )
    text = tweet.get("full_text") or tweet.get("text") or ""
    # Archives carry no retweeted_status: the "RT @user:" prefix is the only trace of a retweet.
    is_retweet = text.startswith("RT @")
    if "is_quote_status" in tweet:
        is_quote = tweet["is_quote_status"] in (True, "true", "True")
    else:
        # A link to someone's post (not this one: media links point at the tweet itself).
        urls = (tweet.get("entities") or {}).get("urls") or []
        found = (STATUS_URL.search(url.get("expanded_url") or "") for url in urls)
        linked = {match.group(1) for match in found if match}
        is_quote = not is_retweet and bool(linked - {tweet_id})
    is_reply = bool(tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"))
    lang = tweet.get("lang")
    return {
        "id": tweet_id,
        "created_at": created_at.astimezone(UTC),
        "text": text,
        "is_retweet": is_retweet,
        "is_reply": is_reply,
        "is_quote": is_quote,
        "lang": None if lang in (None, "", "und") else lang,
    }
