"""One emulated run: builds the per-run endpoint state, runs the workers and the host
sequence as greenlets under the engine's scheduler, and collects statistics."""
from __future__ import annotations

import ctypes
import gc
import math
import numbers
import os
import queue
import threading
import time
from functools import partial

import greenlet
from dataclasses import dataclass, field

import numpy as np

from .checks import Plan, worker_label
from .endpoints import JoinRT, ObjReader, ProdEnd, SinkReader, SplitRT
from .engine import Engine, Party, PartyGreenlet, Stream, StreamWalk
from .errors import EmulationError, KernelError, RunTimeoutError, StopRun, TimeLimit
from .fifo import Link
from .runtime import HostCtl, Runtime
from .worker import Worker

DEFAULT_TIMEOUT_S = 600.0
"""Time limit of one emulated run unless the caller gives another (``timeout=None``: none)."""


@dataclass
class WorkerStats:
    name: str
    tile: tuple
    kernel_calls: dict = field(default_factory=dict)
    macs: int = 0


@dataclass
class RunStats:
    """Per-run statistics: kernel calls and MACs per worker, wall time (seconds)."""
    workers: list = field(default_factory=list)
    wall_s: float = 0.0
    loop_s: float = 0.0                # of wall_s, running the parties (rest: set-up, teardown)
    kernel_s: float | None = None      # profiled runs: of loop_s, inside kernel calls
    dma_s: float | None = None         # profiled runs: of loop_s, host DMA pattern copies
    trace_log: dict | None = None      # traced runs: {party name: [ops]}
    handle_rt: dict | None = None      # traced runs: id(fifo handle) -> run-time endpoint


def _worker_main(eng: Engine, p: Party, w: Worker) -> None:
    try:
        if w.while_true:
            fn, args = w.core_fn, w.fn_args
            while not eng.stopping:
                p.lb_index = 0
                fn(*args)
        else:
            w.core_fn(*w.fn_args)
    except StopRun:
        pass
    except (KeyboardInterrupt, TimeLimit) as e:
        eng.interrupt(e, p)
    except EmulationError as e:
        msg = str(e)
        eng.fail(e if p.name in msg else type(e)(f"{p.name}: {msg}"))
    except BaseException as e:  # noqa: BLE001 - any failure of core code stops the run
        err = KernelError(f"{p.name} raised {type(e).__name__}: {e}")
        err.__cause__ = e
        eng.fail(err)
    finally:
        eng.party_exit(p)


def _host_main(eng: Engine, rt: Runtime, scalars: list) -> None:
    try:
        rt.run_body(eng.ctl, scalars)
        eng.ctl.finish_body()
    except StopRun:
        pass
    except (KeyboardInterrupt, TimeLimit) as e:
        eng.interrupt(e, eng.host)
    except BaseException as e:  # noqa: BLE001 - reported as the run's error
        eng.fail(e)
    finally:
        eng.stop()


def _build(eng: Engine, plan: Plan, parties: dict) -> tuple[dict, dict]:
    streams = {f: Stream(eng, f.name) for f in plan.fifos}
    sinks: dict = {}
    for f in plan.fifos:
        s = streams[f]
        for h in f._cons:
            ep = h.endpoint
            h._rt = None
            if ep is None:
                continue
            if isinstance(ep, (Worker, Link)):
                who = (f"worker '{ep.name}'" if isinstance(ep, Worker) else f"{ep.kind} link")
                r = ObjReader(eng, s, h.depth, h.shape, h.dtype, h.cons_from_stream,
                              f"consumer end of fifo '{f.name}' in {who}", h)
                r.owner = parties.get(ep)
                h._rt = r
                eng.reporters.append(r.occupancy)
            else:
                if f not in sinks:
                    sinks[f] = SinkReader(eng, s, f"host drain end of fifo '{f.name}'")
                    eng.reporters.append(sinks[f].occupancy)
                h._rt = sinks[f]
        p = f._prod
        if p is not None:
            p._rt = None
            if isinstance(p.endpoint, Worker):
                pe = ProdEnd(eng, s, p.depth, p.shape, p.dtype, f.to_stream, f.pad_value,
                             f.repeat_count, f"producer end of fifo '{f.name}' in worker "
                                             f"'{p.endpoint.name}'", p)
                pe.owner = parties.get(p.endpoint)
                p._rt = pe
                eng.reporters.append(pe.occupancy)
    for ln in plan.links:
        if ln.kind in ("split", "forward"):
            rin = ln.srcs[0]._rt
            outs = []
            for i, hd in enumerate(ln.dsts):
                of = hd.fifo
                off = ln.offsets[i]
                if ln.kind == "forward":
                    size = None
                elif ln.sized:
                    size = of.numel
                else:
                    nxt = ln.offsets[i + 1] if i + 1 < len(ln.offsets) else rin.numel
                    size = nxt - off
                sw = StreamWalk(of.to_stream, of.pad_value) if of.to_stream is not None else None
                outs.append((streams[of], off, size, sw, max(1, int(of.repeat_count or 1))))
            SplitRT(eng, rin, outs)
        else:
            of = ln.dsts[0].fifo
            sw = StreamWalk(of.to_stream, of.pad_value) if of.to_stream is not None else None
            JoinRT(eng, [(h._rt, off) for h, off in zip(ln.srcs, ln.offsets)], streams[of],
                   ln.dsts[0].depth, of.shape, of.dtype, sw, of.repeat_count, ln)
    for f in plan.fifos:
        if f.init_values is not None:
            for v in f.init_values:
                streams[f].push(np.array(v, dtype=f.dtype).reshape(-1))
    return streams, sinks


def _set_async_exc(tid: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc)
                                               if exc is not None else None)


class _Deadline:
    """One armed run: the thread to interrupt, when, and whether it was."""

    __slots__ = ("tid", "at", "fired")

    def __init__(self, tid: int, at: float):
        self.tid, self.at, self.fired = tid, at, False


class _Watchdog:
    """Raises :class:`TimeLimit` in a thread whose armed run passed its deadline.

    The parties of a run are greenlets of the caller's thread, so a party looping in pure
    Python (which never yields) is stopped where it runs; code inside one C call sees
    the exception when the call returns. One daemon thread (started on first use, named
    ``WATCHDOG_THREAD``) serves every run of the process: arming and disarming cost a
    lock, not a thread per run.

    The caller's side holds only a plain lock in a ``with`` statement (acquired and
    released in C): an asynchronous exception (this TimeLimit, a Ctrl-C) arriving inside
    it releases the lock. A ``threading.Condition`` or ``Event`` runs Python code while
    holding its lock, where such an exception would leave it held for good.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue = queue.SimpleQueue()   # put() is one C call
        self._armed: dict[int, _Deadline] = {}
        self._thread: threading.Thread | None = None
        self._wake_at = math.inf          # when the thread wakes up next

    def arm(self, seconds: float) -> _Deadline:
        d = _Deadline(threading.get_ident(), time.monotonic() + seconds)
        with self._lock:
            self._armed[id(d)] = d
            wake = d.at < self._wake_at
            start = self._thread is None
            if start:
                self._thread = threading.Thread(target=self._loop, name=WATCHDOG_THREAD,
                                                daemon=True)
        if start:
            try:
                self._thread.start()
            except BaseException:       # (a Ctrl-C in start()) start again next time
                with self._lock:
                    self._thread = None
                raise
        elif wake:
            self._wake.put(None)
        return d

    def disarm(self, d: _Deadline) -> None:
        """No TimeLimit is raised for ``d`` after this returns (one that fired but was
        not delivered yet is withdrawn); idempotent."""
        with self._lock:
            self._armed.pop(id(d), None)
            if d.fired:
                _set_async_exc(d.tid, None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                for d in self._armed.values():
                    if d.at <= now and not d.fired:
                        d.fired = True
                        _set_async_exc(d.tid, TimeLimit)
                self._wake_at = min((d.at for d in self._armed.values() if not d.fired),
                                    default=math.inf)
                wait = None if self._wake_at == math.inf else self._wake_at - now
            try:
                self._wake.get(timeout=wait)
            except queue.Empty:
                pass


WATCHDOG_THREAD = "common.emu run time limit"
_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    # a forked child has no watchdog thread, and the lock may have been held: start over
    os.register_at_fork(after_in_child=_WATCHDOG.__init__)


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` as float seconds (None: no limit); EmulationError unless positive."""
    if timeout is None:
        return None
    if isinstance(timeout, numbers.Real) and not isinstance(timeout, bool) \
            and math.isfinite(timeout) and timeout > 0:
        return float(timeout)
    raise EmulationError(f"timeout={timeout!r}: expected a positive number of seconds, "
                         f"or None for no limit")


def _timeout_message(name: str, seconds: float, who: str) -> str:
    return (f"{name or 'design'}: run stopped at its time limit of {seconds:g} s while "
            f"{who} was running (pass a larger timeout, or look for a loop that never "
            f"waits on a fifo)")


def execute(plan: Plan, rt: Runtime, arrays: list, scalars: list,
            timeout: float | None = DEFAULT_TIMEOUT_S, name: str = "", trace: bool = False,
            profile: bool = False) -> RunStats:
    """Run the design once on host ``arrays`` (bound to the sequence's tensor arguments).

    ``timeout``: seconds the run may take (None: no limit); past it the run is stopped
    and :class:`RunTimeoutError` names ``name`` (the design), the limit and the party
    that was running. A KeyboardInterrupt stops the run and is re-raised as is.
    ``profile=True`` also times the kernel calls and the host DMA copies (RunStats).

    Python's cyclic garbage collector is paused for the run: a run allocates many
    short-lived objects, and in a process with a large heap (torch and Brevitas models
    loaded) the collections it would trigger took half of the run time. What the run
    leaves in reference cycles is collected after it.
    """
    timeout = check_timeout(timeout)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    deadline = None
    try:
        try:
            if timeout is not None:
                deadline = _WATCHDOG.arm(timeout)
            return _execute(plan, rt, arrays, scalars, timeout, name, trace, profile)
        finally:
            if deadline is not None:
                _WATCHDOG.disarm(deadline)
    except TimeLimit:       # delivered outside the parties (setting up or finishing)
        raise RunTimeoutError(_timeout_message(name, timeout, "the emulator")) from None
    finally:
        if deadline is not None:
            _WATCHDOG.disarm(deadline)   # again: the first may have been interrupted
        if gc_was_enabled:
            gc.enable()


def _execute(plan: Plan, rt: Runtime, arrays: list, scalars: list,
             timeout: float | None = None, name: str = "", trace: bool = False,
             profile: bool = False) -> RunStats:
    t0 = time.perf_counter()
    eng = Engine()
    eng.profile = profile
    loop_s = 0.0
    for rd, a in zip(rt.tensor_args, arrays):
        rd._arr = a
        rd.drained = False
    for w in plan.workers:
        for b in w.buffers:
            b.reset()
        for bar in w.barriers:
            bar._reset(eng)
    host = eng.add_party(Party(eng, "runtime sequence", "host"))
    eng.host = host
    parties = {}
    for w in plan.workers:
        if w.core_fn is not None:
            parties[w] = eng.add_party(Party(eng, worker_label(w, plan), "worker",
                                             plan.place[id(w)], w))
    glets = []
    handle_rt = None
    if trace:
        for p in [host, *parties.values()]:
            p.tlog = []
    try:
        streams, sinks = _build(eng, plan, parties)
        if trace:
            handle_rt = {id(h): h._rt for f in plan.fifos
                         for h in ([f._prod] if f._prod is not None else []) + f._cons
                         if h._rt is not None}
        eng.pump()
        eng.ctl = HostCtl(eng, rt, streams, sinks)
        eng.hub = greenlet.getcurrent()
        for p, fn in [(host, partial(_host_main, eng, rt, scalars))] + \
                [(p, partial(_worker_main, eng, p, w)) for w, p in parties.items()]:
            p.glet = PartyGreenlet(run=fn)
            p.glet.party = p
            glets.append(p.glet)
            eng.ready.append(p)
        t_loop = time.perf_counter()
        try:
            eng.schedule_loop()
        finally:
            loop_s = time.perf_counter() - t_loop
    except StopRun:
        pass
    except (KeyboardInterrupt, TimeLimit) as e:
        eng.interrupt(e, None)
    except BaseException as e:
        eng.fail(e)
    finally:
        eng.stop()
        for g in glets:              # normally all ended in schedule_loop
            if not g.dead:
                g.throw(greenlet.GreenletExit)
        for f in plan.fifos:
            for h in ([f._prod] if f._prod is not None else []) + f._cons:
                h._rt = None
        eng.ctl = None
    if eng.interrupted is not None:
        exc, p = eng.interrupted, eng.interrupted_in
        if isinstance(exc, TimeLimit):
            who = ("the emulator's scheduler" if p is None else
                   "the runtime sequence" if p.kind == "host" else p.name)
            raise RunTimeoutError(_timeout_message(name, timeout, who)) from None
        raise exc
    alive = [g.party.name for g in glets if not g.dead]
    if alive:
        raise EmulationError(f"party greenlet(s) did not stop: {alive}")
    if eng.error is not None and not eng.finished_ok:
        raise eng.error
    stats = RunStats(wall_s=time.perf_counter() - t0, loop_s=loop_s)
    if profile:
        stats.kernel_s, stats.dma_s = eng.kernel_s, eng.dma_s
    if trace:
        stats.trace_log = {p.name: p.tlog for p in [host, *parties.values()]}
        stats.handle_rt = handle_rt
    for w in plan.workers:
        p = parties.get(w)
        stats.workers.append(WorkerStats(worker_label(w, plan), plan.place[id(w)],
                                         dict(p.kcalls) if p else {}, p.kmacs if p else 0))
    return stats
