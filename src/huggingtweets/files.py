"""Generic file helpers: an atomic write (a temp file renamed into place), its one-line error."""

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from huggingtweets.errors import UserError


def write_error(path: Path, err: OSError) -> UserError:
    """A failed write as one line naming the file (a full disk above all)."""
    full = err.errno in (errno.ENOSPC, errno.EDQUOT)
    what = "the disk is full" if full else err.strerror or str(err)
    return UserError(f"cannot write {path}: {what} ({type(err).__name__}); free some space or "
                     "fix the permissions and run again (the cache as it was is kept)")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside `path`, renamed over it on success, deleted on failure; an OSError (a
    full disk) becomes a UserError naming `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as err:
        raise write_error(path, err) from None
    try:
        try:
            yield Path(tmp)
            os.replace(tmp, path)
        except OSError as err:
            raise write_error(path, err) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temps(path: Path) -> None:
    """Temp files of `path` and its .json left by a killed writer (call it under the lock)."""
    sidecar = path.with_suffix(".json")
    for tmp in [*path.parent.glob(f".{path.name}.*.tmp"), *path.parent.glob(f".{sidecar.name}.*.tmp")]:
        with suppress(OSError):
            tmp.unlink()
