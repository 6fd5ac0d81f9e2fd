"""Run-time core: parties (workers and the host sequence), blocking with exact deadlock
detection, and the element streams that move objects between fifo endpoints.

Parties are greenlets on the calling thread: each runs until it blocks (an acquire that
cannot be satisfied, a wait for a transfer), then hands control to the scheduler, which
resumes the next runnable party. Concurrency semantics are those of the hardware (every
core runs its own program, fifos synchronize them) with no OS threads, no GIL contention
and nothing left running after a run. Data movement (the DMA side) is done synchronously
by whichever party changed state, so when every party is blocked nothing else can move:
that is a deadlock (or, when the host only waits for non-awaited transfers, the normal
end of the run).
"""
from __future__ import annotations

from collections import deque
from typing import Callable

import greenlet
import numpy as np

from .errors import DeadlockError, DesignError, StopRun


class PartyGreenlet(greenlet.greenlet):
    """A greenlet that knows which party it runs."""

    party: "Party | None" = None


def current_party() -> "Party | None":
    """The party (worker or host) running now, if inside a run."""
    return getattr(greenlet.getcurrent(), "party", None)


class Party:
    """One concurrent participant of a run: a worker or the host sequence."""

    __slots__ = ("name", "kind", "eng", "blocked", "pred", "waiting", "kcalls",
                 "kmacs", "tile", "local_bufs", "lb_index", "glet", "worker", "tlog")

    def __init__(self, eng: "Engine", name: str, kind: str, tile=None, worker=None):
        self.name, self.kind, self.eng, self.tile, self.worker = name, kind, eng, tile, worker
        self.blocked = False
        self.pred: Callable[[], bool] | None = None
        self.waiting = ""
        self.kcalls: dict[str, int] = {}
        self.kmacs = 0
        self.local_bufs: list = []
        self.lb_index = 0
        self.glet: PartyGreenlet | None = None
        self.tlog: list | None = None          # timeline log of a traced run (else None)


class Engine:
    """Shared state of one run."""

    def __init__(self) -> None:
        self.ready: deque[Party] = deque()      # parties to resume, in order
        self.hub: greenlet.greenlet | None = None
        self.parties: list[Party] = []
        self.n_alive = 0
        self.n_blocked = 0
        self.stopping = False
        self.finished_ok = False
        self.error: BaseException | None = None
        self._work: deque = deque()
        self._pumping = False
        self.task_waiters: list[Party] = []
        self.host: Party | None = None
        self.host_final = False
        self.final_ok: Callable[[], bool] = lambda: True
        self.reporters: list[Callable[[], str]] = []
        self.ctl = None
        # A KeyboardInterrupt or the time limit, and the party it stopped (None: the
        # scheduler itself); re-raised after the run is unwound, whatever else happened.
        self.interrupted: BaseException | None = None
        self.interrupted_in: Party | None = None
        # Time accounting of a profiled run (seconds): inside kernel calls, in host DMA
        # copies (fill and drain access patterns).
        self.profile = False
        self.kernel_s = 0.0
        self.dma_s = 0.0

    # ---- parties ----------------------------------------------------------------
    def add_party(self, p: Party) -> Party:
        self.parties.append(p)
        self.n_alive += 1
        return p

    def party_exit(self, p: Party) -> None:
        self.n_alive -= 1
        if not self.stopping and self.n_alive > 0 and self.n_blocked == self.n_alive:
            self._all_blocked()

    def block(self, party: Party, waitlist: list, pred: Callable[[], bool],
              desc: "str | Callable[[], str]") -> None:
        """Block ``party`` until ``pred()`` holds; raise StopRun on stop. ``desc`` says
        what it waits for (a callable: formatted only for a report)."""
        if self.stopping:
            raise StopRun()
        party.blocked, party.pred, party.waiting = True, pred, desc
        waitlist.append(party)
        self.n_blocked += 1
        if self.n_blocked == self.n_alive:
            self._all_blocked()
        while party.blocked and not self.stopping:
            self.hub.switch()
        if party.blocked:
            party.blocked = False
            self.n_blocked -= 1
            if party in waitlist:
                waitlist.remove(party)
            raise StopRun()

    def wake(self, waitlist: list) -> None:
        """Unblock the parties on ``waitlist`` whose predicate now holds."""
        for p in list(waitlist):
            if p.pred():
                waitlist.remove(p)
                p.blocked = False
                self.n_blocked -= 1
                self.ready.append(p)

    def _all_blocked(self) -> None:
        if self.host_final and self.host is not None and self.host.blocked and self.final_ok():
            self.finished_ok = True
        else:
            self.error = DeadlockError(self.report())
        self.stopping = True

    def report(self) -> str:
        lines = ["deadlock: every worker and the runtime sequence are blocked or finished"]
        lines.append("blocked parties:")
        for p in self.parties:
            if p.blocked:
                who = p.name if p.kind == "worker" else f"{p.kind} '{p.name}'"
                what = p.waiting() if callable(p.waiting) else p.waiting
                lines.append(f"  {who} waits for {what}")
        lines.append("fifo occupancy:")
        for r in self.reporters:
            lines.append("  " + r())
        return "\n".join(lines)


    def schedule_loop(self) -> None:
        """Resume runnable parties until all have finished (run on the hub greenlet).

        Once the run is stopping, every party still alive is resumed so that it leaves its
        wait with StopRun and ends.
        """
        while True:
            if self.ready:
                p = self.ready.popleft()
                if p.glet is not None and not p.glet.dead:
                    p.glet.switch()
                continue
            alive = [p for p in self.parties if p.glet is not None and not p.glet.dead]
            if not alive:
                return
            if not self.stopping:        # nobody runnable yet someone alive: all blocked
                self._all_blocked()
            self.ready.extend(alive)

    def stop(self) -> None:
        self.stopping = True

    def fail(self, err: BaseException) -> None:
        if self.error is None and not self.finished_ok:
            self.error = err
        self.stopping = True

    def interrupt(self, exc: BaseException, party: Party | None) -> None:
        """Stop the run for ``exc`` (KeyboardInterrupt or the time limit) raised while
        ``party`` ran; the first one is kept and re-raised once the run is unwound."""
        if self.interrupted is None:
            self.interrupted, self.interrupted_in = exc, party
        self.stopping = True

    # ---- data movement work queue ---------------------------------------------------
    def schedule(self, item) -> None:
        if not item.queued:
            item.queued = True
            self._work.append(item)

    def run_now(self, item) -> None:
        """``schedule(item); pump()``, without the queue when nothing else waits in it."""
        if self._pumping or self._work or item.queued:
            self.schedule(item)
            self.pump()
            return
        self._pumping = True
        try:
            item.work()
            self._drain()
        finally:
            self._pumping = False

    def pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            self._drain()
        finally:
            self._pumping = False

    def _drain(self) -> None:
        work = self._work
        while work:
            it = work.popleft()
            it.queued = False
            it.work()


# ---------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------
class _Seg:
    """A pushed array: ``left`` readers still have to read past it, then ``done`` runs."""

    __slots__ = ("arr", "n", "left", "done")

    def __init__(self, arr, n, left, done):
        self.arr, self.n, self.left, self.done = arr, n, left, done


class Stream:
    """The element stream of one fifo: producer pushes segments, readers pull at their pace.

    Every reader keeps its own queue of the segments it has not read past (``segq``, with
    ``off`` elements of the first one read; ``pos``: elements read in all). A push queues
    the readers that can take data now (an object being assembled, ``partial``, or room,
    ``pool``); the others pull when they get room. A segment is dropped (and its ``done``
    callback run, returning the producer buffer) once every reader has read past it: the
    slowest reader back-pressures the producer.
    """

    def __init__(self, eng: Engine, name: str):
        self.eng, self.name = eng, name
        self.end = 0
        self.readers: list = []
        self.direct: list | None = None    # readers taking hand-offs (endpoints.hand_off)

    def attach(self, reader) -> None:
        reader.segq = deque()
        reader.off = 0
        reader.pos = 0
        self.readers.append(reader)

    def push(self, arr: np.ndarray, done: Callable[[], None] | None = None) -> None:
        rd = self.readers
        if not rd:
            if done is not None:
                done()
            return
        n = arr.size
        seg = _Seg(arr, n, len(rd), done)
        self.end += n
        work = self.eng._work
        for r in rd:
            r.segq.append(seg)
            if not r.queued and (r.partial is not None or r.pool):   # it can take some now
                r.queued = True
                work.append(r)

    def pending(self) -> int:
        return self.end - (min(r.pos for r in self.readers) if self.readers else self.end)


def read_stream(r, dst: np.ndarray) -> None:
    """Copy the next ``dst.size`` elements of reader ``r``'s stream into flat ``dst``
    (that many must be pending), dropping the segments ``r`` reads past."""
    q = r.segq
    take = dst.size
    off = r.off
    r.pos += take
    seg = q[0]
    if off == 0 and seg.n == take:              # exactly the next segment
        dst[:] = seg.arr
        q.popleft()
        seg.left -= 1
        if seg.left == 0 and seg.done is not None:
            seg.done()
        return
    i = 0
    while i < take:
        seg = q[0]
        k = min(seg.n - off, take - i)
        dst[i:i + k] = seg.arr[off:off + k]
        i += k
        off += k
        if off == seg.n:
            q.popleft()
            off = 0
            seg.left -= 1
            if seg.left == 0 and seg.done is not None:
                seg.done()
    r.off = off


class StreamWalk:
    """A producer-side ``to_stream`` transform applied to each pushed object."""

    def __init__(self, tap, pad_value=0):
        self.walk = tap.walk()
        self.tnumel = tap.tensor_numel
        self.mask = self.walk >= 0 if tap.padding is not None else None
        self.pad_value = pad_value

    def apply(self, flat: np.ndarray) -> np.ndarray:
        if flat.size != self.tnumel:
            if flat.size % self.tnumel:
                raise DesignError(f"to_stream pattern over {self.tnumel} elements cannot walk "
                                  f"an object of {flat.size} elements")
            rows = flat.reshape(-1, self.tnumel)
            return np.concatenate([self.apply(r) for r in rows])
        if self.mask is None:
            return flat[self.walk]
        out = np.full(self.walk.size, self.pad_value, dtype=flat.dtype)
        out[self.mask] = flat[self.walk[self.mask]]
        return out


def alloc_pool(depth: int, shape, dtype, holder=None) -> list[np.ndarray]:
    """``depth`` zeroed buffers of one endpoint. With ``holder`` (the design object the
    endpoint serves, which outlives runs) every run gets the same arrays, zeroed again:
    kernels then see the same buffers run after run (common.kernels.host reuses the
    checks of a call with the same arrays)."""
    if holder is None:
        return [np.zeros(shape, dtype) for _ in range(depth)]
    arrs = holder.__dict__.get("_emu_pool")
    if arrs is None or len(arrs) != depth or arrs[0].shape != tuple(shape) \
            or arrs[0].dtype != dtype:
        arrs = [np.zeros(shape, dtype) for _ in range(depth)]
        holder._emu_pool = arrs
    else:
        for a in arrs:
            a.fill(0)
    return list(arrs)
