"""The one exception users see: a clear, single-line message instead of a traceback."""

from __future__ import annotations

import sys
from contextlib import contextmanager


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
        print(f"error: {cause}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
