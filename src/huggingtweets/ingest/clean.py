"""Turn the canonical post table into the text a model trains on, and count what was removed.

Two presets (`clean=`): `huggingtweets` is the original notebook exactly (`fix_text`, `clean_tweet`,
`boring_tweet`, in its order), so old model cards reproduce; `default` unescapes every entity,
keeps Japanese, Chinese or Thai posts, drops duplicates and optionally replies, quotes and reply
mentions. Each removed post counts under the first rule that removed it, so the table adds up.
Text work runs on object (`str`) columns: pandas would hand Arrow strings to RE2, whose `\\s` is
ASCII-only, while the original's `re` ends a URL at a no-break space.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from huggingtweets.errors import UserError

PRESETS = ("huggingtweets", "default")

DOWNLOADED = "Tweets downloaded"
RETWEETS = "Retweets"
REPLIES = "Replies"
QUOTES = "Quotes"
DUPLICATES = "Duplicates"
SHORT = "Short tweets"
KEPT = "Tweets kept"

# The original clean_tweet, pattern for pattern and in its order (see _clean_huggingtweets).
ORIGINAL_URL_PATTERNS = {
    w: [p.format(w=w) for p in (r" {w}\S+", r"{w}\S+ ", r"\n{w}\S+ ", r"\n{w}\S+", r"{w}\S+")]
    for w in ("http:", "https:")
}

# The default preset's URL rule: any http(s) link, any case, with the whitespace before it (the
# whitespace after it goes when whitespace is collapsed). t.co links, which is what X puts in the
# text for every link, always carry a scheme, so a bare "www." needs no rule of its own.
URL = r"\s*[hH][tT][tT][pP][sS]?:\S+"
HAS_URL = "[hH][tT][tT][pP][sS]?:"

# The @mentions X puts at the start of a reply: "@a @b thanks" -> "thanks" (also @a.bsky.social,
# @b@host). A handle followed by anything but whitespace ("@alice's idea") is text and stays.
LEADING_MENTIONS = r"^(?:@[A-Za-z0-9_]+(?:[.@][A-Za-z0-9_-]+)*(?:\s+|$))+"

# Scripts written without spaces between words, where a word count means nothing. Thai vowel and
# tone marks (U+0E31, U+0E34-U+0E3A, U+0E47-U+0E4E) and digits are left out, so a Thai letter
# counts about as much as a kana; punctuation such as "。" is a letter of none of them.
DENSE_SCRIPT = re.compile(
    r"[\u3041-\u3096\u309D-\u309F"  # Hiragana
    r"\u30A1-\u30FA\u30FC-\u30FF\u31F0-\u31FF\uFF66-\uFF9D"  # Katakana
    r"\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF"  # CJK ideographs
    r"\u1100-\u11FF\u3131-\u318E\uAC00-\uD7A3"  # Hangul
    r"\u0E01-\u0E30\u0E32\u0E33\u0E40-\u0E46]"  # Thai letters
)


@dataclass
class Cleaned:
    posts: pd.DataFrame  # the kept rows, same columns as the input, `text` cleaned, original order
    table: dict[str, int]  # ordered rows of the data table: downloaded, removals..., kept


def fix_text(text: pd.Series) -> pd.Series:
    """The original `fix_text`: only &amp; &lt; &gt;, in that order (so "&amp;lt;" becomes "<")."""
    return text.str.replace("&amp;", "&").str.replace("&lt;", "<").str.replace("&gt;", ">")


def collapse_whitespace(text: pd.Series) -> pd.Series:
    """Every run of whitespace becomes one space, ends trimmed (`map`: 2x the `.str` regex)."""
    return text.map(lambda t: " ".join(t.split()))


def non_boring_words(text: str) -> list[str]:
    """The words (whitespace-separated) without "http", "@" or "#" in any case, lower-cased."""
    return [w for w in text.lower().split() if "http" not in w and "@" not in w and "#" not in w]


def boring_tweet(text: str) -> bool:
    """The original `boring_tweet`: fewer than 3 words free of links, mentions and hashtags."""
    return len(non_boring_words(text)) < 3


def _replace_where(text: pd.Series, has: pd.Series, pattern: str, repl: str) -> pd.Series:
    """`text.str.replace(pattern, repl)`, run only on the rows flagged by `has` (a speed-up)."""
    if not has.any():
        return text
    text = text.copy()
    text[has] = text[has].str.replace(pattern, repl, regex=True)
    return text


def _clean_huggingtweets(text: pd.Series) -> pd.Series:
    """The original `fix_text` then `clean_tweet`, pattern for pattern, on rows with a scheme."""
    text = fix_text(text)
    for w in ("http:", "https:"):
        has = text.str.contains(w, regex=False)
        for pattern in ORIGINAL_URL_PATTERNS[w]:
            text = _replace_where(text, has, pattern, "")
    text = _replace_where(text, text.str.contains("  ", regex=False), " +", " ")
    return collapse_whitespace(text)


def _clean_default(text: pd.Series, leading_mentions: pd.Series | None) -> pd.Series:
    """Unescape every entity (first, as in the original: "&#10;" is whitespace), drop links,
    collapse whitespace, strip the leading @mentions of the rows `leading_mentions` marks."""
    has_entity = text.str.contains("&", regex=False)
    text = text.where(~has_entity, text[has_entity].map(html.unescape))
    text = _replace_where(text, text.str.contains(HAS_URL, regex=True), URL, " ")
    text = collapse_whitespace(text)
    if leading_mentions is not None:
        text = _replace_where(text, leading_mentions & text.str.startswith("@"),
                              LEADING_MENTIONS, "")
    return text


def _flag(posts: pd.DataFrame, col: str) -> pd.Series:
    if col not in posts:
        return pd.Series(False, index=posts.index)
    return posts[col].astype(object).where(posts[col].notna(), False).astype(bool)


def _option(cfg: Mapping, key: str, default):
    value = cfg.get(key, default)
    return default if value is None else value


def clean_posts(posts: pd.DataFrame, cfg: Mapping) -> Cleaned:
    """Clean `posts` (the canonical table) with the `clean` config node `cfg` (its preset)."""
    preset = _option(cfg, "preset", "default")
    if preset not in PRESETS:
        raise UserError(f"clean.preset={preset!r}: use one of {', '.join(PRESETS)}")

    posts = posts.reset_index(drop=True)
    text = posts["text"].astype(object).where(posts["text"].notna(), "").astype(object)
    retweet = _flag(posts, "is_retweet") | text.str.startswith("RT @")
    table = {DOWNLOADED: len(posts), RETWEETS: int(retweet.sum())}
    keep = ~retweet

    if preset == "huggingtweets":
        cleaned = _clean_huggingtweets(text[keep])
        short = cleaned.map(boring_tweet).astype(bool)
        table[SHORT] = int(short.sum())
        cleaned = cleaned[~short]
    else:
        cleaned, removed = _default(posts, text, keep, cfg)
        table.update(removed)

    table[KEPT] = len(cleaned)
    assert table[DOWNLOADED] == sum(list(table.values())[1:]), table

    kept = posts.loc[cleaned.index].copy()
    kept["text"] = cleaned.astype(posts["text"].dtype)
    return Cleaned(posts=kept.reset_index(drop=True), table=table)


def _default(posts: pd.DataFrame, text: pd.Series, keep: pd.Series,
             cfg: Mapping) -> tuple[pd.Series, dict[str, int]]:
    """The default preset on the non-retweets: the kept cleaned text and the removal rows. The
    short check runs before dedupe: otherwise every post that cleans to "" (a bare link) but the
    first would be counted as a duplicate, not as short."""
    counts: dict[str, int] = {}
    for option, col, row in (("drop_replies", "is_reply", REPLIES),
                             ("drop_quotes", "is_quote", QUOTES)):
        if _option(cfg, option, False):
            dropped = _flag(posts, col) & keep
            counts[row] = int(dropped.sum())
            keep &= ~dropped
    strip = _option(cfg, "strip_leading_mentions", False)
    cleaned = _clean_default(text[keep], _flag(posts, "is_reply")[keep] if strip else None)

    # Short: fewer than `short_min_words` words without links, mentions or hashtags and fewer than
    # `short_min_script_chars` letters of a space-less script (an empty post is short).
    min_words = int(_option(cfg, "short_min_words", 3))
    min_script = int(_option(cfg, "short_min_script_chars", 10))

    def is_short(text: str) -> bool:
        words = non_boring_words(text)
        return (len(words) < min_words
                and sum(len(DENSE_SCRIPT.findall(w)) for w in words) < min_script)

    short = cleaned.map(is_short).astype(bool)
    cleaned = cleaned[~short]

    if _option(cfg, "dedupe", True):
        duplicate = cleaned.duplicated(keep="first")
        counts[DUPLICATES] = int(duplicate.sum())
        cleaned = cleaned[~duplicate]
    counts[SHORT] = int(short.sum())
    return cleaned, counts


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def check_enough(cleaned: Cleaned, handle: str, min_chars: int) -> None:
    """Raise a UserError, with the counts, when nothing is kept or the text is under min_chars."""
    handle = str(handle).removeprefix("@")
    table = cleaned.table
    chars = int(cleaned.posts["text"].str.len().sum()) if len(cleaned.posts) else 0
    kept = int(table.get(KEPT, len(cleaned.posts)))
    removals = [f"{n:,} {row.lower().removesuffix(' tweets')}" for row, n in table.items()
                if row not in (DOWNLOADED, KEPT)]
    downloaded = int(table.get(DOWNLOADED, kept))
    of = f"of {downloaded:,} downloaded" + (f": {', '.join(removals)}" if removals else "")
    if kept == 0:
        raise UserError(f"@{handle} has no text left to train on: 0 tweets kept ({of}). "
                        "Import more posts, or change the clean.* options that removed them.")
    if chars < min_chars:
        raise UserError(f"@{handle} has too little text to train on: {_plural(chars, 'character')} "
                        f"in {_plural(kept, 'tweet')} kept ({of}). The minimum is {min_chars:,} "
                        "characters (clean.min_chars); import more posts or lower clean.min_chars.")


def print_table(tables: Mapping[str, Mapping[str, int]], title: str | None = None) -> None:
    """The data table, printed with rich (the card renders its own, escaped copy: card.py)."""
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title)
    out.add_column("Data")
    for handle in tables:
        out.add_column(f"@{str(handle).removeprefix('@')}", justify="right")
    rows = list(dict.fromkeys(row for table in tables.values() for row in table))
    for row, after in zip(rows, [*rows[1:], None]):
        cells = (str(table[row]) if row in table else "-" for table in tables.values())
        # a rule above "Tweets kept", like the line above a sum
        out.add_row(row, *cells, end_section=after == KEPT)
    Console().print(out)
