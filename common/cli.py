"""Entry points of the project's commands: expected errors become one line and an exit code."""
from __future__ import annotations

import sys
from typing import Callable


def run_cli(main: Callable[[], int], errors: tuple[type[BaseException], ...] =
            (RuntimeError, ValueError, OSError), code: int = 1) -> None:
    """Exit with ``main()``'s status; an error of ``errors`` prints ``error: ...`` to
    stderr and exits with ``code`` (no traceback for bad input); Ctrl-C prints
    ``error: interrupted`` and exits with 130."""
    try:
        status = main()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status)
