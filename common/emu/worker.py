"""Workers (one core program each) and ``WorkerRuntimeBarrier``."""
from __future__ import annotations

from typing import Callable

from .buffer import Buffer
from .device import AIETileType, Tile
from .engine import current_party
from .errors import DesignError, StopRun
from .fifo import ObjectFifo, ObjectFifoHandle
from .util import flatten_fn_args


class WorkerRuntimeBarrier:
    """A lock per worker, set from the runtime sequence and awaited in core code."""

    def __init__(self, initial_value: int = 0):
        self.initial_value = int(initial_value)
        self.workers: list = []
        self._vals: dict = {}
        self._waiters: list = []
        self._eng = None

    def _reset(self, eng) -> None:
        self._eng = eng
        self._vals = {w: self.initial_value for w in self.workers}
        self._waiters = []

    def _me(self):
        p = current_party()
        if p is None or p.kind != "worker" or p.worker not in self._vals:
            raise DesignError("WorkerRuntimeBarrier used by a worker that did not get it in fn_args")
        return p

    def wait_for_value(self, value: int) -> None:
        p = self._me()
        eng, w, v = p.eng, p.worker, int(value)
        if eng.stopping:
            raise StopRun()
        if self._vals[w] != v:
            eng.block(p, self._waiters, lambda: self._vals[w] == v,
                      f"barrier value {v} (now {self._vals[w]})")

    def release_with_value(self, value: int) -> None:
        p = self._me()
        self._vals[p.worker] += int(value)
        p.eng.wake(self._waiters)

    def set(self, value: int) -> None:
        p = current_party()
        if p is None or p.kind != "host":
            raise DesignError("WorkerRuntimeBarrier.set is only valid in the runtime sequence")
        for w in self._vals:
            self._vals[w] = int(value)
        p.eng.wake(self._waiters)


class Worker:
    """A core program: ``core_fn(*fn_args)`` run in an endless loop (or once)."""

    _count = 0

    def __init__(self, core_fn: Callable | None, fn_args: list | None = None,
                 tile: Tile | None = None, while_true: bool = True,
                 stack_size: int | None = None, data_size: int | None = None,
                 trace=None, trace_events=None, dynamic_objfifo_lowering=None,
                 allocation_scheme=None, placement: Tile | None = None, **kwargs):
        self.core_fn = core_fn
        self.fn_args = list(fn_args or [])
        t = tile if tile is not None else placement
        if t is not None and t.tile_type not in (None, AIETileType.CoreTile):
            raise DesignError(f"Worker tile {t} is not a compute tile")
        self.tile = t
        self.while_true = while_true
        if stack_size is not None and int(stack_size) <= 0:
            raise DesignError("Worker stack_size must be a positive number of bytes")
        if data_size is not None and int(data_size) < 0:
            raise DesignError("Worker data_size must be >= 0")
        self.stack_size = stack_size
        self.data_size = data_size or 0
        Worker._count += 1
        self.index = Worker._count
        self.name = getattr(core_fn, "__name__", "core") if core_fn is not None else "idle"
        self.fifos: list[ObjectFifoHandle] = []
        self.buffers: list[Buffer] = []
        self.barriers: list[WorkerRuntimeBarrier] = []
        self.kernels: list = []
        for a in flatten_fn_args(self.fn_args):
            if isinstance(a, ObjectFifoHandle):
                a.bind(self)
                self.fifos.append(a)
            elif isinstance(a, ObjectFifo):
                raise DesignError(f"Worker '{self.name}' got ObjectFifo '{a.name}' itself; pass "
                                  f"a handle (.prod() or .cons())")
            elif isinstance(a, Buffer):
                if a.owner is not None and a.tile is None and a.owner is not self:
                    raise DesignError(f"Buffer '{a.name}' without a tile is used by two workers")
                if a.owner is None:
                    a.owner = self
                self.buffers.append(a)
            elif isinstance(a, WorkerRuntimeBarrier):
                a.workers.append(self)
                self.barriers.append(a)
            elif hasattr(a, "symbol") and callable(a):
                self.kernels.append(a)

    @property
    def flat_fn_args(self) -> list:
        return flatten_fn_args(self.fn_args)

    @staticmethod
    def grid(rows: int, cols: int, factory: Callable) -> list[list["Worker"]]:
        return [[factory(r, c) for c in range(cols)] for r in range(rows)]

    def __repr__(self) -> str:
        return f"Worker({self.name!r})"
