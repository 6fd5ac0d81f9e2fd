"""Entry points of the project's commands: bad options and expected errors become one line
on stderr and a non-zero exit status, never a traceback."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: error: argument --x: ...`` (no usage
    block; ``--help`` still shows it), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``low`` (argparse names the option in the error)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {v}")
        return v

    parse.__name__ = f"integer >= {low}"
    return parse


def output_file(text: str) -> str:
    """argparse type: a file path that can be written: not a directory, and its nearest
    existing ancestor is a writable directory (missing folders are created on write)."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name")
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {text}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot create {text}: {parent} is not writable")
    return text


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # glibc mallopt parameters (malloc.h)


def keep_large_blocks_on_heap(threshold: int = 1 << 30) -> bool:
    """glibc only: serve blocks up to ``threshold`` bytes from the heap and keep freed
    memory for reuse, instead of mapping fresh zeroed pages for every large tensor (a
    conv2x activation batch is tens of MB: with glibc's default 32 MB mmap ceiling each
    one cost ~16k page faults, about a third of the PTQ step's time went to the kernel).
    Values are unchanged; returns False where the C library has no ``mallopt``."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and \
        bool(mallopt(M_TRIM_THRESHOLD, 2 * threshold))


def run_cli(main: Callable[[], int], errors: tuple[type[BaseException], ...] =
            (RuntimeError, ValueError, OSError), code: int = 1) -> None:
    """Exit with ``main()``'s status; an error of ``errors`` prints ``error: ...`` (its
    first line) to stderr and exits with ``code`` (no traceback for bad input); Ctrl-C
    prints ``error: interrupted`` and exits with 130."""
    keep_large_blocks_on_heap()
    try:
        status = main()
    except errors as e:
        text = str(e).strip().splitlines()
        print(f"error: {text[0] if text else type(e).__name__}", file=sys.stderr)
        sys.exit(code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status)
