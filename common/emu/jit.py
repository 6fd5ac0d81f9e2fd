"""``iron.jit`` and the host tensor helpers (``iron.tensor``, ``iron.zeros`` ...).

A jit-decorated generator builds a design from its tensor arguments and returns the
resolved program; the emulator resolves it once per distinct argument signature (shapes,
dtypes, keyword values) and runs it on the caller's tensors, writing drained outputs back
into them in place, as the NPU would.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np

from . import program as _program
from .errors import DesignError
from .timeline import CLOCK_HZ


class Tensor(np.ndarray):
    """Host tensor of the jit API: a numpy array with ``numel()``/``numpy()``/``to()``."""

    device = "npu"

    def numel(self) -> int:
        return int(self.size)

    def numpy(self) -> np.ndarray:
        return self.view(np.ndarray)

    def to(self, device: str = "npu") -> "Tensor":
        return self

    def fill_(self, value) -> "Tensor":
        self.fill(value)
        return self


def _as_tensor(a) -> Tensor:
    return np.ascontiguousarray(a).view(Tensor)


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(int(s) for s in size[0])
    return tuple(int(s) for s in size)


def tensor(data, dtype=None, device: str = "npu", **kwargs) -> Tensor:
    return _as_tensor(np.array(data, dtype=dtype))


def zeros(*size, dtype=np.float32, device: str = "npu", **kwargs) -> Tensor:
    return _as_tensor(np.zeros(_shape(size), dtype=dtype))


def ones(*size, dtype=np.float32, device: str = "npu", **kwargs) -> Tensor:
    return _as_tensor(np.ones(_shape(size), dtype=dtype))


def full(size, fill_value, dtype=None, device: str = "npu", **kwargs) -> Tensor:
    return _as_tensor(np.full(_shape((size,)), fill_value, dtype=dtype))


def zeros_like(t, dtype=None, **kwargs) -> Tensor:
    return _as_tensor(np.zeros(np.shape(t), dtype=dtype or np.asarray(t).dtype))


def arange(start, stop=None, step=1, dtype=None, device: str = "npu", shape=None,
           **kwargs) -> Tensor:
    a = np.arange(start, stop, step, dtype=dtype) if stop is not None else \
        np.arange(start, dtype=dtype)
    return _as_tensor(a if shape is None else a.reshape(shape))


def rand(*size, dtype=np.float32, device: str = "npu", **kwargs) -> Tensor:
    return _as_tensor(np.random.random(_shape(size)).astype(dtype))


def randint(low, high, size, dtype=np.int64, device: str = "npu", **kwargs) -> Tensor:
    return _as_tensor(np.random.randint(low, high, size=_shape((size,))).astype(dtype))


def ceildiv(a: int, b: int) -> int:
    return -(-a // b)


def set_tensor_class(cls) -> None:
    """No-op: the emulator's tensors are always numpy arrays."""


def _key(args, kwargs) -> tuple:
    def one(a):
        if isinstance(a, np.ndarray):
            return ("t", a.shape, a.dtype.str)
        return ("v", repr(a))
    return tuple(one(a) for a in args) + tuple((k, one(v)) for k, v in sorted(kwargs.items()))


class RunResult:
    """What a jit call returns under ``aie.utils.benchmark.run_iters``: ``npu_time`` (ns)
    is the run's modelled time (common/emu/timeline.py), not a measurement."""

    def __init__(self, npu_time: int):
        self.npu_time = npu_time


class JitDesign:
    """What ``@iron.jit`` returns: call it with tensors to resolve (once) and run."""

    def __init__(self, fn: Callable, options: dict):
        self.fn, self.options = fn, options
        self._cache: dict = {}
        self._kernel_cache: dict = {}      # upstream's per-design kernel build cache (unused)
        functools.update_wrapper(self, fn)

    def resolve(self, *args, **kwargs):
        """Resolve the design for these arguments (cached) and return the program."""
        key = _key(args, kwargs)
        if key not in self._cache:
            mark = len(_program.RESOLVED)
            ret = self.fn(*self._placeholders(args, kwargs), **kwargs)
            if isinstance(ret, _program.ResolvedProgram):
                prog = ret
            elif len(_program.RESOLVED) > mark:
                prog = _program.RESOLVED[-1]
            else:
                raise DesignError(f"jit design '{self.fn.__name__}' did not resolve a program")
            self._cache[key] = prog
        return self._cache[key]

    specialize = resolve

    def _placeholders(self, args: tuple, kwargs: dict) -> tuple:
        """``specialize(**compile_time)`` passes no tensors: the generator's tensor
        parameters (``In``/``Out``) get None, as their values are not read at build time."""
        try:
            params = list(inspect.signature(self.fn).parameters.values())
        except (TypeError, ValueError):
            return args
        missing = [p for p in params[len(args):]
                   if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   and p.default is p.empty and p.name not in kwargs]
        return tuple(args) + (None,) * len(missing)

    def __call__(self, *args, **kwargs):
        prog = self.resolve(*args, **kwargs)
        tensors = [a for a in args if isinstance(a, np.ndarray)]
        slots = [v for k, v in prog.host_slots if k == "tensor"]
        if len(tensors) < len(slots):
            raise DesignError(f"jit design '{self.fn.__name__}': its runtime sequence takes "
                              f"{len(slots)} tensors, the call passed {len(tensors)}")
        bound = tensors[:len(slots)]
        from .hostapi import npu_time_wanted
        timed = npu_time_wanted()
        outs, stats = prog.run_with_stats(*bound, trace=timed)
        drained = [t for t, rd in zip(bound, prog.rt.tensor_args) if rd.drained]
        for t, o in zip(drained, outs):
            if not np.shares_memory(t, o):
                np.copyto(t, np.asarray(o).reshape(t.shape), casting="unsafe")
        if not timed:
            return None
        from .timeline import build, model_for
        tl = build(prog.plan, stats.trace_log, stats.handle_rt, model_for(prog.plan.device))
        return RunResult(int(round(tl.end * 1e9 / CLOCK_HZ)))


def jit(fn: Callable | None = None, **options):
    """``@iron.jit`` / ``@iron.jit(is_placed=False, aiecc_flags=...)``."""
    if fn is None:
        return lambda f: JitDesign(f, options)
    if options:
        return functools.partial(JitDesign(fn, {}).__call__, **options)
    return JitDesign(fn, options)
