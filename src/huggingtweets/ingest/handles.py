"""Handles, one syntax per platform, and a mix of them: `user=alice-bob`, `user=a.bsky.social+b@m.st`.

Pure syntax: nothing here reads the post cache (`posts.distinct_accounts` checks a mix against it).
"""

import re

from huggingtweets.errors import UserError

# Handles, one syntax per platform. Each maps to a cache name made only of ASCII letters, digits
# and "_.-" that never starts with a dot, so nothing a handle contains can escape data/: "../x",
# "a/b", NUL, "" and "." are all rejected before they get near a path.
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A domain: two or more labels, the last (the top-level domain) not starting with a digit.
DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?")
BLUESKY_HANDLE = DOMAIN  # alice.bsky.social, or any domain the user verified
DID = re.compile(rf"did:plc:[a-z2-7]{{24}}|did:web:{DOMAIN.pattern}")
MASTODON_HANDLE = re.compile(rf"(?P<user>[A-Za-z0-9_](?:[A-Za-z0-9_.-]{{0,62}}[A-Za-z0-9_])?)"
                             rf"@(?P<host>{DOMAIN.pattern})")
MAX_DOMAIN = 253  # DNS names are at most 253 characters

HANDLE_RULES = ("use an X handle (1-15 letters, digits or _), a Bluesky handle (alice.bsky.social) "
                "or DID (did:plc:...), or a Mastodon address (user@instance.social); a mix joins "
                "handles with '+' (e.g. user=alice.bsky.social+bob@mastodon.social) or, for X "
                "handles, with '-' (user=alice-bob)")


def identify(handle: str) -> tuple[str, str] | None:
    """(platform, normalised handle), or None when `handle` is no platform's handle. Every
    platform's handles ignore case (X and Mastodon user names, domains, DIDs), so the normal form
    is lower-case: one person, one cache, one model id, however the handle was typed."""
    if X_HANDLE.fullmatch(handle):
        return "x", handle.lower()
    if len(handle) > MAX_DOMAIN + 65:
        return None
    if DID.fullmatch(handle):
        return "bluesky", handle.lower()
    if BLUESKY_HANDLE.fullmatch(handle) and len(handle) <= MAX_DOMAIN:
        return "bluesky", handle.lower()
    match = MASTODON_HANDLE.fullmatch(handle)
    if match and len(match["host"]) <= MAX_DOMAIN:
        return "mastodon", handle.lower()
    return None


def validate_handle(handle: str) -> str:
    """The handle in its normal form (no leading @, lower-case), or a UserError."""
    raw = str(handle).strip()
    found = identify(raw.removeprefix("@"))
    if found is None:
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise UserError(f"invalid handle {shown!r}: {HANDLE_RULES}")
    return found[1]


def platform(handle: str) -> str:
    """Where a handle lives: "x", "bluesky" (handles and DIDs) or "mastodon" (user@instance)."""
    return identify(validate_handle(handle))[0]


def parse_users(user: str) -> list[str]:
    """`alice-bob-carol` -> ["alice", "bob", "carol"] (validated, repeats dropped, order kept).
    Bluesky handles contain dots and dashes, so '+' joins a mix when it is there; without one, a
    whole Bluesky, DID or Mastodon handle is one user, and anything else splits on '-'. Two
    spellings of one person (`SmithJD-smithjd`) are refused."""
    if user is None or str(user).strip() in ("", "???"):
        raise UserError("no user given: pass user=<handle>, or user=a-b-c for a mix")
    text = str(user).strip()
    if "+" in text:
        parts = text.split("+")
    elif (found := identify(text.removeprefix("@"))) is not None and found[0] != "x":
        parts = [text]
    else:
        parts = text.split("-")
    spelled: dict[str, str] = {}
    for part in parts:
        handle, spelling = validate_handle(part), part.strip().removeprefix("@")
        if spelled.setdefault(handle, spelling) != spelling:
            raise UserError(f"user={text!r} names one person twice: {spelled[handle]!r} and "
                            f"{spelling!r} are the same account (handles ignore case); name "
                            "each person once")
    return list(spelled)
