"""The one exception users see, and the one door text from outside passes to reach a person.

`UserError` is a clear, single-line message instead of a traceback. `printable` makes any text
that came from a server, a file or a user (a 403 body, a CSV header, a ZIP member name, a display
name) safe to show: no escape sequences that clear a screen, no bidi overrides or zero-width
characters that make "Alice (@Bob)" out of other letters, no control characters.
"""

import re
import sys
from contextlib import contextmanager

# ANSI/VT escape sequences as terminals read them (CSI "ESC [ ... final", OSC "ESC ] ... BEL/ST",
# and two-byte "ESC x"), then every character that is invisible or reorders what follows it:
# C0 and C1 controls, DEL, zero-width characters (joiners too: a name must not hide letters in
# them; an emoji sequence then shows as its parts), bidi embeddings/overrides/isolates, the line
# and paragraph separators, and the byte-order mark.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?"
                      r"|\x9b[0-?]*[ -/]*[@-~]?")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e"
                        "\u2060-\u2069\ufeff\ufff9-\ufffb]")


def printable(text: object, keep_newlines: bool = False, limit: int | None = None) -> str:
    """`text` as a person may safely see it: escape sequences and invisible or reordering
    characters removed, tabs (and newlines, unless `keep_newlines`) turned into spaces, and cut
    to `limit` characters with "..." when given."""
    out = _ESCAPES.sub("", str(text))
    out = out.replace("\t", " ")
    if not keep_newlines:
        out = re.sub(r"\s*[\r\n]+\s*", " ", out)
    out = _INVISIBLE.sub("", out)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 3)] + "..."
    return out


class UserError(Exception):
    """Bad input or a missing prerequisite the user can fix; the message says what to do."""


@contextmanager
def reported():
    """Turn a UserError into one line on stderr and exit status 2 (entry points wrap their Hydra
    task in this: SystemExit passes through Hydra's error reporting, which prints tracebacks)."""
    try:
        yield
    except Exception as err:
        # hydra.utils.instantiate wraps errors raised in constructors; find ours in the chain.
        cause = err
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        print(f"error: {printable(cause)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
