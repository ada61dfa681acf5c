"""Read posts from a generic CSV or JSONL export, with a configurable column mapping.

`columns` maps canonical fields to the file's columns (e.g. `{"id": "tweet_id"}`; None: not in the
file); id, created_at and text default to columns of the same name. Nested JSONL objects are
flattened with dots (`author.username`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts

DEFAULT_COLUMNS: dict[str, str | None] = {
    "id": "id", "created_at": "created_at", "text": "text",
    **dict.fromkeys(("is_retweet", "is_reply", "is_quote", "lang", "handle", "display_name")),
}
REQUIRED = ("id", "created_at", "text")
FLAGS = ("is_retweet", "is_reply", "is_quote")

# Spellings of "no" in flag columns. Anything else non-empty counts as yes, which also covers
# columns holding ids (retweeted_status_id, in_reply_to_status_id): an id set means True.
FALSE_VALUES = {"", "0", "false", "f", "no", "n", "nan", "none", "null", "na", "<na>"}


def read_csv(path: str, handle: str | None = None, columns: Mapping[str, str | None] | None = None,
             encoding: str = "utf-8", max_post_chars: int = posts.MAX_POST_CHARS,
             **kw) -> pd.DataFrame:
    """Posts from a CSV file (one row per post); extra keywords go to `pandas.read_csv`."""
    path = Path(path).expanduser()
    text = _read_text(path, encoding)
    try:
        # Everything as text: ids must not become floats, empty cells stay "" rather than NaN.
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, **kw)
    except (pd.errors.ParserError, ValueError) as err:
        raise UserError(f"{path}: cannot parse as CSV ({err}); check source.path and the format")
    return _to_posts(table, path, handle, columns, source="csv", max_post_chars=max_post_chars)


def read_jsonl(path: str, handle: str | None = None,
               columns: Mapping[str, str | None] | None = None, encoding: str = "utf-8",
               max_post_chars: int = posts.MAX_POST_CHARS) -> pd.DataFrame:
    """Posts from a JSON Lines file: one JSON object per line, one post per object."""
    path = Path(path).expanduser()
    text = _read_text(path, encoding)
    rows = json_lines(text, path, "a JSONL file needs one JSON object per line")
    for number, row in rows:
        if not isinstance(row, dict):
            raise UserError(f"{path}: line {number} is not a JSON object; expected one "
                            "post per line")
    table = pd.json_normalize([row for _, row in rows]) if rows else pd.DataFrame()
    table.index = pd.Index([number for number, _ in rows][: len(table)], dtype=object)
    return _to_posts(table, path, handle, columns, source="jsonl", max_post_chars=max_post_chars,
                     row_name="line")


def json_lines(text: str, path: Path, hint: str) -> list[tuple[int, object]]:
    """(line number, JSON value) of each non-blank line; ints stay exact strings (parse_int)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((number, json.loads(line, parse_int=str)))
            except json.JSONDecodeError as err:
                raise UserError(f"{path}: line {number} is not valid JSON ({err.msg}); {hint}")
    return out


def _read_text(path: Path, encoding: str) -> str:
    """The file's text, refusing to guess: a wrong encoding would silently give mojibake."""
    if not path.is_file():
        raise UserError(f"file not found: {path} (set source.path=<file>)")
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid {encoding} (byte 0x{data[err.start]:02x} "
                        f"at offset {err.start}). If you know the file's encoding, "
                        "set it, e.g. source.encoding=latin-1")
    except LookupError:
        raise UserError(f"source.encoding={encoding!r} is not an encoding Python knows")
    text = text.removeprefix("\ufeff")  # a byte-order mark would stick to the first column name
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    return text


def _to_posts(table: pd.DataFrame, path: Path, handle: str | None,
              columns: Mapping[str, str | None] | None, source: str,
              max_post_chars: int = posts.MAX_POST_CHARS, row_name: str = "row") -> pd.DataFrame:
    """The file's rows as canonical posts; a row without an id or a real time is a UserError
    naming it (numbered as a spreadsheet shows them: the header is row 1; JSONL by line)."""
    if table.empty:
        raise UserError(f"{path}: the file has no posts (no rows after the header)")
    if row_name == "row":
        table = table.set_axis(pd.RangeIndex(2, len(table) + 2))
    mapping = _mapping(columns)
    for field, column in mapping.items():
        if column is None and field not in REQUIRED:
            continue
        if column is None or column not in table.columns:
            what = "is not mapped" if column is None else f"column {column!r} is not in the file"
            raise UserError(f"{path}: {what} (needed for {field}); the file has columns "
                            f"{', '.join(map(str, table.columns))}. Set "
                            f"source.columns.{field}=<column>")

    def column(field: str) -> pd.Series | None:
        return None if mapping[field] is None else table[mapping[field]]

    ids = column("id").map(lambda v: "" if _missing(v) else str(v).strip())
    _no_blanks(ids == "", path, mapping["id"], "id", row_name, ids)
    texts = column("text").map(lambda v: "" if _missing(v) else v)
    if not texts.map(lambda v: isinstance(v, str)).all():  # JSON numbers, lists, objects
        bad = texts[~texts.map(lambda v: isinstance(v, str))]
        raise UserError(f"{path}: {row_name} {bad.index[0]}, column {mapping['text']!r}: "
                        f"the text is {type(bad.iloc[0]).__name__} "
                        f"{str(bad.iloc[0])[:40]!r}, not text")
    created = _timestamps(column("created_at"), path, mapping["created_at"], row_name)
    records = pd.DataFrame({"id": ids, "created_at": created, "text": texts.astype(str)})
    posts.too_long(records, str(path), max_post_chars,
                   rows=pd.Index([f"{row_name} {i}" for i in records.index]))
    if mapping["is_retweet"] is None:
        # The only trace of a retweet in most exports is the "RT @user:" prefix.
        records["is_retweet"] = records["text"].str.startswith("RT @")
    for field in FLAGS:
        if mapping[field] is not None:
            records[field] = column(field).map(_flag)
    for field in ("lang", "display_name"):
        if mapping[field] is not None:
            records[field] = column(field).map(_optional)
    if "lang" in records:
        records["lang"] = records["lang"].replace({"und": None})

    records["handle"] = _handle(handle, column("handle"), path)
    records["source"] = source
    return posts.to_frame(records, missing=True)  # a flag column not mapped: not carried (NA)


def _mapping(columns: Mapping[str, str | None] | None) -> dict[str, str | None]:
    given = dict(columns or {})  # also accepts Hydra's DictConfig
    unknown = sorted(set(given) - set(DEFAULT_COLUMNS))
    if unknown:
        raise UserError(f"source.columns has unknown field(s) {', '.join(unknown)}; "
                        f"the fields are {', '.join(DEFAULT_COLUMNS)}")
    return {**DEFAULT_COLUMNS, **{k: None if v in (None, "") else str(v) for k, v in given.items()}}


def _no_blanks(blank: pd.Series, path: Path, column: str, field: str, row_name: str,
               values: pd.Series, what: str = "is empty") -> None:
    """A UserError naming the first rows where `blank` holds (and how many there are)."""
    if not blank.any():
        return
    rows = list(blank[blank].index)
    shown = ", ".join(f"{row_name} {r}" + ("" if what == "is empty" else f" ({values[r]!r:.40})")
                      for r in rows[:3])
    more = f" and {len(rows) - 3:,} more" if len(rows) > 3 else ""
    raise UserError(f"{path}: column {column!r} ({field}) {what} in {len(rows):,} "
                    f"row(s): {shown}{more}; every post needs its {field}: fix "
                    f"those rows or map source.columns.{field} to the right column")


def _timestamps(values: pd.Series, path: Path, name: str, row_name: str = "row") -> pd.Series:
    """The column as UTC times; an empty or unreadable value is a UserError naming its row."""
    text = values.map(lambda v: "" if _missing(v) else str(v).strip())
    _no_blanks(text == "", path, name, "created_at", row_name, text)
    try:
        parsed = pd.to_datetime(text, utc=True, format="mixed", errors="coerce")
    except (ValueError, TypeError, OverflowError):  # pandas refuses the column as a whole
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    # 0001-01-01 is no post time
    parsed = parsed.where((parsed >= posts.EARLIEST) & (parsed < posts.LATEST))
    _no_blanks(parsed.isna(), path, name, "created_at", row_name, text,
               what="is not a date/time")
    return parsed


def _flag(value) -> bool:
    if value is None or value is False or (isinstance(value, float) and pd.isna(value)):
        return False
    return str(value).strip().lower() not in FALSE_VALUES


def _optional(value) -> str | None:
    return None if _missing(value) else str(value)


def _missing(value) -> bool:
    if isinstance(value, str | float):
        return value == "" or (isinstance(value, float) and pd.isna(value))
    return value is None or value is pd.NA or value is pd.NaT


def _handle(handle: str | None, values: pd.Series | None, path: Path) -> str:
    """The argument if given, else the file's handle column when it holds exactly one handle."""
    if handle is not None:
        return posts.validate_handle(handle)
    found = [] if values is None else sorted({str(v) for v in values if not _missing(v)})
    if len(found) == 1:
        return posts.validate_handle(found[0])
    if not found:
        raise UserError(f"{path}: whose posts are these? pass user=<handle>")
    shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
    raise UserError(f"{path}: the handle column holds {len(found)} different handles ({shown}); "
                    "pass user=<handle> to say whose posts these are")
