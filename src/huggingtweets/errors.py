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


def config_error(err: BaseException) -> str | None:
    """A config error Hydra or OmegaConf raised while composing, as one line that names the key
    or the option; None for any other error."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(err, HydraException | OmegaConfBaseException):
        return None
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(err, OverrideParseException):
        return f"{err.override}: {first} (quote it: 'key=\"text\"')"
    if unknown := re.match(r"Could not override '([^']+)'", first):
        return (f"{unknown.group(1)}: no such setting (--cfg job shows them all; "
                f"+{unknown.group(1)}=... adds a new one)")
    if isinstance(err, MissingConfigException) and err.options:
        return f"{first} (options: {', '.join(sorted(err.options))})"
    key = getattr(cause, "full_key", None)
    msg = str(getattr(cause, "msg", None) or cause).strip().splitlines()[0]
    return f"{key}: {msg}" if key else f"{first}{'' if cause is err else ': ' + msg}"


def run_cli(task) -> None:
    """Run a @hydra.main `task` with a config error (a wrong type, an unknown value, key or
    option) as one line naming the key and exit status 2, where Hydra prints five lines and a hint
    about HYDRA_FULL_ERROR. A user who set HYDRA_FULL_ERROR=1 gets Hydra's full report as usual."""
    import os

    if os.environ.get("HYDRA_FULL_ERROR"):
        return task()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # then Hydra raises instead of printing, to here
    try:
        task()
    except Exception as err:
        line = config_error(err)
        if line is None:
            raise
        print(f"error: {printable(line)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:  # a caller in the same process (a test) keeps Hydra's own reports
        os.environ.pop("HYDRA_FULL_ERROR", None)
