"""Run-time state of fifo endpoints: worker producers/consumers, memtile links, host DMA."""
from __future__ import annotations

from collections import deque
from functools import partial
from time import perf_counter

import numpy as np
from numpy import copyto

from .engine import Engine, Party, Stream, StreamWalk, alloc_pool, read_stream
from .errors import DesignError, StopRun


def _block_acquire(end, n: int, avail, what: str) -> None:
    """Block the owner of worker endpoint ``end`` until ``avail`` (ready objects of a
    consumer, free buffers of a producer) holds the ``n - held`` more objects it needs."""
    need = n - len(end.held)
    end.eng.block(end.owner, end.waiters, lambda: len(avail) >= need,
                  lambda: f"acquire({n}) on {end.label} (holds {len(end.held)}, "
                          f"{len(avail)} {what})")


class ObjReader:
    """A consumer endpoint that assembles objects from a stream (worker or link input)."""

    def __init__(self, eng: Engine, stream: Stream, depth: int, shape, dtype, from_tap,
                 label: str, holder=None):
        self.eng, self.stream, self.depth, self.label = eng, stream, depth, label
        self.queued = False
        self.pool = alloc_pool(depth, shape, dtype, holder)
        self.shape = tuple(shape)
        self.numel = int(np.prod(shape, dtype=np.int64))
        self.walk = None if from_tap is None else from_tap.walk()
        if self.walk is not None and from_tap.padding is not None:
            raise DesignError(f"{label}: a consumer access pattern (from_stream) cannot pad")
        self.chunk = self.numel if self.walk is None else self.walk.size
        self.scratch = None if self.walk is None else np.zeros(self.chunk, dtype)
        self.whole = self.walk is None and len(self.shape) == 1   # objects read in one copy
        self.partial = None
        self.pflat = None
        self.pfill = 0
        self.full: deque = deque()
        self.held: list = []
        self.waiters: list = []
        self.link = None
        self.owner: Party | None = None
        stream.attach(self)

    def work(self) -> None:
        q = self.segq
        got = False
        while q:
            if self.partial is None:
                pool = self.pool
                if not pool:
                    break
                seg = q[0]
                if self.whole and self.off == 0 and seg.n == self.chunk:
                    buf = pool.pop()            # the common case: one segment, one object
                    copyto(buf, seg.arr)
                    self.pos += seg.n
                    q.popleft()
                    seg.left -= 1
                    if seg.left == 0 and seg.done is not None:
                        seg.done()
                    self.full.append(buf)
                    got = True
                    continue
                self.partial = pool.pop()
                self.pfill = 0
                self.pflat = self.scratch if self.walk is not None else self.partial.reshape(-1)
            k = min(self.stream.end - self.pos, self.chunk - self.pfill)
            read_stream(self, self.pflat[self.pfill:self.pfill + k])
            self.pfill += k
            if self.pfill == self.chunk:
                if self.walk is not None:
                    self.partial.reshape(-1)[self.walk] = self.scratch
                self.full.append(self.partial)
                self.partial = None
                got = True
        if got:
            if self.link is not None:
                self.eng.schedule(self.link)
            elif self.waiters:
                self.eng.wake(self.waiters)

    # ---- worker side ----------------------------------------------------------------
    def acquire(self, n: int):
        """Absolute acquire: block until ``n`` objects are held; the oldest (n == 1) or
        the ``n`` oldest."""
        if self.eng.stopping:
            raise StopRun()
        held = self.held
        need = n - len(held)
        if need > 0:
            full = self.full
            if len(full) < need:
                _block_acquire(self, n, full, "ready")
            for _ in range(need):
                held.append(full.popleft())
        log = self.owner.tlog
        if log is not None:
            log.append(("acq", self, n))
        return held[0] if n == 1 else held[:n]

    def release(self, k: int) -> None:
        held = self.held
        if k > len(held):
            raise DesignError(f"release({k}) on {self.label} but only {len(held)} "
                              f"object(s) held")
        pool = self.pool
        for _ in range(k):
            pool.append(held.pop(0))
        log = self.owner.tlog
        if log is not None:
            log.append(("rel", self, k))
        if self.segq:                       # more data waits for the freed buffer
            self.eng.run_now(self)

    def occupancy(self) -> str:
        return (f"{self.label}: held {len(self.held)}, ready {len(self.full)}, "
                f"free {len(self.pool)}/{self.depth}, stream pending "
                f"{self.stream.end - self.pos} elems")


class ProdEnd:
    """A worker's producer endpoint: a pool of ``depth`` buffers pushed onto the stream."""

    def __init__(self, eng: Engine, stream: Stream, depth: int, shape, dtype, to_tap,
                 pad_value, repeat: int, label: str, holder=None):
        self.eng, self.stream, self.depth, self.label = eng, stream, depth, label
        self.pool = alloc_pool(depth, shape, dtype, holder)
        self.shape = tuple(shape)
        self.held: list = []
        self.waiters: list = []
        self.sw = None if to_tap is None else StreamWalk(to_tap, pad_value)
        self.repeat = max(1, int(repeat or 1))
        self.plain = self.sw is None and self.repeat == 1   # objects go out as they are
        self.flat = len(self.shape) == 1
        self.owner: Party | None = None

    def acquire(self, n: int):
        """As :meth:`ObjReader.acquire`, on free buffers."""
        if self.eng.stopping:
            raise StopRun()
        held = self.held
        need = n - len(held)
        if need > 0:
            pool = self.pool
            if len(pool) < need:
                _block_acquire(self, n, pool, "free")
            for _ in range(need):
                held.append(pool.pop())
        log = self.owner.tlog
        if log is not None:
            log.append(("acq", self, n))
        return held[0] if n == 1 else held[:n]

    def _back(self, obj) -> None:
        self.pool.append(obj)
        if self.waiters:
            self.eng.wake(self.waiters)

    def release(self, k: int) -> None:
        held = self.held
        if k > len(held):
            raise DesignError(f"release({k}) on {self.label} but only {len(held)} "
                              f"object(s) held")
        log = self.owner.tlog
        if log is not None:
            log.append(("rel", self, k))
        stream = self.stream
        for _ in range(k):
            obj = held.pop(0)
            flat = obj if self.flat else obj.reshape(-1)
            if self.plain and hand_off(stream, flat):
                self._back(obj)
                continue
            data = flat if self.sw is None else self.sw.apply(flat)
            for _ in range(self.repeat - 1):
                stream.push(data)
            stream.push(data, partial(self._back, obj))
        eng = self.eng
        if eng._work:
            eng.pump()

    def occupancy(self) -> str:
        return (f"{self.label}: held {len(self.held)}, free {len(self.pool)}/{self.depth}, "
                f"in flight {self.depth - len(self.pool) - len(self.held)}")


def hand_off(stream: Stream, flat: np.ndarray) -> bool:
    """Give the flat object straight to every reader of ``stream`` when each one is a
    plain consumer of objects of this size (no access pattern) that has read the whole
    stream so far and has a free buffer: the same copies and wake-ups as pushing a
    segment that every reader reads at once, without the segment. False (nothing done)
    otherwise."""
    readers = stream.direct
    if readers is None:
        readers = stream.direct = [] if not stream.readers or any(
            type(r) is not ObjReader or r.walk is not None for r in stream.readers) \
            else list(stream.readers)
    if not readers:
        return False
    n = flat.size
    for r in readers:
        if r.segq or r.partial is not None or not r.pool or r.numel != n:
            return False
    eng = stream.eng
    for r in readers:
        buf = r.pool.pop()
        copyto(buf if r.whole else buf.reshape(-1), flat)
        r.full.append(buf)
        r.pos += n
        if r.link is not None:
            eng.schedule(r.link)
        elif r.waiters:
            eng.wake(r.waiters)
    stream.end += n
    return True


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
            self._back(obj)

    def _back(self, obj) -> None:
        rin = self.rin
        rin.pool.append(obj)
        if rin.segq:
            self.eng.schedule(rin)

    def work(self) -> None:
        full = self.rin.full
        while full:
            obj = full.popleft()
            flat = obj.reshape(-1)
            pushes = []
            for stream, off, size, sw, rep in self.outs:
                seg = flat[off:] if size is None else flat[off:off + size]
                if sw is None and rep == 1 and hand_off(stream, seg):
                    continue
                pushes.append((stream, seg if sw is None else sw.apply(seg), rep))
            if not pushes:
                self._back(obj)
                continue
            cnt = [0]
            for p in pushes:
                cnt[0] += p[2]
            done = partial(self._done, obj, cnt)
            for stream, data, rep in pushes:
                for _ in range(rep):
                    stream.push(data, done)


class JoinRT:
    """Memtile join: one object from each input is placed at its offset of one output object."""

    def __init__(self, eng: Engine, ins: list, out: Stream, depth: int, shape, dtype, sw,
                 repeat: int, holder=None):
        self.eng, self.ins, self.out = eng, ins, out
        self.pool = alloc_pool(depth, shape, dtype, holder)
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
                 "cnt", "started", "start_fn", "dst")

    def __init__(self, eng: Engine, kind: str, label: str, wait: bool, group):
        self.eng, self.kind, self.label, self.wait, self.group = eng, kind, label, wait, group
        self.done = False
        self.started = False
        self.host_flat = self.walk = None
        self.dst = None             # a drain into one contiguous range: that range
        self.n = self.cnt = 0

    def finish(self) -> None:
        self.done = True
        if self.eng.task_waiters:
            self.eng.wake(self.eng.task_waiters)


class SinkReader:
    """The host end of a drained fifo: writes the stream into host buffers by pattern."""

    partial = None                 # (stream reader interface: room = pending drains)

    @property
    def pool(self) -> deque:
        return self.tasks

    def __init__(self, eng: Engine, stream: Stream, label: str):
        self.eng, self.stream, self.label = eng, stream, label
        self.depth = 0             # not a worker endpoint: no acquire/release
        self.queued = False
        self.tasks: deque = deque()
        stream.attach(self)

    def work(self) -> None:
        q, tasks = self.segq, self.tasks
        if not (tasks and q):
            return
        eng = self.eng
        if eng.profile:
            t0 = perf_counter()
        while tasks and q:
            t = tasks[0]
            k = min(self.stream.end - self.pos, t.n - t.cnt)
            if t.dst is not None:                   # a contiguous destination
                read_stream(self, t.dst[t.cnt:t.cnt + k])
            else:
                buf = np.empty(k, t.host_flat.dtype)
                read_stream(self, buf)
                t.host_flat[t.walk[t.cnt:t.cnt + k]] = buf
            t.cnt += k
            if t.cnt == t.n:
                tasks.popleft()
                t.finish()
        if eng.profile:
            eng.dma_s += perf_counter() - t0

    def occupancy(self) -> str:
        return (f"{self.label}: {len(self.tasks)} drain(s) pending, stream pending "
                f"{self.stream.end - self.pos} elems")
