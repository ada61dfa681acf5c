"""Generic file helpers: an atomic write (a temp file renamed into place), its one-line error, and
an exclusive lock file across threads and processes."""

import errno
import os
import stat
import tempfile
import threading
import time
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


# Locks this process holds: lock file -> [owning thread id, depth]. flock locks belong to an open
# file, so a second open of the same file in the same process would wait for itself forever; the
# owning thread re-enters instead (the API fetch holds the lock and then calls write_posts).
_held: dict[str, list[int]] = {}
_held_guard = threading.Lock()


@contextmanager
def exclusive(path: Path, timeout: float, holder: str) -> Iterator[bool]:
    """One holder of the lock file `path` at a time, across threads and processes, re-entrant in
    a thread; yields True when this call took the lock (False: re-entered). An flock dies with
    its process (no stale lock); after `timeout` s a UserError names `holder` and its pid.
    Hand-written rather than filelock (which train/gguf.py uses): filelock 4 waits and refuses a
    planted symlink alike, but keeps no holder's pid for the message, and this lock writes that
    pid, so it must also refuse a hard link to another file (tests/ingest/test_merge.py)."""
    key, me = os.path.abspath(path), threading.get_ident()
    with _held_guard:
        owner = _held.get(key)
        reentered = owner is not None and owner[0] == me
        if reentered:
            owner[1] += 1
    if reentered:
        try:
            yield False
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield True
        return
    with _open_lock(path) as lock_file:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock_file.seek(0)
                    pid = lock_file.read().strip()[:20] or "unknown"
                    raise UserError(f"{holder} (pid {pid}) has held {path} for over "
                                    f"{timeout:g}s; wait for it to finish and run this again "
                                    "(or raise lock_timeout=<seconds>)") from None
                time.sleep(0.05)
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(str(os.getpid()))  # for the message above, in whoever waits
        lock_file.flush()
        with _held_guard:
            _held[key] = [me, 1]
        try:
            yield True
        finally:
            with _held_guard:
                _held.pop(key, None)
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _open_lock(path: Path):
    """The lock file, opened for writing without following a link: a lock planted as a link to
    some other file (or a FIFO, a device, a hard link) must never be written or truncated."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"the lock file {path} is a symbolic link; it is not followed: "
                            "remove the link and run again") from None
        raise write_error(path, err) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise UserError(f"the lock file {path} is not a plain file of its own (a link, a pipe or "
                        "a device); remove it and run again")
    return os.fdopen(fd, "r+")
