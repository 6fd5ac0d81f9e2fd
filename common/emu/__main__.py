"""``python -m common.emu DESIGN.py [design args]``: run a design on random inputs and
print its summary."""
from __future__ import annotations

import sys

from .design import load_design
from .errors import EmulationError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    try:
        d = load_design(argv[0], argv[1:])
        outs = d.run(*d.random_inputs())
    except EmulationError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(d.summary())
    print(f"outputs: " + ", ".join(f"{o.shape} {o.dtype}" for o in outs))
    print(f"emulated run: {d.last_stats.wall_s * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
