"""`make bench`: run every benchmark entry and write one results file.

An entry is a module with ``run() -> list[dict]`` whose rows hold ``name``, ``value``,
``unit`` and ``note``. The file is written atomically; rows are also printed.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import time
import traceback

from common.atomic import atomic_write_bytes
from common.network import REGISTRY, get_network

ENTRIES = ["common.kernels.bench", "common.emu.bench"]   # then one per registered network


def best_time(fn, repeats: int = 3, warmup: bool = True) -> float:
    """Smallest wall time in seconds of ``repeats`` calls of ``fn`` (after one warm-up)."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def format_rows(rows: list[dict]) -> str:
    """Fixed-width table of benchmark rows."""
    out = []
    for r in rows:
        v = r["value"]
        vs = f"{v:.4g}" if isinstance(v, float) else str(v)
        out.append(f"{r['name']:<58s} {vs:>12s} {r.get('unit', ''):<10s} {r.get('note', '')}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-results.txt")
    p.add_argument("--only", nargs="*", help="entries to run: module names or 'network "
                   "NAME' (default: all)")
    a = p.parse_args(argv)
    lines = [f"# benchmarks {time.strftime('%Y-%m-%d %H:%M:%S')} on {platform.node()} "
             f"({platform.processor() or platform.machine()})"]
    failed = False
    for mod in a.only or ENTRIES + [f"network {n}" for n in REGISTRY]:
        t0 = time.time()
        print(f"== {mod}", flush=True)
        try:
            if mod.startswith("network "):
                from common.netbench import run_network

                rows = run_network(get_network(mod.split()[1]))
            else:
                rows = importlib.import_module(mod).run()
        except Exception:  # noqa: BLE001 - report and go on with the other entries
            failed = True
            msg = traceback.format_exc()
            print(msg)
            lines += [f"== {mod}: FAILED", msg]
            continue
        text = format_rows(rows)
        print(text, flush=True)
        lines += [f"== {mod} ({time.time() - t0:.0f} s)", text]
    atomic_write_bytes(a.out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
