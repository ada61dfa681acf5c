"""Files written by twarc: `twarc2 timeline` JSONL, its flattened form, and v1.1 statuses.

Each line (or the whole file, one saved response) may be a v2 page (`twarc2 timeline` / `search`),
a flattened tweet (`twarc2 flatten`) or a v1.1 status (twarc 1, old dumps). Records carry their
author: `user=` keeps that author's posts, and without it a single-author file names its user.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest.posts import MAX_POST_CHARS, check_record, to_frame, validate_handle
from huggingtweets.ingest.sources.fetching import Malformed
from huggingtweets.ingest.sources.files import _read_text, json_lines
from huggingtweets.ingest.sources.x import v1_record, v2_items, v2_record


def parse_twarc(path: str | Path, encoding: str = "utf-8",
                max_post_chars: int = MAX_POST_CHARS) -> list[dict]:
    """Every tweet in the file as a canonical record, whoever wrote it (handle = its author). Each
    is checked like an API page's (`check_record`); the first that fails is a UserError naming
    the line, so a file never imports half-understood."""
    path = Path(path).expanduser()
    text = _read_text(path, encoding)
    try:
        # A whole-file JSON document: a saved response (pretty-printed object, or an array).
        objects = [(1, json.loads(text, parse_int=str))]
    except json.JSONDecodeError:
        objects = json_lines(text, path, "twarc writes one JSON object per line")
    records = []
    for number, obj in objects:
        for item in obj if isinstance(obj, list) else [obj]:
            try:
                found = _records(item, path, number)
            except Malformed as err:
                raise UserError(f"{path}: line {number}: {err}; not a twarc file this reads") \
                    from None
            for record in found:
                why = check_record(record, max_post_chars)
                if why is not None:  # records are dicts: v1_record / v2_record made them
                    more = " (raise source.max_post_chars to import it)" if "longer" in why else ""
                    raise UserError(f"{path}: line {number}: post {record.get('id')} is "
                                    f"{why}{more}")
                records.append(record)
    return records


def _records(obj, path: Path, number: int) -> list[dict]:
    if not isinstance(obj, dict):
        raise UserError(f"{path}: line {number} is not a JSON object")
    if "data" in obj or ("meta" in obj and "__twarc" in obj) or set(obj) <= {"errors", "meta"}:
        # a v2 page (an empty page or an errors-only page gives none)
        return [v2_record(*item["pair"]) for item in v2_items(obj)]
    if "id" in obj and ("user" in obj or "id_str" in obj) and "created_at" in obj:
        return [v1_record(obj)]
    if "id" in obj and "text" in obj:
        return [v2_record(obj)]  # flattened: the author sits in obj["author"]
    raise UserError(f"{path}: line {number} is neither a twarc2 page, a flattened "
                    f"tweet nor a v1.1 status (its keys: {', '.join(list(obj)[:8])})")


def read_twarc(path: str, handle: str | None = None, encoding: str = "utf-8",
               max_post_chars: int = MAX_POST_CHARS) -> pd.DataFrame:
    """The user's posts from a twarc file as the canonical table."""
    records = parse_twarc(path, encoding, max_post_chars)
    if not records:
        raise UserError(f"{path}: no tweets in this file")
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
