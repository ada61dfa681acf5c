"""Files written by twarc: `twarc2 timeline` JSONL, its flattened form, and v1.1 statuses.

Each line (or the whole file, one saved response) may be a v2 page (`twarc2 timeline` / `search`),
a flattened tweet (`twarc2 flatten`) or a v1.1 status (twarc 1, old dumps). Records carry their
author: `user=` keeps that author's posts, and without it a single-author file names its user.
"""

import json
import sys
from pathlib import Path

import pandas as pd

from huggingtweets.errors import UserError, printable
from huggingtweets.ingest.handles import validate_handle
from huggingtweets.ingest.posts import MAX_POST_CHARS, check_record, to_frame
from huggingtweets.ingest.sources.files import MAX_DEPTH, _depth, _read_text, json_lines
from huggingtweets.ingest.sources.http import Malformed
from huggingtweets.ingest.sources.x import v1_record, v2_items, v2_record


def parse_twarc(path: str | Path, encoding: str = "utf-8",
                max_post_chars: int = MAX_POST_CHARS) -> list[dict]:
    """Every tweet in the file as a canonical record, whoever wrote it (handle = its author). Each
    is checked like an API page's (`check_record`); the first that fails is a UserError naming
    the line, so a file never imports half-understood. A tweet whose author_id names no user of
    the file is someone's, not known whose: left out."""
    return _parse(Path(path).expanduser(), encoding, max_post_chars)[0]


def _parse(path: Path, encoding: str, max_post_chars: int) -> tuple[list[dict], int]:
    """(the records, how many tweets were left out for an unknown author)."""
    text = _read_text(path, encoding)
    hint = "twarc writes one JSON object per line"
    objects = None
    if _depth(text) <= MAX_DEPTH:
        try:
            # A whole-file JSON document: a saved response (pretty-printed object, or an array).
            objects = [(1, json.loads(text, parse_int=str))]
        except json.JSONDecodeError:
            pass
    if objects is None:
        objects = json_lines(text, path, hint)
    users = _users(objects)
    records, unknown = [], 0
    for number, obj in objects:
        for item in obj if isinstance(obj, list) else [obj]:
            try:
                found = _records(item, path, number, users)
            except Malformed as err:
                raise UserError(f"{path}: line {number}: {printable(err)}; not a twarc file "
                                "this reads") from None
            for record in found:
                if record is None:
                    unknown += 1
                    continue
                why = check_record(record, max_post_chars)
                if why is not None:  # records are dicts: v1_record / v2_record made them
                    more = " (raise source.max_post_chars to import it)" if "longer" in why else ""
                    raise UserError(f"{path}: line {number}: post "
                                    f"{printable(record.get('id'), limit=40)} is {why}{more}")
                if not record["id"].isdigit():
                    raise UserError(f"{path}: line {number}: tweet id "
                                    f"{printable(record['id'], limit=40)} is not an X id (a whole "
                                    "number); was the file edited by a spreadsheet? Use the file "
                                    "twarc wrote")
                records.append(record)
    return records, unknown


def _users(objects: list[tuple[int, object]]) -> dict[str, dict]:
    """Every user object the file's v2 pages include, by id (a page may lack one another has)."""
    users = {}
    for _, obj in objects:
        for item in obj if isinstance(obj, list) else [obj]:
            includes = item.get("includes") if isinstance(item, dict) else None
            found = includes.get("users") if isinstance(includes, dict) else None
            for user in found if isinstance(found, list) else []:
                if isinstance(user, dict) and user.get("id") is not None:
                    users.setdefault(str(user["id"]), user)
    return users


def _records(obj, path: Path, number: int, users: dict[str, dict]) -> list[dict | None]:
    """The tweets of one object; None for a tweet whose author_id names no user of the file."""
    if not isinstance(obj, dict):
        raise UserError(f"{path}: line {number} is not a JSON object")
    if "data" in obj or ("meta" in obj and "__twarc" in obj) or set(obj) <= {"errors", "meta"}:
        # a v2 page (an empty page or an errors-only page gives none)
        pairs = [item["pair"] for item in v2_items(obj)]
        return [_v2(tweet, author or users.get(str(tweet.get("author_id"))))
                if isinstance(tweet, dict) else v2_record(tweet) for tweet, author in pairs]
    if "id" in obj and ("user" in obj or "id_str" in obj) and "created_at" in obj:
        return [v1_record(obj)]
    if "id" in obj and "text" in obj:
        # flattened: the author sits in obj["author"]
        return [_v2(obj, obj.get("author") or users.get(str(obj.get("author_id"))))]
    keys = printable(", ".join(map(str, list(obj)[:8])), limit=200)
    raise UserError(f"{path}: line {number} is neither a twarc2 page, a flattened "
                    f"tweet nor a v1.1 status (its keys: {keys})")


def _v2(tweet: dict, author: dict | None) -> dict | None:
    """The record, or None when the tweet names an author the file does not hold (a tweet with
    no author_id at all, the API's default fields, is the timeline owner's)."""
    if not author and tweet.get("author_id") is not None:
        return None
    return v2_record(tweet, author)


def read_twarc(path: str, handle: str | None = None, encoding: str = "utf-8",
               max_post_chars: int = MAX_POST_CHARS) -> pd.DataFrame:
    """The user's posts from a twarc file as the canonical table."""
    path = Path(path).expanduser()
    records, unknown = _parse(path, encoding, max_post_chars)
    lost = (f"{unknown:,} tweet(s) whose author is not in the file (their author_id matches no "
            "user in includes.users), so whose they are is unknown")
    if not records:
        raise UserError(f"{path}: no tweets in this file" + (f" but {lost}; import a file twarc "
                                                            "wrote with its includes" if unknown
                                                            else ""))
    if unknown:
        print(f"warning: {printable(path)}: left out {lost}", file=sys.stderr, flush=True)
    authors = sorted({r["handle"] for r in records if r.get("handle")}, key=str.lower)
    if handle is not None:
        handle = validate_handle(handle)
        mine = [r for r in records if not r.get("handle") or r["handle"].lower() == handle.lower()]
        if not mine:
            raise UserError(f"{path}: no posts by @{handle}; the file has posts "
                            f"by {_shown(authors)}: pass one of them as user=")
        records = mine
    elif len(authors) == 1:
        handle = validate_handle(authors[0])
    elif not authors:
        raise UserError(f"{path}: whose posts are these? The file does not say: pass user=<handle>")
    else:
        raise UserError(f"{path}: the file has posts by {len(authors)} authors "
                        f"({_shown(authors)}); pass user=<handle> to say whose posts to import")
    for record in records:
        record.update(handle=handle, source="twarc")
    frame = to_frame(records)
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True)


def _shown(authors: list[str]) -> str:
    return ", ".join("@" + a for a in authors[:5]) + (", ..." if len(authors) > 5 else "")
