"""Read posts from a generic CSV or JSONL export, with a configurable column mapping.

`columns` maps canonical fields to the file's columns (e.g. `{"id": "tweet_id"}`; None: not in the
file); id, created_at and text default to columns of the same name. Nested JSONL objects are
flattened with dots (`author.username`).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pandas as pd
from pandas.tseries.api import guess_datetime_format

from huggingtweets.errors import UserError, printable
from huggingtweets.ingest import posts
from huggingtweets.ingest.handles import validate_handle

DEFAULT_COLUMNS: dict[str, str | None] = {
    "id": "id", "created_at": "created_at", "text": "text",
    **dict.fromkeys(("is_retweet", "is_reply", "is_quote", "lang", "handle", "display_name")),
}
REQUIRED = ("id", "created_at", "text")
FLAGS = ("is_retweet", "is_reply", "is_quote")

# A flag column holds these (any case); pandas writes a bool column with a gap as 1.0/0.0/"".
TRUE_VALUES = {"true", "t", "yes", "y", "1", "1.0"}
FALSE_VALUES = {"false", "f", "no", "n", "0", "0.0"}
UNKNOWN_VALUES = {"", "na", "n/a", "nan", "none", "null", "<na>"}  # unknown, not "no" nor "yes"
# ... or ids of what a post replies to / retweets / quotes (in_reply_to_status_id): set = True.
ID_LIKE = re.compile(r"\d+|[\d.]+[eE]\+?\d+|at://\S+")
# A number a spreadsheet or a float conversion wrote: 1.23457E+18, 8.1e17, 815676142409502720.0,
# 1,234. Ids are exact integers, and these are rounded: many posts end up with one id.
MANGLED_ID = re.compile(r"[+-]?[\d.,]*\d[\d.,]*(?:[eE][+-]?\d+)?")
# Words pandas would turn into a time relative to the moment of the import.
RELATIVE = re.compile(r"(?i)\b(?:now|today|tomorrow|yesterday|tonight|ago)\b")
# d/m/y or m/d/y (also with . or -), the year in 2 or 4 digits, then maybe a time.
NUMERIC_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)(.*)")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Formats pandas does not guess from a value.
KNOWN_FORMATS = ("%a %b %d %H:%M:%S %z %Y",)  # X's v1.1 and archive created_at


def read_csv(path: str, handle: str | None = None, columns: Mapping[str, str | None] | None = None,
             encoding: str = "utf-8", max_post_chars: int = posts.MAX_POST_CHARS,
             date_format: str | None = None, **kw) -> pd.DataFrame:
    """Posts from a CSV file (one row per post); extra keywords go to `pandas.read_csv`.
    `date_format`: the created_at column's strftime format (None: read from the column)."""
    path = Path(path).expanduser()
    text = _read_text(path, encoding)
    try:
        # Everything as text: ids must not become floats, empty cells stay "" rather than NaN.
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, **kw)
    except (pd.errors.ParserError, ValueError) as err:
        raise UserError(f"{path}: cannot parse as CSV ({printable(err, limit=300)}); check "
                        "source.path and the format")
    return _to_posts(table, path, handle, columns, source="csv", max_post_chars=max_post_chars,
                     date_format=date_format)


def read_jsonl(path: str, handle: str | None = None,
               columns: Mapping[str, str | None] | None = None, encoding: str = "utf-8",
               max_post_chars: int = posts.MAX_POST_CHARS,
               date_format: str | None = None) -> pd.DataFrame:
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
                     row_name="line", date_format=date_format)


# Deeper than this, a line is no post: json.loads would hit the recursion limit (a traceback), and
# so would everything that walks the value after it. Real posts nest a few levels.
MAX_DEPTH = 100


def json_lines(text: str, path: Path, hint: str) -> list[tuple[int, object]]:
    """(line number, JSON value) of each non-blank line; ints stay exact strings (parse_int)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            out.append((number, json_value(line, path, number, hint)))
    return out


def json_value(text: str, path: Path, number: int, hint: str):
    """One JSON document (line `number` of `path`, for messages), nested at most MAX_DEPTH."""
    try:
        if _depth(text) > MAX_DEPTH:
            raise RecursionError
        return json.loads(text, parse_int=str)
    except RecursionError:
        raise UserError(f"{path}: line {number} nests JSON more than {MAX_DEPTH} levels deep; "
                        f"no post does: {hint}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {number + err.lineno - 1} is not valid JSON "
                        f"({err.msg}); {hint}") from None


def _depth(text: str) -> int:
    """How deep the brackets of a JSON text nest (those inside strings do not count)."""
    outside = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)
    depth = deepest = 0
    for char in re.sub(r"[^\[\]{}]", "", outside):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


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
              max_post_chars: int = posts.MAX_POST_CHARS, row_name: str = "row",
              date_format: str | None = None) -> pd.DataFrame:
    """The file's rows as canonical posts; a row without an exact id or a real time, a flag that
    is no flag, an id twice with different contents: a UserError naming it (numbered as a
    spreadsheet shows them: the header is row 1; JSONL by line)."""
    if table.empty:
        raise UserError(f"{path}: the file has no posts (no rows after the header)")
    if row_name == "row":
        table = table.set_axis(pd.RangeIndex(2, len(table) + 2))
    mapping = _mapping(columns)
    for field, column in mapping.items():
        if column is None and field not in REQUIRED:
            continue
        if column is None or column not in table.columns:
            what = ("is not mapped" if column is None
                    else f"column {printable(repr(column))} is not in the file")
            found = printable(", ".join(map(str, table.columns)), limit=500)
            raise UserError(f"{path}: {what} (needed for {field}); the file has columns "
                            f"{found}. Set source.columns.{field}=<column>")

    def column(field: str) -> pd.Series | None:
        return None if mapping[field] is None else table[mapping[field]]

    where = Where(path, row_name)
    ids = column("id").map(lambda v: "" if _missing(v) else str(v).strip())
    _no_blanks(ids == "", where, mapping["id"], "id", ids)
    _exact_ids(ids, where, mapping["id"])
    texts = column("text").map(lambda v: "" if _missing(v) else v)
    if not texts.map(lambda v: isinstance(v, str)).all():  # JSON numbers, lists, objects
        bad = texts[~texts.map(lambda v: isinstance(v, str))]
        raise UserError(f"{path}: {row_name} {bad.index[0]}, column {mapping['text']!r}: "
                        f"the text is {type(bad.iloc[0]).__name__} "
                        f"{printable(str(bad.iloc[0]), limit=40)!r}, not text")
    created = _timestamps(column("created_at"), where, mapping["created_at"], date_format)
    records = pd.DataFrame({"id": ids, "created_at": created, "text": texts.astype(str)})
    posts.too_long(records, str(path), max_post_chars,
                   rows=pd.Index([f"{row_name} {i}" for i in records.index]))
    if mapping["is_retweet"] is None:
        # The only trace of a retweet in most exports is the "RT @user:" prefix.
        records["is_retweet"] = records["text"].str.startswith("RT @")
    for field in FLAGS:
        if mapping[field] is not None:
            records[field] = _flags(column(field), where, mapping[field], field)
    for field in ("lang", "display_name"):
        if mapping[field] is not None:
            records[field] = column(field).map(_optional)
    if "lang" in records:
        records["lang"] = records["lang"].replace({"und": None})
    records = _one_row_per_id(records, where, mapping["id"])

    records["handle"] = _handle(handle, column("handle"), path)
    records["source"] = source
    return posts.to_frame(records, missing=True)  # a flag column not mapped: not carried (NA)


class Where:
    """The file and how its rows are named ("row 3" of a CSV, "line 3" of a JSONL), for messages."""

    def __init__(self, path: Path, row_name: str):
        self.path, self.row_name = path, row_name

    def rows(self, labels, values: pd.Series | None = None, shown: int = 3) -> str:
        """'row 2 ('x'), row 5 ('y') and 4 more': the first few rows, with values if given."""
        labels = list(labels)
        text = ", ".join(f"{self.row_name} {r}" + (
            "" if values is None else f" ({printable(repr(values[r]), limit=40)})")
            for r in labels[:shown])
        return text + (f" and {len(labels) - shown:,} more" if len(labels) > shown else "")


def _mapping(columns: Mapping[str, str | None] | None) -> dict[str, str | None]:
    given = dict(columns or {})  # also accepts Hydra's DictConfig
    unknown = sorted(set(given) - set(DEFAULT_COLUMNS))
    if unknown:
        raise UserError(f"source.columns has unknown field(s) {', '.join(unknown)}; "
                        f"the fields are {', '.join(DEFAULT_COLUMNS)}")
    return {**DEFAULT_COLUMNS, **{k: None if v in (None, "") else str(v) for k, v in given.items()}}


def _no_blanks(blank: pd.Series, where: Where, column: str, field: str, values: pd.Series,
               what: str = "is empty", fix: str | None = None) -> None:
    """A UserError naming the first rows where `blank` holds (and how many there are)."""
    if not blank.any():
        return
    rows = blank[blank].index
    shown = where.rows(rows, None if what == "is empty" else values)
    fix = fix or (f"every post needs its {field}: fix those rows or map "
                  f"source.columns.{field} to the right column")
    raise UserError(f"{where.path}: column {printable(repr(column))} ({field}) {what} in "
                    f"{len(rows):,} row(s): {shown}; {fix}")


def _exact_ids(ids: pd.Series, where: Where, column: str) -> None:
    """Ids written as a rounded number (a spreadsheet's 1.23457E+18) are refused: a file with
    300 posts would otherwise become one post."""
    mangled = ids.map(lambda v: bool(MANGLED_ID.fullmatch(v)) and not v.isdigit())
    _no_blanks(mangled, where, column, "id", ids, what="holds rounded numbers, not exact ids",
               fix="a spreadsheet or a float conversion rounded them. Export the ids as text "
                   "(in a spreadsheet: format the id column as Text before saving) or use the "
                   "original file")


def _one_row_per_id(records: pd.DataFrame, where: Where, column: str) -> pd.DataFrame:
    """Each id once: rows repeated word for word are merged; an id on rows that differ is a
    UserError naming it (which one is the post?)."""
    repeated = records.astype(str).duplicated(keep="first")
    records = records[~repeated]
    clash = records["id"].duplicated(keep=False)
    if clash.any():
        first = records.loc[clash, "id"].iloc[0]
        rows = records.index[records["id"] == first]
        n = records.loc[clash, "id"].nunique()
        raise UserError(f"{where.path}: id {printable(first, limit=40)} (column "
                        f"{printable(repr(column))}) is on {where.rows(rows)} with different "
                        f"contents ({n:,} id(s) repeated like this); a post is there once: "
                        "remove the wrong rows (ids that end in zeros were rounded by a "
                        "spreadsheet: export them as text)")
    return records


def _timestamps(values: pd.Series, where: Where, name: str,
                date_format: str | None = None) -> pd.Series:
    """The column as UTC times, read with one format for the whole column (`date_format`, or the
    one the column shows); an empty, unreadable, relative or future value is a UserError."""
    text = values.map(lambda v: "" if _missing(v) else str(v).strip())
    _no_blanks(text == "", where, name, "created_at", text)
    fix = ("set the column's format with source.date_format=<strftime format> (e.g. "
           "%d/%m/%Y %H:%M) or fix those rows")
    fmt = date_format or _column_format(text, where, name, fix)
    try:
        parsed = pd.to_datetime(text, utc=True, format=fmt, errors="coerce")
    except (ValueError, TypeError, OverflowError) as err:  # pandas refuses the format itself
        raise UserError(f"source.date_format={date_format!r} is not a date format pandas reads "
                        f"({printable(err, limit=200)}); use strftime codes like %d/%m/%Y "
                        "%H:%M") from None
    # 0001-01-01 is no post time
    parsed = parsed.where((parsed >= posts.EARLIEST) & (parsed < posts.LATEST))
    _no_blanks(parsed.isna(), where, name, "created_at", text, what="is not a date/time",
               fix=f"the column's format is {fmt}: {fix}")
    # pandas reads "now" and "today" in any format: the time of the import, not of the post
    _no_blanks(text.str.contains(RELATIVE), where, name, "created_at", text,
               what="holds a relative date", fix="give each post the date and time it was posted")
    _no_blanks(parsed > posts.future_cutoff(), where, name, "created_at", text,
               what="is in the future", fix="fix those rows or remove them (a post cannot be "
               "newer than now; is the date format right?)")
    return parsed


def _column_format(text: pd.Series, where: Where, name: str, fix: str) -> str:
    """The one format the column's dates are written in: ISO 8601, d/m/y or m/d/y when the column
    tells which (a day over 12 somewhere), or what pandas guesses from the first value. A column
    that cannot tell day-first from month-first, or mixes them, is a UserError."""
    if text.str.match(ISO_DATE).all():
        return "ISO8601"  # unambiguous, whatever precision each value has
    first = text.iloc[0]
    parts = text.str.extract(NUMERIC_DATE)
    if parts[0].notna().all():
        a, b = parts[0].astype(int), parts[2].astype(int)
        if a.max() > 12 and b.max() > 12:
            mixed = [a.idxmax(), b.idxmax()]
            raise UserError(f"{where.path}: column {printable(repr(name))} (created_at) mixes "
                            f"day-first and month-first dates ({where.rows(mixed, text)}); "
                            f"{fix}")
        if a.max() <= 12 and b.max() <= 12:
            raise UserError(f"{where.path}: column {printable(repr(name))} (created_at) has dates "
                            f"like {printable(repr(first), limit=40)} that could be day/month or "
                            "month/day (no day past the 12th tells which); set "
                            "source.date_format=%d/%m/%Y (day first) or %m/%d/%Y (month "
                            "first), with %y for 2-digit years and the time, e.g. %H:%M")
        sep, year, rest = parts.loc[text.index[0], [1, 3, 4]]
        order = ("%d", "%m") if a.max() > 12 else ("%m", "%d")
        date = sep.join([*order, "%Y" if len(year) == 4 else "%y"])
        # the time part, as pandas reads it after a plain ISO date
        guess = guess_datetime_format(f"2001-02-03{rest}") if rest.strip() else "%Y-%m-%d"
        if guess is None or not guess.startswith("%Y-%m-%d"):
            raise UserError(f"{where.path}: column {printable(repr(name))} (created_at): cannot "
                            f"tell the time format of {printable(repr(first), limit=40)}; {fix}")
        return date + guess[len("%Y-%m-%d"):]
    guess = guess_datetime_format(first)
    for known in KNOWN_FORMATS if guess is None else ():
        try:
            datetime.strptime(first, known)
            guess = known
        except ValueError:
            continue
    if guess is None:
        raise UserError(f"{where.path}: column {printable(repr(name))} (created_at): cannot tell "
                        f"the date format of {where.rows(text.index[:1], text)}; {fix}")
    return guess


def _flags(values: pd.Series, where: Where, column: str, field: str) -> pd.Series:
    """A flag column as True/False/None (blank: unknown). It holds true/false, yes/no or 1/0 (any
    case, 1.0/0.0 too), or ids of what a post refers to (in_reply_to_status_id: set = True)."""
    spelled = values.map(lambda v: str(v).lower() if isinstance(v, bool)
                         else "" if _missing(v) else str(v).strip().lower())
    known = spelled[~spelled.isin(UNKNOWN_VALUES)]
    if known.isin(TRUE_VALUES | FALSE_VALUES).all():
        return spelled.map(lambda v: True if v in TRUE_VALUES else False if v in FALSE_VALUES
                           else None)
    odd = known[~known.isin(TRUE_VALUES | FALSE_VALUES)]
    if odd.map(lambda v: bool(ID_LIKE.fullmatch(v))).all():
        # An id column: an id set means yes; blank or 0 means no (nothing referred to).
        return spelled.map(lambda v: bool(ID_LIKE.fullmatch(v)) and v not in FALSE_VALUES)
    bad = odd[~odd.map(lambda v: bool(ID_LIKE.fullmatch(v)))]
    raise UserError(f"{where.path}: column {printable(repr(column))} ({field}) holds "
                    f"{where.rows(bad.index, values)}; a flag is true/false, yes/no or 1/0 "
                    f"(blank: unknown), or an id column like in_reply_to_status_id (set = "
                    f"true): fix those rows or map source.columns.{field} to another column")


def _optional(value) -> str | None:
    return None if _missing(value) else str(value)


def _missing(value) -> bool:
    if isinstance(value, str | float):
        return value == "" or (isinstance(value, float) and pd.isna(value))
    return value is None or value is pd.NA or value is pd.NaT


def _handle(handle: str | None, values: pd.Series | None, path: Path) -> str:
    """The argument if given, else the file's handle column when it holds exactly one handle."""
    if handle is not None:
        return validate_handle(handle)
    found = [] if values is None else sorted({str(v) for v in values if not _missing(v)})
    if len(found) == 1:
        return validate_handle(found[0])
    if not found:
        raise UserError(f"{path}: whose posts are these? pass user=<handle>")
    shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
    raise UserError(f"{path}: the handle column holds {len(found)} different handles ({shown}); "
                    "pass user=<handle> to say whose posts these are")
