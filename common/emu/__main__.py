"""``python -m common.emu [--timeout SECONDS] DESIGN.py [design args] [--trace OUT.json]
[--gantt OUT.png] [--kernel-efficiency SYMBOL=FRACTION[,...]]``: run a design on random
inputs and print its summary.

--timeout SECONDS   time limit of the run (default 600; 0: none). Past it, or on any
                    emulation error: the error on stderr, exit status 1. Ctrl-C:
                    "error: interrupted", exit status 130.
--trace / --gantt   write the run's modelled timeline as a Chrome/Perfetto trace (open in
                    ui.perfetto.dev or chrome://tracing) / as a PNG chart; the cost model is
                    in common/emu/timeline.py (kernel efficiency default 0.5 of the
                    device's MACs per cycle).
"""
from __future__ import annotations

import argparse
import sys

from .design import load_design
from .errors import EmulationError
from .runner import DEFAULT_TIMEOUT_S
from .timeline import parse_efficiencies

OWN = ("--trace", "--gantt", "--kernel-efficiency")


def split_args(argv: list[str]) -> tuple[list[str], dict]:
    """Separate the emulator's own options (anywhere after DESIGN.py) from the design's."""
    rest, own = [], {"--trace": None, "--gantt": None, "--kernel-efficiency": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in OWN:
            if not eq:
                if i + 1 >= len(argv):
                    raise EmulationError(f"{key} needs a value")
                val = argv[i + 1]
                i += 1
            if key == "--kernel-efficiency":
                own[key].append(val)
            else:
                own[key] = val
        else:
            rest.append(a)
        i += 1
    return rest, own



def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m common.emu", description=__doc__.split("\n")[0])
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"time limit of the run (default {DEFAULT_TIMEOUT_S:g}; 0: none)")
    p.add_argument("design", help="the IRON design file")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the design")
    a = p.parse_args(argv)
    if not a.timeout >= 0:
        p.error(f"--timeout {a.timeout:g}: expected seconds >= 0")
    return a


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    a = _parse(argv)
    try:
        design_args, own = split_args(a.args)
        effs = parse_efficiencies(own["--kernel-efficiency"])
        d = load_design(a.design, design_args)
        traced = own["--trace"] or own["--gantt"]
        model = d.cost_model(effs) if traced or effs else None
        outs = d.run(*d.random_inputs(), timeout=a.timeout or None, timeline=model)
        if own["--trace"]:
            d.last_timeline.write_json(own["--trace"])
        if own["--gantt"]:
            d.last_timeline.write_gantt(own["--gantt"])
    except (EmulationError, OSError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(d.summary())
    print("outputs: " + ", ".join(f"{o.shape} {o.dtype}" for o in outs))
    print(f"emulated run: {d.last_stats.wall_s * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
