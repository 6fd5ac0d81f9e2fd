"""Run-time state of fifo endpoints: worker producers/consumers, memtile links, host DMA."""
from __future__ import annotations

from collections import deque
from functools import partial

import numpy as np

from .engine import Engine, Party, Stream, StreamWalk, alloc_pool
from .errors import DesignError, StopRun


def _acquire(end, n: int, avail, take, what: str):
    """Absolute acquire on a worker endpoint: block until ``n - held`` more objects are in
    ``avail`` (ready objects of a consumer, free buffers of a producer), take them with
    ``take()``, return the oldest held object (n == 1) or the ``n`` oldest."""
    eng = end.eng
    if eng.stopping:
        raise StopRun()
    held = end.held
    need = n - len(held)
    if need > 0:
        if len(avail) < need:
            eng.block(end.owner, end.waiters, lambda: len(avail) >= need,
                      f"acquire({n}) on {end.label} (holds {len(held)}, "
                      f"{len(avail)} {what})")
        for _ in range(need):
            held.append(take())
    log = end.owner.tlog
    if log is not None:
        log.append(("acq", end, n))
    return held[0] if n == 1 else held[:n]


class ObjReader:
    """A consumer endpoint that assembles objects from a stream (worker or link input)."""

    def __init__(self, eng: Engine, stream: Stream, depth: int, shape, dtype, from_tap,
                 label: str):
        self.eng, self.stream, self.depth, self.label = eng, stream, depth, label
        self.pos = 0
        self.queued = False
        self.pool = alloc_pool(depth, shape, dtype)
        self.numel = int(np.prod(shape, dtype=np.int64))
        self.walk = None if from_tap is None else from_tap.walk()
        if self.walk is not None and from_tap.padding is not None:
            raise DesignError(f"{label}: a consumer access pattern (from_stream) cannot pad")
        self.chunk = self.numel if self.walk is None else self.walk.size
        self.scratch = None if self.walk is None else np.zeros(self.chunk, dtype)
        self.partial = None
        self.pflat = None
        self.pfill = 0
        self.full: deque = deque()
        self.held: list = []
        self.waiters: list = []
        self.link = None
        self.owner: Party | None = None
        stream.readers.append(self)

    def work(self) -> None:
        s = self.stream
        moved = got = False
        while s.end > self.pos:
            if self.partial is None:
                if not self.pool:
                    break
                self.partial = self.pool.pop()
                self.pfill = 0
                self.pflat = self.scratch if self.walk is not None else self.partial.reshape(-1)
            k = min(s.end - self.pos, self.chunk - self.pfill)
            s.read_into(self.pos, self.pflat[self.pfill:self.pfill + k])
            self.pos += k
            self.pfill += k
            moved = True
            if self.pfill == self.chunk:
                if self.walk is not None:
                    self.partial.reshape(-1)[self.walk] = self.scratch
                self.full.append(self.partial)
                self.partial = None
                got = True
        if moved:
            s.trim()
        if got:
            if self.link is not None:
                self.eng.schedule(self.link)
            elif self.waiters:
                self.eng.wake(self.waiters)

    # ---- worker side ----------------------------------------------------------------
    def acquire(self, n: int):
        return _acquire(self, n, self.full, self.full.popleft, "ready")

    def release(self, k: int) -> None:
        eng = self.eng
        if k > len(self.held):
            raise DesignError(f"release({k}) on {self.label} but only {len(self.held)} "
                              f"object(s) held")
        for _ in range(k):
            self.pool.append(self.held.pop(0))
        log = self.owner.tlog
        if log is not None:
            log.append(("rel", self, k))
        if self.stream.end > self.pos:      # more data waits for the freed buffer
            eng.schedule(self)
            eng.pump()

    def occupancy(self) -> str:
        return (f"{self.label}: held {len(self.held)}, ready {len(self.full)}, "
                f"free {len(self.pool)}/{self.depth}, stream pending "
                f"{self.stream.end - self.pos} elems")


class ProdEnd:
    """A worker's producer endpoint: a pool of ``depth`` buffers pushed onto the stream."""

    def __init__(self, eng: Engine, stream: Stream, depth: int, shape, dtype, to_tap,
                 pad_value, repeat: int, label: str):
        self.eng, self.stream, self.depth, self.label = eng, stream, depth, label
        self.pool = alloc_pool(depth, shape, dtype)
        self.held: list = []
        self.waiters: list = []
        self.sw = None if to_tap is None else StreamWalk(to_tap, pad_value)
        self.repeat = max(1, int(repeat or 1))
        self.owner: Party | None = None

    def acquire(self, n: int):
        return _acquire(self, n, self.pool, self.pool.pop, "free")

    def _back(self, obj) -> None:
        self.pool.append(obj)
        if self.waiters:
            self.eng.wake(self.waiters)

    def release(self, k: int) -> None:
        eng = self.eng
        if k > len(self.held):
            raise DesignError(f"release({k}) on {self.label} but only {len(self.held)} "
                              f"object(s) held")
        log = self.owner.tlog
        if log is not None:
            log.append(("rel", self, k))
        for _ in range(k):
            obj = self.held.pop(0)
            flat = obj.reshape(-1)
            if self.sw is None and self.repeat == 1 and self._direct(flat):
                self._back(obj)
                continue
            data = flat if self.sw is None else self.sw.apply(flat)
            for _ in range(self.repeat - 1):
                self.stream.push(data)
            self.stream.push(data, partial(self._back, obj))
        eng.pump()

    def _direct(self, flat: np.ndarray) -> bool:
        """Hand the object straight to every reader when each one has read the whole
        stream so far, reads plain objects of this size and has a free buffer: the same
        copies and wake-ups as going through a stream segment, with less bookkeeping."""
        s = self.stream
        readers = s.readers
        n = flat.size
        if not readers:
            return False
        for r in readers:
            if type(r) is not ObjReader or r.walk is not None or r.partial is not None \
                    or r.pos != s.end or r.numel != n or not r.pool:
                return False
        eng = self.eng
        for r in readers:
            buf = r.pool.pop()
            buf.reshape(-1)[:] = flat
            r.full.append(buf)
            r.pos += n
            if r.link is not None:
                eng.schedule(r.link)
            elif r.waiters:
                eng.wake(r.waiters)
        s.end += n
        return True

    def occupancy(self) -> str:
        return (f"{self.label}: held {len(self.held)}, free {len(self.pool)}/{self.depth}, "
                f"in flight {self.depth - len(self.pool) - len(self.held)}")


class SplitRT:
    """Memtile split/forward: each input object is cut into segments, one per output."""

    def __init__(self, eng: Engine, rin: ObjReader, outs: list):
        # outs: list of (stream, offset, size or None, StreamWalk or None, repeat)
        self.eng, self.rin, self.outs = eng, rin, outs
        self.queued = False
        rin.link = self

    def _done(self, obj, cnt) -> None:
        cnt[0] -= 1
        if cnt[0] == 0:
            self.rin.pool.append(obj)
            self.eng.schedule(self.rin)

    def work(self) -> None:
        full = self.rin.full
        while full:
            obj = full.popleft()
            flat = obj.reshape(-1)
            cnt = [sum(r for *_, r in self.outs)]
            done = partial(self._done, obj, cnt)
            for stream, off, size, sw, rep in self.outs:
                seg = flat[off:] if size is None else flat[off:off + size]
                data = seg if sw is None else sw.apply(seg)
                for _ in range(rep):
                    stream.push(data, done)


class JoinRT:
    """Memtile join: one object from each input is placed at its offset of one output object."""

    def __init__(self, eng: Engine, ins: list, out: Stream, depth: int, shape, dtype, sw,
                 repeat: int):
        self.eng, self.ins, self.out = eng, ins, out
        self.pool = alloc_pool(depth, shape, dtype)
        self.sw, self.repeat = sw, max(1, int(repeat or 1))
        self.queued = False
        for r, _ in ins:
            r.link = self

    def _back(self, obj) -> None:
        self.pool.append(obj)
        self.eng.schedule(self)

    def work(self) -> None:
        while self.pool and all(r.full for r, _ in self.ins):
            out = self.pool.pop()
            flat = out.reshape(-1)
            for r, off in self.ins:
                o = r.full.popleft()
                flat[off:off + o.size] = o.reshape(-1)
                r.pool.append(o)
                self.eng.schedule(r)
            data = flat if self.sw is None else self.sw.apply(flat)
            for _ in range(self.repeat - 1):
                self.out.push(data)
            self.out.push(data, partial(self._back, out))


class XferTask:
    """A host DMA transfer (fill or drain) in flight."""

    __slots__ = ("kind", "label", "done", "wait", "group", "eng", "host_flat", "walk", "n",
                 "cnt", "started", "start_fn")

    def __init__(self, eng: Engine, kind: str, label: str, wait: bool, group):
        self.eng, self.kind, self.label, self.wait, self.group = eng, kind, label, wait, group
        self.done = False
        self.started = False
        self.host_flat = self.walk = None
        self.n = self.cnt = 0

    def finish(self) -> None:
        self.done = True
        if self.eng.task_waiters:
            self.eng.wake(self.eng.task_waiters)


class SinkReader:
    """The host end of a drained fifo: writes the stream into host buffers by pattern."""

    def __init__(self, eng: Engine, stream: Stream, label: str):
        self.eng, self.stream, self.label = eng, stream, label
        self.pos = 0
        self.depth = 0             # not a worker endpoint: no acquire/release
        self.queued = False
        self.tasks: deque = deque()
        stream.readers.append(self)

    def work(self) -> None:
        s = self.stream
        moved = False
        while self.tasks and s.end > self.pos:
            t = self.tasks[0]
            k = min(s.end - self.pos, t.n - t.cnt)
            buf = np.empty(k, t.host_flat.dtype)
            s.read_into(self.pos, buf)
            t.host_flat[t.walk[t.cnt:t.cnt + k]] = buf
            self.pos += k
            t.cnt += k
            moved = True
            if t.cnt == t.n:
                self.tasks.popleft()
                t.finish()
        if moved:
            s.trim()

    def occupancy(self) -> str:
        return (f"{self.label}: {len(self.tasks)} drain(s) pending, stream pending "
                f"{self.stream.end - self.pos} elems")
