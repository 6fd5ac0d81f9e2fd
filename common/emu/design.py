"""Loading a design file under the emulator and running it many times."""
from __future__ import annotations

import contextlib
import io
import os
import runpy
import sys
from typing import Sequence

import numpy as np

from . import program as _program
from .errors import DesignError, EmulationError
from .hostapi import set_current_device
from .program import ResolvedProgram
from .runner import DEFAULT_TIMEOUT_S, RunStats
from .shim import emulated_aie
from .summary import Summary, make_summary
from .timeline import CostModel, Timeline, build as build_timeline, model_for


class Design:
    """A resolved design, runnable many times: ``outputs = design.run(*inputs)``."""

    def __init__(self, program: ResolvedProgram, path: str = "", argv: Sequence[str] = (),
                 printed: str = ""):
        self.program = program
        self.path, self.argv, self.printed = path, list(argv), printed
        self.last_stats: RunStats | None = None
        self.last_timeline: Timeline | None = None
        self.runs = 0

    @property
    def input_specs(self) -> list[tuple]:
        """``(kind, shape, dtype)`` per host argument of the runtime sequence, in order."""
        out = []
        for kind, v in self.program.host_slots:
            if kind == "tensor":
                out.append(("tensor", v.shape, v.dtype))
            else:
                out.append(("scalar", (), np.dtype(v)))
        return out

    def run(self, *arrays, timeout: float | None = DEFAULT_TIMEOUT_S,
            timeline: CostModel | None = None, profile: bool = False) -> list[np.ndarray]:
        """Run the runtime sequence once on ``arrays`` (one per sequence argument, used in
        place: numpy arrays of the declared dtype and size, never cast; None: zeros);
        returns the drained arrays in argument order. ``timeout``: seconds the run may
        take (default 600; None: no limit), past it RunTimeoutError. With a ``timeline``
        cost model the run is traced and ``self.last_timeline`` holds its modelled
        timeline (see :mod:`common.emu.timeline`). ``profile=True``: ``self.last_stats``
        also holds the seconds spent in kernel calls and host DMA copies."""
        with emulated_aie():
            outs, stats = self.program.run_with_stats(*arrays, timeout=timeout,
                                                      name=self.path or "design",
                                                      trace=timeline is not None,
                                                      profile=profile)
        self.last_stats = stats
        self.runs += 1
        if timeline is not None:
            self.last_timeline = build_timeline(self.program.plan, stats.trace_log,
                                                stats.handle_rt, timeline)
        return outs

    def cost_model(self, efficiency: dict | None = None) -> CostModel:
        """The default cost model for this design's device (MACs per cycle from it)."""
        return model_for(self.program.plan.device, efficiency)

    def random_inputs(self, seed: int = 0) -> list:
        rng = np.random.default_rng(seed)
        vals = []
        for kind, shape, dt in self.input_specs:
            if kind == "scalar":
                vals.append(dt.type(1))
            elif dt.kind in "iu":
                info = np.iinfo(dt)
                lo, hi = max(info.min, -128), min(info.max, 127)
                vals.append(rng.integers(lo, hi + 1, size=shape).astype(dt))
            else:
                vals.append(rng.standard_normal(shape).astype(dt))
        return vals

    def summary(self) -> Summary:
        return make_summary(self.program, self.last_stats, self.runs, self.last_timeline)


def load_design(path: str, argv: Sequence[str] = ()) -> Design:
    """Execute design file ``path`` as ``__main__`` with ``sys.argv = [path, *argv]`` under the
    emulator (printing captured) and return the last program it resolved."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DesignError(f"design file {path!r} not found")
    if os.path.isdir(path):
        raise DesignError(f"design file {path!r} is a directory, not a Python file")
    buf, err = io.StringIO(), io.StringIO()   # the design's output (stderr kept for errors)
    old_argv, old_path = sys.argv, list(sys.path)
    mark = len(_program.RESOLVED)
    set_current_device(None)        # each design starts as in a fresh process
    try:
        sys.argv = [path] + [str(a) for a in argv]
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        with emulated_aie(), contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as e:
                if e.code not in (0, None):
                    said = [ln for ln in (str(e.code) if isinstance(e.code, str) else
                                          err.getvalue() + buf.getvalue()).splitlines()
                            if ln.strip()]
                    how = "exited" if isinstance(e.code, str) else f"exited with {e.code}"
                    raise DesignError(f"design {path} {how}: "
                                      f"{said[-1] if said else ''}") from None
            except EmulationError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of the file: one line
                raise DesignError(_load_failure(path, e)) from e
    finally:
        sys.argv = old_argv
        sys.path[:] = old_path
    if err.getvalue():              # loaded: pass the design's own messages on
        sys.stderr.write(err.getvalue())
    found = _program.RESOLVED[mark:]
    del _program.RESOLVED[mark:]
    if not found:
        raise DesignError(f"design {path} did not call resolve_program() (is its "
                          f"__main__ block guarded by arguments it did not get?)")
    return Design(found[-1], path, argv, buf.getvalue())


def _load_failure(path: str, e: Exception) -> str:
    """One line: the design file, the line in it where ``e`` came from, and ``e``."""
    here, line = os.path.abspath(path), None
    tb = e.__traceback__
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == here:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(e, SyntaxError) and e.filename and os.path.abspath(e.filename) == here:
        line = e.lineno
    text = " ".join(str(e).split("\n")[:1]).strip()
    where = f"{path} line {line}" if line else path
    return f"design {where}: {type(e).__name__}" + (f": {text}" if text else "")


def run_design(path: str, argv: Sequence[str] = (), inputs: Sequence | None = None,
               timeout: float | None = DEFAULT_TIMEOUT_S) -> tuple[list[np.ndarray], Summary]:
    """Load ``path`` with ``argv``, run it once on ``inputs`` (random if None) within
    ``timeout`` seconds (None: no limit)."""
    d = load_design(path, argv)
    outs = d.run(*(inputs if inputs is not None else d.random_inputs()), timeout=timeout)
    return outs, d.summary()
