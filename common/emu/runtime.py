"""The runtime sequence (host side): ``Runtime`` in both API forms, ``RuntimeData``,
``TaskGroup`` and the per-run host controller that performs fills and drains."""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Sequence

import numpy as np

from .engine import Engine, current_party
from .endpoints import XferTask
from .errors import DesignError, IronRuntimeError
from .fifo import ObjectFifoHandle
from .taplib import TensorAccessPattern
from .util import (is_array_type, is_scalar_type, np_ndarray_type_get_dtype,
                   np_ndarray_type_get_shape)


class RuntimeData:
    """A host tensor argument of the runtime sequence (target of fill/drain)."""

    def __init__(self, arr_type):
        self.arr_type = arr_type
        self.shape = np_ndarray_type_get_shape(arr_type)
        self.dtype = np_ndarray_type_get_dtype(arr_type)
        self.is_scalar = False
        self._arr: np.ndarray | None = None
        self.drained = False

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def default_tap(self) -> TensorAccessPattern:
        return TensorAccessPattern.full(self.shape)

    def __getitem__(self, key) -> TensorAccessPattern:
        return TensorAccessPattern.full(self.shape)[key]

    def __repr__(self) -> str:
        return f"RuntimeData({self.shape}, {self.dtype})"


class TaskGroup:
    """A group of transfers whose awaits and frees are emitted by ``finish()``."""

    def __init__(self, id: int | None = None):
        self.group_id = id
        self._tasks: list[XferTask] = []
        self._finished = False
        p = current_party()
        if p is not None and p.kind == "host" and getattr(p.eng, "ctl", None) is not None:
            p.eng.ctl.open_groups.append(self)

    def _reset(self) -> None:
        self._tasks = []
        self._finished = False

    def finish(self) -> None:
        p = current_party()
        if p is None or p.kind != "host":
            raise IronRuntimeError("TaskGroup.finish() is only valid inside the runtime sequence")
        p.eng.ctl.finish_group(self)


def sync_parameters() -> None:
    """Emulator: host parameter writes are visible immediately (no-op)."""


class Runtime:
    """The host command sequence.

    Newest form: ``Runtime(seq_fn, fn_args)``; ``seq_fn(*body_args)`` runs at every emulated
    run. v1.x form: ``rt = Runtime()`` + ``with rt.sequence(T...) as (...)`` recording
    ``rt.start/fill/drain/inline_ops/set_barrier/task_group/finish_task_group``.
    """

    def __init__(self, seq_fn: Callable | None = None, fn_args: Sequence | None = None,
                 *args, name: str | None = None, strict_task_groups: bool = True,
                 implicit_configure: bool = True, **kwargs):
        self.name = name
        self.seq_fn = seq_fn
        self.strict_task_groups = strict_task_groups
        entries = list(fn_args or [])
        for extra in args:
            entries += list(extra)
        if "fn_args" in kwargs:
            entries += list(kwargs.pop("fn_args") or [])
        self.v1 = seq_fn is None
        self._ops: list[tuple] = []
        self._workers: list = []
        self._recording = False
        self.fifos: list[ObjectFifoHandle] = []
        self.entries: list = []     # (kind, value): kind in tensor/scalar/const/pass
        self._setup_entries(entries)

    def _setup_entries(self, entries) -> None:
        self.entries = []
        for e in entries:
            if is_array_type(e):
                self.entries.append(("tensor", RuntimeData(e)))
            elif is_scalar_type(e):
                self.entries.append(("scalar", e))
            elif isinstance(e, (bool, int, np.integer)):
                self.entries.append(("const", e))
            else:
                self.entries.append(("pass", e))
                self._bind_handles(e)

    def _bind_handles(self, e) -> None:
        if isinstance(e, ObjectFifoHandle):
            e.bind(self)
            if e not in self.fifos:
                self.fifos.append(e)
        elif isinstance(e, (list, tuple)):
            for x in e:
                self._bind_handles(x)

    @property
    def tensor_args(self) -> list[RuntimeData]:
        return [v for k, v in self.entries if k == "tensor"]

    @property
    def host_slots(self) -> list:
        return [(k, v) for k, v in self.entries if k in ("tensor", "scalar")]

    # ---- v1.x recording API ------------------------------------------------------
    @contextlib.contextmanager
    def sequence(self, *types):
        if len(types) == 2 and callable(types[0]) and isinstance(types[1], (list, tuple)):
            # intermediate shape rt.sequence(seq_fn, [types])
            self.seq_fn, self.v1 = types[0], False
            self._setup_entries(types[1])
            yield None
            return
        self.v1 = True
        self._setup_entries(types)
        self._recording = True
        try:
            yield tuple(v for _, v in self.entries) if len(self.entries) != 1 else \
                (self.entries[0][1],)
        finally:
            self._recording = False

    def _rec(self, *op) -> None:
        if not self._recording:
            raise IronRuntimeError(f"rt.{op[0]}(...) must be called inside 'with rt.sequence(...)'")
        self._ops.append(op)

    def start(self, *workers) -> None:
        for w in workers:
            if isinstance(w, (list, tuple)):
                self._workers.extend(w)
            else:
                self._workers.append(w)

    def fill(self, in_fifo, source, tap=None, task_group=None, wait=False, placement=None,
             tile=None, **kwargs) -> None:
        if not in_fifo.is_prod:
            raise DesignError(f"rt.fill on a consumer handle of fifo '{in_fifo.fifo.name}'")
        self._host_end(in_fifo, tile if tile is not None else placement)
        self._rec("fill", in_fifo, source, tap, task_group, wait)

    def drain(self, out_fifo, dest, tap=None, task_group=None, wait=False, placement=None,
              tile=None, **kwargs) -> None:
        if out_fifo.is_prod:
            raise DesignError(f"rt.drain on the producer handle of fifo '{out_fifo.fifo.name}'")
        self._host_end(out_fifo, tile if tile is not None else placement)
        self._rec("drain", out_fifo, dest, tap, task_group, wait)

    def _host_end(self, handle, placement) -> None:
        """Bind a fifo handle to the runtime sequence (the host's shim end); ``placement``
        is the shim tile given as v1.x ``placement=`` or ``tile=``."""
        handle.bind(self)
        if placement is not None and handle.tile is None:
            handle.tile = placement
        if handle not in self.fifos:
            self.fifos.append(handle)

    def inline_ops(self, fn: Callable, args: list) -> None:
        self._rec("inline", fn, list(args))

    def set_barrier(self, barrier, value: int) -> None:
        self._rec("barrier", barrier, value)

    def task_group(self) -> TaskGroup:
        tg = TaskGroup()
        self._rec("tg_start", tg)
        return tg

    def finish_task_group(self, tg: TaskGroup) -> None:
        self._rec("tg_finish", tg)

    def enable_trace(self, *args, **kwargs) -> None:
        """Hardware trace: ignored by the emulator."""

    def sync_parameters(self) -> None:
        """No-op in the emulator."""

    def add_flow(self, *a, **k) -> None:
        raise DesignError("low-level flows (Flow/PacketFlow/TileDma) are not emulated")

    add_lock = add_tile_dma = add_flow

    # ---- executing the body ------------------------------------------------------
    _cells: list | None = None

    def _restore_closure(self) -> None:
        """Upstream runs the body once (to emit the command sequence); the emulator runs it
        at every run, so plain values the body keeps in its closure (a ``nonlocal``
        counter) are put back to what they were before the first run."""
        cells = getattr(self.seq_fn, "__closure__", None) or ()
        if self._cells is None:
            self._cells = []
            for c in cells:
                try:
                    v = c.cell_contents
                except ValueError:          # an empty cell
                    continue
                if isinstance(v, (bool, int, float, str, bytes, type(None))):
                    self._cells.append((c, v))
        else:
            for c, v in self._cells:
                c.cell_contents = v

    def body_args(self, scalars: list) -> list:
        out, si = [], 0
        for k, v in self.entries:
            if k == "tensor":
                out.append(v)
            elif k == "scalar":
                out.append(scalars[si])
                si += 1
            else:
                out.append(v)
        return out

    def run_body(self, ctl: "HostCtl", scalars: list) -> None:
        if not self.v1:
            self._restore_closure()
            self.seq_fn(*self.body_args(scalars))
            return
        for op in self._ops:
            kind = op[0]
            if kind == "fill":
                ctl.fill(op[1], op[2], op[3], op[5], op[4], True)
            elif kind == "drain":
                ctl.drain(op[1], op[2], op[3], op[5], op[4], True)
            elif kind == "inline":
                op[1](*op[2])
            elif kind == "barrier":
                op[1].set(op[2])
            elif kind == "tg_start":
                op[1]._reset()
                ctl.open_groups.append(op[1])
            elif kind == "tg_finish":
                ctl.finish_group(op[1])


class HostCtl:
    """Per-run host controller: performs fills/drains, task groups and the final wait."""

    def __init__(self, eng: Engine, rt: Runtime, streams: dict, sinks: dict):
        self.eng, self.rt, self.streams, self.sinks = eng, rt, streams, sinks
        self.default_tasks: list[XferTask] = []
        self.all_drains: list[XferTask] = []
        self.open_groups: list[TaskGroup] = []
        self.used_default = False
        self.used_groups = False

    def _walk(self, rd, tap, what: str, handle) -> tuple:
        if not isinstance(rd, RuntimeData) or rd._arr is None:
            raise DesignError(f"{what} on fifo '{handle.fifo.name}': source/dest is not a "
                              f"runtime sequence tensor argument")
        if tap is None:
            tap = rd.default_tap()
        elif isinstance(tap, (list, tuple)):
            raise DesignError(f"{what} on fifo '{handle.fifo.name}': tap must be a TensorAccessPattern")
        if tap.tensor_numel != rd.numel:
            raise DesignError(f"{what} on fifo '{handle.fifo.name}': access pattern over "
                              f"{tap.tensor_dims} does not match the tensor {rd.shape}")
        return tap, tap.walk()

    def _group(self, task: XferTask, group, managed: bool) -> None:
        if not managed:
            return
        if group is None:
            self.used_default = True
            self.default_tasks.append(task)
        else:
            self.used_groups = True
            if group._finished:
                raise IronRuntimeError("transfer added to a TaskGroup that is already finished")
            group._tasks.append(task)
        if (self.used_default and self.used_groups and not self.rt.v1
                and self.rt.strict_task_groups):
            raise IronRuntimeError("mixing the default task group and explicit TaskGroups in "
                                   "one sequence (use Runtime(..., strict_task_groups=False))")

    def fill(self, handle, source, tap, wait, group, managed=True) -> XferTask:
        if handle.endpoint is not self.rt:
            raise DesignError(f"fill on fifo '{handle.fifo.name}' whose producer handle is "
                              f"not given to the Runtime")
        tap, walk = self._walk(source, tap, "fill", handle)
        n = walk.size
        if n % handle.fifo.numel:
            raise DesignError(f"fill of {n} elements into fifo '{handle.fifo.name}' whose "
                              f"objects hold {handle.fifo.numel} elements (not a multiple)")
        flat = source._arr.reshape(-1)
        if self.eng.profile:
            t0 = time.perf_counter()
        start = tap.contiguous_start()
        if start is not None:
            data = flat[start:start + n].copy()
        elif tap.padding is None:
            data = flat[walk]
        else:
            data = np.zeros(n, flat.dtype)
            m = walk >= 0
            data[m] = flat[walk[m]]
        if self.eng.profile:
            self.eng.dma_s += time.perf_counter() - t0
        task = XferTask(self.eng, "fill", f"fill of fifo '{handle.fifo.name}'", wait, group)
        task.n = n
        if self.eng.host.tlog is not None:
            self.eng.host.tlog.append(("fill", handle.fifo, n // handle.fifo.numel, task))
        stream = self.streams[handle.fifo]
        self._group(task, group, managed)

        def start():
            task.started = True
            stream.push(data, task.finish)
            self.eng.pump()
        task.start_fn = start
        if managed:
            start()
        return _TaskView(self, task)

    def drain(self, handle, dest, tap, wait, group, managed=True) -> XferTask:
        if handle.endpoint is not self.rt:
            raise DesignError(f"drain on fifo '{handle.fifo.name}' whose consumer handle is "
                              f"not given to the Runtime")
        tap, walk = self._walk(dest, tap, "drain", handle)
        n = walk.size
        if tap.padding is not None:
            raise DesignError(f"drain on fifo '{handle.fifo.name}': a drain pattern cannot pad")
        if n % handle.fifo.cons_numel:
            raise DesignError(f"drain of {n} elements from fifo '{handle.fifo.name}' whose "
                              f"objects hold {handle.fifo.cons_numel} elements (not a multiple)")
        if not dest._arr.flags.writeable:
            i = [v for _, v in self.rt.host_slots].index(dest)
            raise DesignError(f"drain on fifo '{handle.fifo.name}': argument {i} (its "
                              f"destination) is a read-only array")
        dest.drained = True
        task = XferTask(self.eng, "drain", f"drain of fifo '{handle.fifo.name}'", wait, group)
        task.host_flat, task.walk, task.n = dest._arr.reshape(-1), walk, n
        start = tap.contiguous_start()
        if start is not None:
            task.dst = task.host_flat[start:start + n]
        if self.eng.host.tlog is not None:
            self.eng.host.tlog.append(("drain", handle.fifo, n // handle.fifo.cons_numel, task))
        sink = self.sinks[handle.fifo]
        self._group(task, group, managed)
        self.all_drains.append(task)

        def start():
            task.started = True
            sink.tasks.append(task)
            self.eng.schedule(sink)
            self.eng.pump()
        task.start_fn = start
        if managed:
            start()
        return _TaskView(self, task)

    def wait_tasks(self, tasks: list, what: str) -> None:
        eng = self.eng
        if eng.host.tlog is not None:
            eng.host.tlog.append(("wait", list(tasks)))
        pending = [t for t in tasks if not t.done]
        if pending:
            eng.block(eng.host, eng.task_waiters, lambda: all(t.done for t in pending),
                      f"{what}: " + ", ".join(t.label for t in pending if not t.done))

    def finish_group(self, tg: TaskGroup) -> None:
        if tg._finished:
            raise IronRuntimeError("TaskGroup finished twice")
        tg._finished = True
        if tg in self.open_groups:
            self.open_groups.remove(tg)
        self.wait_tasks([t for t in tg._tasks if t.wait], "TaskGroup.finish awaiting")

    def finish_body(self) -> None:
        if self.open_groups and not self.rt.v1:
            raise IronRuntimeError(f"{len(self.open_groups)} TaskGroup(s) still open when the "
                                   f"runtime sequence returned (call tg.finish())")
        awaited = [t for t in self.default_tasks if t.wait]
        for g in self.open_groups:
            awaited += [t for t in g._tasks if t.wait]
        eng = self.eng
        eng.host_final = True
        eng.final_ok = lambda: all(t.done for t in awaited)
        everything = awaited + [t for t in self.all_drains if t.started and t not in awaited]
        self.wait_tasks(everything, "end of sequence awaiting")


class _TaskView:
    """The ``Task`` returned by fill/drain: start / await_ / free."""

    def __init__(self, ctl: HostCtl, task: XferTask):
        self._ctl, self._task = ctl, task
        self._freed = False

    def start(self, repeat_count=None) -> "_TaskView":
        self._task.start_fn()
        return self

    def await_(self) -> None:
        self._ctl.wait_tasks([self._task], "Task.await_")

    def free(self) -> None:
        if self._freed:
            raise RuntimeError("Task freed twice")
        self._freed = True

    @property
    def done(self) -> bool:
        return self._task.done
