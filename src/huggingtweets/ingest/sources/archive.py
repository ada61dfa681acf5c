"""Read the official X "download your data" archive: the ZIP as downloaded, the extracted folder
(or its `data/` folder), or a bare `tweets.js`. Each `.js` file is a JSON array behind a
JavaScript assignment, `window.YTD.tweets.part0 = [ {"tweet": {...}}, ... ]` (`YTD.tweet` in
older archives). Large archives split the tweets into `tweets.js`, `tweets-part1.js`, ...; all
parts are read. `account.js` gives the handle and display name.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pandas as pd

from huggingtweets.errors import UserError, printable
from huggingtweets.ingest import posts
from huggingtweets.ingest.handles import validate_handle

# tweets.js / tweet.js and their split parts; deliberately not deleted-tweets.js or
# tweet-headers.js, which newer archives also carry.
TWEETS_FILE = re.compile(r"tweets?(-part(\d+))?\.js")
ACCOUNT_FILE = "account.js"
EXPECTED = "data/tweets.js (or tweet.js, tweets-part1.js, ...)"

# `window.YTD.<name>.part<N> = ` in front of the JSON.
YTD_HEADER = re.compile(r"\s*window\.YTD\.\w+\.part\d+\s*=\s*")

CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 12 17:21:38 +0000 2022"

# The most a file of the archive may hold, inflated: tweets.js is ~1 KB a tweet, so this is
# half a million tweets. And the most a ZIP member may inflate per compressed byte: JSON
# compresses 5-20x, a zip bomb 1000x; reading stops at whichever bound comes first.
MAX_MEMBER_BYTES = 512 * 2**20
MAX_RATIO = 200
CHUNK = 2**20

# A link to a post: how a quote shows up when the archive has no is_quote_status.
STATUS_URL = re.compile(r"https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/\w+/status(?:es)?/(\d+)",
                        re.IGNORECASE)


def read_archive(path: str, handle: str | None = None, max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_post_chars: int = posts.MAX_POST_CHARS) -> pd.DataFrame:
    """All posts in an X archive as the canonical table; `handle` overrides account.js."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"X archive not found: {path}. Pass the archive ZIP, its extracted folder "
                        "or its data/tweets.js as source.path")
    tweet_files, account_file = _locate(path, int(max_member_bytes))

    account = {}
    if account_file is not None:
        items = _parse_ytd(*account_file)
        account = items[0].get("account", {}) if items and isinstance(items[0], dict) else {}
        if not isinstance(account, dict):
            raise UserError(f"{account_file[0]}: 'account' is not an object; not an X archive "
                            "file (pass user=<handle> and remove account.js to import anyway)")
        for key in ("username", "accountDisplayName"):
            if account.get(key) is not None and not isinstance(account[key], str):
                raise UserError(f"{account_file[0]}: account.{key} is not text; not an X "
                                "archive file (pass user=<handle> to import anyway)")
    if handle is None:
        handle = account.get("username")
        if not handle:
            raise UserError(f"{path}: no account.js with the username, so whose archive is "
                            "this? pass user=<handle>")
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
    table = posts.to_frame(list(records.values()))
    posts.too_long(table, str(path), int(max_post_chars),
                   rows=pd.Index([f"tweet {i}" for i in table["id"]]))
    return table


def _too_big(name: str, limit: int, why: str = "") -> UserError:
    return UserError(f"{name}: inflates to more than {limit:,} bytes{why}; this is not an X "
                     "archive file this reads (a damaged or hostile ZIP?). If it is your genuine "
                     "archive, raise source.max_member_bytes")


def _read_file(file: Path, limit: int) -> bytes:
    """A file's bytes, refusing one over `limit` before reading it."""
    try:
        if file.stat().st_size > limit:
            raise _too_big(str(file), limit)
        return file.read_bytes()
    except OSError as err:
        raise UserError(f"{file}: cannot read it ({err.strerror or err})") from None


def _read_member(zf: zipfile.ZipFile, name: str, where: str, limit: int) -> bytes:
    """A ZIP member, inflated no further than `limit` bytes or MAX_RATIO times its compressed size
    (read(n) inflates at most n bytes): the sizes a ZIP declares can lie, the bytes read cannot."""
    info = zf.getinfo(name)
    ceiling = min(limit, max(MAX_RATIO * info.compress_size, 16 * CHUNK))
    with zf.open(info) as member:
        data = member.read(ceiling + 1)
    if len(data) > ceiling:
        why = ("" if ceiling == limit
               else f" ({MAX_RATIO}x its compressed {info.compress_size:,} bytes)")
        raise _too_big(f"{where}:{printable(name)}", ceiling, why)
    return data


def _locate(path: Path, limit: int = MAX_MEMBER_BYTES
            ) -> tuple[list[tuple[str, bytes]], tuple[str, bytes] | None]:
    """(tweets files, account.js or None), each as (name for messages, raw bytes)."""
    if path.is_file() and not zipfile.is_zipfile(path):
        # A bare tweets.js: account.js usually sits beside it in the same data/ folder.
        account = path.parent / ACCOUNT_FILE
        account_file = (str(account), _read_file(account, limit)) if account.is_file() else None
        return [(str(path), _read_file(path, limit))], account_file

    if path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                tweets, account = _pick(names, PurePosixPath)
                # (member names are text from the file: shown only through printable)
                tweet_files = [(f"{path}:{printable(n)}", _read_member(zf, n, str(path), limit))
                               for n in tweets]
                account_file = ((f"{path}:{printable(account)}",
                                 _read_member(zf, account, str(path), limit))
                                if account else None)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
                ValueError, NotImplementedError, RuntimeError) as err:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
            raise UserError(f"{path}: cannot read this ZIP ({printable(err, limit=300)}); "
                            "download the archive again")
        where = f"the ZIP {path}"
    else:
        folder = path / "data" if (path / "data").is_dir() else path
        names = [str(p) for p in sorted(folder.iterdir()) if p.is_file()]
        tweets, account = _pick(names, Path)
        tweet_files = [(printable(n), _read_file(Path(n), limit)) for n in tweets]
        account_file = (printable(account), _read_file(Path(account), limit)) if account else None
        where = f"the folder {folder}"

    if not tweet_files:
        found = sorted(PurePosixPath(n).name for n in names if n.endswith(".js"))
        found_text = printable(", ".join(found[:10]) + (", ..." if len(found) > 10 else ""))
        raise UserError(f"no tweets file in {where}: expected {EXPECTED}; .js files there: "
                        f"{found_text or 'none'}. Is this the X 'Download your data' archive?")
    return tweet_files, account_file


def _pick(names: list[str], as_path) -> tuple[list[str], str | None]:
    """The tweets files (in part order: tweets.js, part1, part2, ...) and account.js among
    `names`. Files in a `data/` folder win: the archive's HTML viewer has scripts elsewhere."""

    def in_data_first(matches: list[str]) -> list[str]:
        return [n for n in matches if as_path(n).parent.name == "data"] or matches

    tweets = in_data_first([n for n in names if TWEETS_FILE.fullmatch(as_path(n).name)])
    accounts = in_data_first([n for n in names if as_path(n).name == ACCOUNT_FILE])
    tweets = sorted(tweets, key=lambda n: int(TWEETS_FILE.fullmatch(as_path(n).name)[2] or 0))
    return tweets, (accounts[0] if accounts else None)


def _parse_ytd(name: str, data: bytes) -> list:
    """The JSON array inside one `window.YTD.x.partN = [...]` file."""
    try:
        text = data.decode("utf-8-sig")  # -sig: tolerate a byte-order mark from an editor
    except UnicodeDecodeError as err:
        raise UserError(f"{name}: not UTF-8 text (bad byte at offset {err.start}); X "
                        "archives are UTF-8, so this file is damaged or not from an X "
                        "archive: download the archive again")
    header = YTD_HEADER.match(text)
    if header is None:
        raise UserError(f"{name}: does not look like an X archive file (expected it to start with "
                        f"'window.YTD.tweets.part0 = ['; it starts with "
                        f"{printable(repr(text[:40]))})")
    try:
        items = json.loads(text[header.end() :].rstrip().rstrip(";"))
    except RecursionError:
        raise UserError(f"{name}: JSON nested too deep; not an intact X archive file") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{name}: broken JSON at line {err.lineno}, column {err.colno} "
                        f"({err.msg}); this does not look like an intact X archive "
                        "file: download the archive again")
    if not isinstance(items, list):
        raise UserError(f"{name}: expected a JSON list after the header; not an X archive file")
    return items


def _field(name: str, tweet: dict, tweet_id: str, key: str, kinds: tuple, what: str):
    """tweet[key] when absent, null or one of `kinds`; else a UserError naming file and field."""
    value = tweet.get(key)
    if value is None or isinstance(value, kinds):
        return value
    raise UserError(f"{name}: tweet {tweet_id} has {key} {str(value)[:40]!r} "
                    f"({type(value).__name__}), expected {what}; this is not an "
                    "intact X archive file")


def _record(name: str, tweet: dict) -> dict:
    """One archive tweet -> one canonical record (handle and source are filled in later)."""
    tweet_id = tweet.get("id_str") or tweet.get("id")
    if tweet_id is None or "created_at" not in tweet:
        raise UserError(f"{name}: a tweet without id_str or created_at; not an X archive file")
    if isinstance(tweet_id, bool) or not isinstance(tweet_id, str | int) or not str(tweet_id).strip():
        raise UserError(f"{name}: a tweet whose id is {str(tweet_id)[:40]!r}; not an X archive file")
    tweet_id = str(tweet_id).strip()
    if not tweet_id.isdigit():  # X ids are whole numbers: this one was rounded or edited
        raise UserError(f"{name}: a tweet whose id is {printable(repr(tweet_id), limit=40)}, not "
                        "a whole number; not an intact X archive file: download it again")
    try:
        created_at = datetime.strptime(tweet["created_at"], CREATED_AT_FORMAT)
    except (TypeError, ValueError):
        raise UserError(f"{name}: tweet {tweet_id} has created_at "
                        f"{str(tweet['created_at'])[:60]!r}, expected the archive's format like "
                        "'Wed Oct 12 17:21:38 +0000 2022'")
    if not posts.EARLIEST <= created_at < posts.LATEST:
        raise UserError(f"{name}: tweet {tweet_id} has created_at {tweet['created_at']!r}, "
                        "not a time a tweet can have; this is not an intact X archive file")
    if created_at > posts.future_cutoff():
        raise UserError(f"{name}: tweet {tweet_id} has created_at {tweet['created_at']!r}, in the "
                        "future; this is not an intact X archive file")
    text = (_field(name, tweet, tweet_id, "full_text", (str,), "text")
            or _field(name, tweet, tweet_id, "text", (str,), "text") or "")
    # Archives carry no retweeted_status: the "RT @user:" prefix is the only trace of a retweet.
    is_retweet = text.startswith("RT @")
    if "is_quote_status" in tweet:
        is_quote = tweet["is_quote_status"] in (True, "true", "True")
    else:
        # A link to someone's post (not this one: media links point at the tweet itself).
        entities = _field(name, tweet, tweet_id, "entities", (dict,), "an object") or {}
        urls = _field(name, entities, tweet_id, "urls", (list,), "a list") or []
        expanded = [u.get("expanded_url") for u in urls if isinstance(u, dict)]
        found = (STATUS_URL.search(u) for u in expanded if isinstance(u, str))
        linked = {match.group(1) for match in found if match}
        is_quote = not is_retweet and bool(linked - {tweet_id})
    is_reply = bool(tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"))
    lang = _field(name, tweet, tweet_id, "lang", (str,), "a language code")
    return {"id": tweet_id, "created_at": created_at.astimezone(UTC), "text": text,
            "is_retweet": is_retweet, "is_reply": is_reply, "is_quote": is_quote,
            "lang": None if lang in (None, "", "und") else lang}
