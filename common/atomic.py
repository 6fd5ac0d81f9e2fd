"""Atomic file writes: a file is either its old version, the whole new version, or absent.

``atomic_write_bytes`` writes to a hidden temp file beside the target (``.NAME.XXXX.tmp``),
fsyncs it, renames it over the target and fsyncs the folder. The new file gets the mode a
plain ``open(path, "w")`` of a new file would get (``0o666 & ~umask``). The temp file is
removed on every exit Python sees: an exception (disk full, permission denied), Ctrl-C
(KeyboardInterrupt), and SIGTERM / SIGHUP while their handler is the default one: during the
write the main thread catches them, removes the temp file, puts the old handler back and
delivers the signal again, so the process ends as it would have (killed by that signal).
Concurrent writers of one path each use their own temp file; the last rename wins whole.
"""
from __future__ import annotations

import errno
import os
import secrets
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Signals whose default action kills the process without running Python code.
_FATAL_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class _Terminated(BaseException):
    """Raised by the temporary handler when a fatal signal arrives during a write."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame) -> None:
    raise _Terminated(signum)


@contextmanager
def _fatal_signals_raise() -> Iterator[None]:
    """While inside, SIGTERM/SIGHUP with the default handler raise ``_Terminated`` (main
    thread only; elsewhere signals cannot be handled and this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for s in _FATAL_SIGNALS:
        if signal.getsignal(s) == signal.SIG_DFL:
            old[s] = signal.signal(s, _raise_terminated)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _oserror(e: OSError, path: Path) -> OSError:
    """The same kind of OSError, naming ``path`` (the target, not the temp file)."""
    return OSError(e.errno, e.strerror or os.strerror(e.errno or 0), str(path))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file beside it, fsync, rename).

    Creates missing parent folders. Raises OSError naming ``path`` (directory, no
    permission, disk full, ...); no temp file is left behind in any case.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a file", str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:   # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way)",
                                 str(path)) from None
    except OSError as e:
        raise _oserror(e, path) from None
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        with _fatal_signals_raise():
            created = True  # set first: a signal may land just after os.open returns
            try:
                try:
                    # O_EXCL: a fresh file (random name); 0o666: the kernel applies the umask.
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                 | getattr(os, "O_CLOEXEC", 0), 0o666)
                except OSError:
                    created = False
                    raise
                try:
                    view = memoryview(data).cast("B")
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
                created = False
            finally:
                if created:
                    tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    except OSError as e:
        raise _oserror(e, path) from None
    except _Terminated as t:
        # Temp file gone and old handler back: deliver the signal as if we were not here.
        signal.raise_signal(t.signum)
        raise SystemExit(128 + t.signum) from None


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; folders that cannot be opened or synced are skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
