"""Three synthetic personas, so everything runs (and is tested) with no account and no network.

Each persona has its own vocabulary and voice, different enough that a classifier can tell them
apart, and each post keeps to one topic (a kind of night, a match, a cuisine), so its words agree
across the whole post, as people's do: what a language model can learn beyond the next word or two.

- demo_ada: an astronomer who lives on coffee; lowercase night-time musings.
- demo_bo: a loud football fan; CAPS, "!!!", emoji and #hashtags.
- demo_cy: a cook posting recipes, about a third of them in Japanese (CJK text matters).

The timelines are messy on purpose, like real ones: retweets, replies, quotes, t.co links in
odd places, HTML entities (the X API escapes & < > in text), emoji, one-word tweets, exact
duplicates, doubled spaces and newlines. Output is a pure function of (handle, n, seed): the
generator is seeded with zlib.crc32 of the handle, never Python's per-process hash().
"""

from __future__ import annotations

import html
import json
import random
import re
import string
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources

import pandas as pd

from huggingtweets.errors import UserError
from huggingtweets.ingest.handles import validate_handle
from huggingtweets.ingest.posts import to_frame
from huggingtweets.ingest.sources.x import TWITTER_EPOCH_MS  # ids are snowflakes

START = datetime(2021, 1, 1, tzinfo=UTC)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Share of each kind of post; the rest are original posts.
KINDS = {"retweet": 0.08, "reply": 0.15, "quote": 0.03, "short": 0.05}

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@dataclass(frozen=True)
class Style:
    words: dict[str, list[str]]  # slot name -> choices; templates say {slot}
    topics: list[dict[str, list[str]]]  # each post keeps to one: narrower choices for some slots
    originals: list[str]
    replies: list[str]  # written after "@friend "
    retweets: list[str]  # someone else's post, written after "RT @friend: "
    quotes: list[str]  # comment in front of the quoted post's link
    shorts: list[str]
    friends: list[str]
    emoji: list[str]
    emoji_rate: float  # chance of a trailing emoji run
    max_emoji: int
    mean_gap_hours: float  # posting rhythm
    japanese: float = 0.0  # share of originals/replies/retweets taken from the ja_ lists
    ja_originals: tuple[str, ...] = ()
    ja_replies: tuple[str, ...] = ()
    ja_retweets: tuple[str, ...] = ()


# The personas' word lists, templates and rhythm: data, in demo_personas.json beside this file.
_PERSONAS = json.loads(resources.files(__package__).joinpath("demo_personas.json").read_text("utf-8"))
PERSONAS = {h: {"display_name": p["display_name"], "description": p["description"]}
            for h, p in _PERSONAS.items()}
STYLES = {h: Style(**p["style"]) for h, p in _PERSONAS.items()}



def generate(handle: str, n: int, seed: int = 0) -> pd.DataFrame:
    """`n` posts of a demo persona, as the canonical table. Same arguments, same bytes. (`n` has
    no default here: conf/source/demo.yaml holds it.)"""
    handle = validate_handle(handle).lower()
    if handle not in PERSONAS:
        raise UserError(
            f"@{handle} is not a demo persona; the demo personas are "
            + ", ".join(f"{h} ({p['description']})" for h, p in PERSONAS.items())
        )
    style = STYLES[handle]
    persona_index = list(PERSONAS).index(handle)
    rng = random.Random(int(seed) * 2**32 + zlib.crc32(handle.encode()))

    records = []
    when = START
    for i in range(int(n)):
        text, is_reply, is_retweet, is_quote = _post(style, rng)
        # Html-escape like the X API does: "&" arrives as "&amp;", "<" as "&lt;", ">" as "&gt;".
        text = html.escape(text, quote=False)
        # At least a minute apart, so times (and the ids made from them) strictly increase.
        gap = 60 + rng.expovariate(1 / (style.mean_gap_hours * 3600))
        when += timedelta(seconds=int(gap), milliseconds=rng.randrange(1000))
        millis = (when - UNIX_EPOCH) // timedelta(milliseconds=1)
        snowflake = ((millis - TWITTER_EPOCH_MS) << 22) | (persona_index << 12) | (i & 0xFFF)
        records.append(
            {
                "id": str(snowflake),
                "created_at": when,
                "text": text,
                "handle": handle,
                "display_name": PERSONAS[handle]["display_name"],
                "is_retweet": is_retweet,
                "is_reply": is_reply,
                "is_quote": is_quote,
                "lang": "ja" if CJK.search(text) else "en",
                "source": "demo",
            }
        )
    _add_duplicates(records, rng)
    return to_frame(records)


def _post(style: Style, rng: random.Random) -> tuple[str, bool, bool, bool]:
    """One post: (text, is_reply, is_retweet, is_quote), before html escaping."""
    friend = rng.choice(style.friends)
    japanese = rng.random() < style.japanese
    roll = rng.random()
    if roll < KINDS["retweet"]:
        pool = style.ja_retweets if japanese else style.retweets
        text = f"RT @{friend}: {_fill(rng.choice(pool), style, rng)}"
        if rng.random() < 0.5:
            text += " " + _url(rng)
        if len(text) > 140:  # retweets in archives are often cut like this
            text = text[:139] + "…"
        return text, False, True, False
    roll -= KINDS["retweet"]
    if roll < KINDS["reply"]:
        pool = style.ja_replies if japanese else style.replies
        mentions = f"@{friend} " + (f"@{rng.choice(style.friends)} " if rng.random() < 0.15 else "")
        text = _decorate(mentions + _fill(rng.choice(pool), style, rng), style, rng)
        return text, True, False, False
    roll -= KINDS["reply"]
    if roll < KINDS["quote"]:
        text = f"{_fill(rng.choice(style.quotes), style, rng)} {_url(rng)}"
        return text, False, False, True
    roll -= KINDS["quote"]
    if roll < KINDS["short"]:
        return _fill(rng.choice(style.shorts), style, rng, friend), False, False, False
    pool = style.ja_originals if japanese else style.originals
    text = _decorate(_fill(rng.choice(pool), style, rng), style, rng)
    return text, False, False, False


def _fill(template: str, style: Style, rng: random.Random, friend: str | None = None) -> str:
    used: set[str] = set()  # "{ingredient} & {ingredient}" should name two different things
    # One topic per post (a cuisine, a kind of night, a match result), so its slots agree with each
    # other across the whole post: structure a trigram cannot see and a transformer can.
    words = {**style.words, **rng.choice(style.topics)}

    def slot(match: re.Match) -> str:
        name = match.group(1)
        if name == "n":
            return str(rng.randint(2, 12))
        if name == "minute":
            return str(rng.randint(1, 90))
        if name == "score":
            return f"{rng.randint(0, 5)}-{rng.randint(0, 4)}"
        if name == "friend":
            return friend or rng.choice(style.friends)
        word = rng.choice([w for w in words[name] if w not in used] or words[name])
        used.add(word)
        return word

    return re.sub(r"\{(\w+)\}", slot, template)


def _decorate(text: str, style: Style, rng: random.Random) -> str:
    """Emoji, links and untidy whitespace, placed the way people actually post them."""
    if rng.random() < style.emoji_rate:
        run = "".join(rng.choice(style.emoji) for _ in range(rng.randint(1, style.max_emoji)))
        text += ("" if CJK.search(text) else " ") + run
    roll = rng.random()
    if roll < 0.06:  # mid-text, after a sentence or clause break
        breaks = [m.end() for m in re.finditer(r"[.,:!?。、] ?", text)][:-1]
        breaks = breaks or [m.start() for m in re.finditer(" ", text)]  # else between words
        if breaks:
            at = rng.choice(breaks)
            text = f"{text[:at].rstrip()} {_url(rng)} {text[at:].lstrip()}"
        else:
            text += " " + _url(rng)
    elif roll < 0.13:
        text += " " + _url(rng)
    elif roll < 0.17:
        text += "\n" + _url(rng)
    roll = rng.random()
    if roll < 0.05:
        text = text.replace(" ", "  ", 1)
    elif roll < 0.08:
        text = text.replace(". ", ".\n\n", 1)
    elif roll < 0.10:
        text += "  "
    return text


def _url(rng: random.Random) -> str:
    return "https://t.co/" + "".join(rng.choices(string.ascii_letters + string.digits, k=10))


def _add_duplicates(records: list[dict], rng: random.Random) -> None:
    """People post the same thing twice: copy a couple of early originals onto later posts."""
    plain = [
        i for i, r in enumerate(records) if not (r["is_retweet"] or r["is_reply"] or r["is_quote"])
    ]
    if len(plain) < 20:
        return
    half = len(plain) // 2
    for source, target in zip(rng.sample(plain[:half], 2), rng.sample(plain[half:], 2)):
        records[target]["text"] = records[source]["text"]
        records[target]["lang"] = records[source]["lang"]
