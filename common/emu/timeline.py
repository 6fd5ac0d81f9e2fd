"""Modelled timeline of one emulated run: kernel calls, waits on acquire and DMA transfers
with times from a stated cost model, written as a Chrome/Perfetto trace or a Gantt chart.

Cost model (``CostModel``), at 1 GHz (1 cycle = 1 ns):

* kernel call: ``dispatch_cycles`` (100) + MACs / (device MACs per cycle: 256 on NPU1,
  512 on NPU2) / efficiency of the kernel's symbol (default 0.5, set per symbol). A kernel
  that declares no MAC count costs only the dispatch.
* DMA transfer of one object: bytes / ``dma_bytes_per_cycle`` (4: one 32-bit stream word
  per cycle per channel); a channel moves one object at a time, in order; a transfer
  starts when the object is released by its producer and the receiving end has a free
  buffer (buffer counts as the emulated run has them: the declared depth per end); a
  broadcast moves to each consumer as that consumer's buffers allow. A memtile forward
  streams each output object piece by piece, one piece per input object as that object
  arrives, and frees an input object once its last piece has left (as the emulated run
  does: a forward that regroups small objects into a larger one needs no more input
  buffers than the design declares).
* a fifo whose ends share memory moves nothing: the object is ready when released.
* the runtime sequence issues fills and drains at its own time, which advances only when
  it waits for transfers.

Left out: memory bank conflicts, stream switch contention and routing, lock latency, BD
and task-queue setup, core stalls inside kernels, host/driver and XRT overheads, the
shim's DDR bandwidth, clock differences between parts.

How: while a traced run executes, every party's completed acquires, releases and kernel
calls and the host's fills, drains and waits are logged in order; afterwards the log is
replayed party by party, each operation starting when what it depends on is known.
Times are resolved on demand and kept (each fifo end's arrivals in order); a dependency
that loops back to an object still being resolved is answered "not yet known", so the
replay always ends (a run that completed resolves fully; otherwise ``incomplete``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .device import KIND_COMPUTE
from .errors import EmulationError

CLOCK_HZ = 1.0e9


@dataclass
class CostModel:
    """The stated cost model (cycles at ``CLOCK_HZ``)."""
    macs_per_cycle: int = 256
    efficiency: dict = field(default_factory=dict)      # symbol -> fraction of peak
    default_efficiency: float = 0.5
    dispatch_cycles: float = 100.0
    dma_bytes_per_cycle: float = 4.0

    def kernel_cycles(self, symbol: str, macs: int) -> float:
        eff = self.efficiency.get(symbol, self.default_efficiency)
        return self.dispatch_cycles + (macs / self.macs_per_cycle / eff if macs else 0.0)

    def describe(self) -> str:
        effs = ", ".join(f"{k}={v:g}" for k, v in sorted(self.efficiency.items()))
        return (f"kernel = {self.dispatch_cycles:g} cycles dispatch + MACs / "
                f"{self.macs_per_cycle} per cycle / efficiency (default "
                f"{self.default_efficiency:g}{'; ' + effs if effs else ''}); DMA "
                f"{self.dma_bytes_per_cycle:g} B/cycle per channel; 1 GHz")


def model_for(device, efficiency: dict | None = None) -> CostModel:
    """The stated cost model for ``device`` (its MACs per cycle)."""
    return CostModel(macs_per_cycle=device.macs_per_cycle, efficiency=dict(efficiency or {}))


def parse_efficiencies(specs) -> dict:
    """``["conv2dk1=0.6", "a=0.5,b=0.7"]`` -> {symbol: fraction in (0, 1]}."""
    out = {}
    for spec in specs:
        for item in str(spec).split(","):
            if not item.strip():
                continue
            sym, sep, val = item.partition("=")
            try:
                f = float(val)
            except ValueError:
                f = -1.0
            if not sep or not sym.strip() or not 0 < f <= 1:
                raise EmulationError(f"--kernel-efficiency {item!r}: expected SYMBOL=FRACTION "
                                     f"with 0 < FRACTION <= 1")
            out[sym.strip()] = f
    return out


@dataclass
class Event:
    track: str
    name: str
    cat: str          # kernel | wait | dma
    start: float      # cycles
    end: float


class _Cons:
    """Replay state of one consuming end (worker, link input or host drain)."""

    def __init__(self, fifo, tile, depth, nbytes, dma: bool, track: str | None):
        self.fifo, self.tile, self.depth, self.nbytes = fifo, tile, depth, nbytes
        self.dma, self.track = dma, track
        self.arr: list = []          # arrival time of object i
        self.rel: list = []          # release time of object i (worker ends)
        self.released = 0
        self.link = None             # set for a link's input end
        self.busy = False            # arrival() is extending ``arr`` (a re-entry is a cycle)
        self.cur = None              # forward output: [object, time, start, next input]
        self.seg_end: list = []      # forward output: time input object s is fully sent


class _Prod:
    def __init__(self, fifo, depth):
        self.fifo, self.depth = fifo, depth
        self.released = 0


class Replay:
    """Times for a logged run (see the module docstring)."""

    def __init__(self, plan, model: CostModel):
        self.plan, self.model = plan, model
        self.events: list[Event] = []
        self.ptimes: dict = {}              # fifo -> [ready time of object i]
        self.cons_of: dict = {}             # fifo -> [_Cons]
        self.end_state: dict = {}           # id(runtime endpoint) -> _Cons/_Prod
        self.chan_free: dict = {}           # track -> time the channel is free
        self.link_src: dict = {}            # output fifo -> (link, index)
        self.fifo_prod_kind: dict = {}      # fifo -> "worker" | "host" | "link"
        self.incomplete = False

    # ---- static structure -----------------------------------------------------------
    def setup(self, handle_rt: dict, dma_fifos: set) -> None:
        from .fifo import Link
        from .fifomem import bound_ends
        from .worker import Worker
        plan = self.plan
        for f in plan.fifos:
            self.ptimes[f] = []
            self.cons_of[f] = []
            p = f._prod
            if p is not None and isinstance(p.endpoint, Worker):
                self.fifo_prod_kind[f] = "worker"
            elif p is not None and isinstance(p.endpoint, Link):
                self.fifo_prod_kind[f] = "link"
            else:
                self.fifo_prod_kind[f] = "host"
        for ln in plan.links:
            for i, h in enumerate(ln.dsts):
                self.link_src[h.fifo] = (ln, i)
        for f in plan.fifos:
            ptile = plan.tile_of(f._prod) if f._prod is not None and \
                f._prod.endpoint is not None else None
            seen_sink = False
            n_cons = len(bound_ends(plan, f)[1])
            for h in f._cons:
                if h.endpoint is None:
                    continue
                ctile = plan.tile_of(h)
                host = not isinstance(h.endpoint, (Worker, Link))
                if host:
                    if seen_sink:
                        continue
                    seen_sink = True
                dma = f in dma_fifos
                track = None
                if dma:
                    if ptile is not None and plan.kind_at(ptile) != KIND_COMPUTE:
                        # a broadcast reaches each consumer as its buffers allow
                        to = f" -> ({ctile[0]},{ctile[1]})" if n_cons > 1 else ""
                        track = self._dma_track(ptile, "out", f.name + to)
                    elif plan.kind_at(ctile) != KIND_COMPUTE:
                        track = self._dma_track(ctile, "in", f.name)
                    else:
                        track = self._dma_track(ctile, "in", f.name)
                c = _Cons(f, ctile, 1 << 60 if host else h.depth, h.nbytes, dma, track)
                if isinstance(h.endpoint, Link):
                    c.link = h.endpoint
                self.cons_of[f].append(c)
                r = handle_rt.get(id(h))
                if r is not None:
                    self.end_state[r] = c
            p = f._prod
            if p is not None and isinstance(p.endpoint, Worker) and id(p) in handle_rt:
                self.end_state[handle_rt[id(p)]] = _Prod(f, p.depth)

    @staticmethod
    def _dma_track(tile, d: str, name: str) -> str:
        return f"({tile[0]},{tile[1]}) DMA {d}: {name}"

    # ---- lazily computed times ---------------------------------------------------------
    def ptime(self, f, i: int):
        """Time object ``i`` of fifo ``f`` is ready at its producer, or None if unknown."""
        if self.fifo_prod_kind[f] != "link":
            pt = self.ptimes[f]
            return pt[i] if i < len(pt) else None
        pt = self.ptimes[f]
        if i < len(pt):
            return pt[i]
        ln, k = self.link_src[f]
        for j in range(len(pt), i + 1):
            t = self._link_ready(ln, k, f, j)
            if t is None:
                return None
            pt.append(t)
        return pt[i]

    def _link_ready(self, ln, k: int, f, j: int):
        """Object ``j`` of link output ``f`` is ready when the input object(s) holding its
        data have arrived at the memtile: for a join, object j of every input; for a
        split, input object j // repeat; for a forward (objects may be re-sized and
        repeated), the input object holding the output's last element."""
        rep = max(1, int(f.repeat_count or 1))
        if ln.kind == "join":
            ts = [self._in_arrival(ln, h.fifo, j) for h in ln.srcs]
            return None if any(t is None for t in ts) else max(ts)
        src = ln.srcs[0].fifo
        if ln.kind == "split":
            return self._in_arrival(ln, src, j // rep)
        return self._in_arrival(ln, src, ((j + 1) * f.numel - 1) // (src.cons_numel * rep))

    def _in_arrival(self, ln, f, j: int):
        for c in self.cons_of[f]:
            if c.link is ln:
                return self.arrival(c, j)
        return None

    def release_time(self, c: _Cons, i: int):
        """When consumer ``c`` frees the buffer of object ``i`` (None: not yet known).
        A link input object is free when its data has left for every consumer of the
        link's outputs: for a forward, when its last piece has been streamed (the output
        object holding it may still be filling); otherwise when the output object(s)
        holding it have arrived."""
        if c.link is None:
            return c.rel[i] if i < len(c.rel) else None
        ln = c.link
        t = 0.0
        for h in ln.dsts:
            of = h.fifo
            if ln.kind == "forward":
                per_in = c.fifo.cons_numel * max(1, int(of.repeat_count or 1))
                last = ((i + 1) * per_in - 1) // of.numel
            elif ln.kind == "split":
                last = (i + 1) * max(1, int(of.repeat_count or 1)) - 1
            else:
                last = i
            for oc in self.cons_of[of]:
                if ln.kind == "forward" and oc.dma:
                    if i >= len(oc.seg_end):
                        self.arrival(oc, last)
                    a = oc.seg_end[i] if i < len(oc.seg_end) else None
                else:
                    a = self.arrival(oc, last)
                if a is None:
                    return None
                t = max(t, a)
        return t

    def arrival(self, c: _Cons, i: int):
        """Time object ``i`` is in consumer ``c``'s buffer (None: not yet known). Objects
        arrive in order; asking, while object k is being resolved, for an object >= k of
        the same end is a cycle in the replay, answered None (never recursion without
        end)."""
        arr = c.arr
        if i < len(arr):
            return arr[i]
        if c.busy:
            return None
        c.busy = True
        try:
            while len(arr) <= i:
                t = self._next_arrival(c)
                if t is None:
                    return None
                arr.append(t)
        finally:
            c.busy = False
        return arr[i]

    def _next_arrival(self, c: _Cons):
        """Resolve the arrival of ``c``'s next object (None: not yet known)."""
        k = len(c.arr)
        if c.dma and self.fifo_prod_kind[c.fifo] == "link" and \
                self.link_src[c.fifo][0].kind == "forward":
            return self._forward_arrival(c, k)
        p = self.ptime(c.fifo, k)
        if p is None:
            return None
        if not c.dma:
            return p
        slot = 0.0
        if k >= c.depth:
            slot = self.release_time(c, k - c.depth)
            if slot is None:
                return None
        start = max(p, slot, self.chan_free.get(c.track, 0.0))
        end = start + c.nbytes / self.model.dma_bytes_per_cycle
        self.chan_free[c.track] = end
        self.events.append(Event(c.track, f"{c.fifo.name} #{k}", "dma", start, end))
        return end

    def _forward_arrival(self, c: _Cons, k: int):
        """Object ``k`` of a forward's output into consumer ``c``, streamed piece by piece
        as the emulated run moves it: each input object's piece leaves once that object has
        arrived at the memtile, so an output object larger than the input objects (a
        regrouping forward) frees its first inputs before its last ones arrive. Progress
        is kept in ``c.cur`` across calls that return None."""
        ln, _ = self.link_src[c.fifo]
        src = ln.srcs[0].fifo
        f = c.fifo
        n_out = f.numel
        n_in = src.cons_numel * max(1, int(f.repeat_count or 1))   # stream elems per input
        rate = self.model.dma_bytes_per_cycle
        if c.cur is None:
            slot = 0.0
            if k >= c.depth:
                slot = self.release_time(c, k - c.depth)
                if slot is None:
                    return None
            t0 = max(slot, self.chan_free.get(c.track, 0.0))
            c.cur = [k, t0, None, (k * n_out) // n_in]
        cur = c.cur
        lo, hi = k * n_out, (k + 1) * n_out
        while cur[3] * n_in < hi:
            s = cur[3]
            a = self._in_arrival(ln, src, s)
            if a is None:
                return None
            piece = min(hi, (s + 1) * n_in) - max(lo, s * n_in)
            begin = max(cur[1], a)
            if cur[2] is None:
                cur[2] = begin
            cur[1] = begin + c.nbytes * piece / n_out / rate
            if (s + 1) * n_in <= hi:            # the last piece of input object s
                c.seg_end.append(cur[1])
            cur[3] = s + 1
        c.cur = None
        self.chan_free[c.track] = cur[1]
        self.events.append(Event(c.track, f"{f.name} #{k}", "dma", cur[2], cur[1]))
        return cur[1]

    def prod_free(self, st: _Prod, j: int):
        """When the producer buffer that held object ``j`` is free again."""
        t = 0.0
        for c in self.cons_of[st.fifo]:
            v = self.arrival(c, j) if c.dma else self.release_time(c, j)
            if v is None:
                return None
            t = max(t, v)
        return t

    # ---- replay ----------------------------------------------------------------------
    def run(self, parties: list) -> None:
        """``parties``: [(track name, [ops])]; worker ops ("acq"|"rel", rt end, n) and
        ("k", symbol, macs); host ops ("fill"|"drain", fifo, objects, task),
        ("wait", [tasks])."""
        state = [[name, ops, 0, 0.0] for name, ops in parties]
        fills: dict = {}                   # task -> (fifo, first, last)
        drains: dict = {}
        progress = True
        while progress:
            progress = False
            for st in state:
                ops = st[1]
                while st[2] < len(ops):
                    if not self._step(st, ops[st[2]], fills, drains):
                        break
                    st[2] += 1
                    progress = True
        self.incomplete = any(st[2] < len(st[1]) for st in state)
        self.end_time = max([e.end for e in self.events] + [st[3] for st in state] + [0.0])

    def _step(self, st, op, fills, drains) -> bool:
        name, t = st[0], st[3]
        kind = op[0]
        if kind == "k":
            d = self.model.kernel_cycles(op[1], op[2])
            self.events.append(Event(name, op[1], "kernel", t, t + d))
            st[3] = t + d
            return True
        if kind in ("acq", "rel"):
            es = self.end_state.get(op[1])
            if es is None:
                return True
            n = op[2]
            if kind == "rel":
                for m in range(n):
                    if isinstance(es, _Prod):
                        self.ptimes[es.fifo].append(t)
                    else:
                        es.rel.append(t)
                es.released += n
                return True
            ready = t
            for j in range(es.released, es.released + n):
                if isinstance(es, _Prod):
                    v = self.prod_free(es, j - es.depth) if j >= es.depth else 0.0
                else:
                    v = self.arrival(es, j)
                if v is None:
                    return False
                ready = max(ready, v)
            if ready > t:
                self.events.append(Event(name, f"wait acquire({n}) {es.fifo.name}", "wait",
                                         t, ready))
                st[3] = ready
            return True
        if kind == "fill":
            f, nobj, task = op[1], op[2], op[3]
            first = len(self.ptimes[f])
            self.ptimes[f].extend([t] * nobj)
            fills[task] = (f, first, first + nobj - 1)
            return True
        if kind == "drain":
            f, nobj, task = op[1], op[2], op[3]
            c = next((c for c in self.cons_of[f] if c.depth == 1 << 60), None)
            first = drains.get(("next", f), 0)
            drains[("next", f)] = first + nobj
            drains[task] = (c, first + nobj - 1)
            return True
        if kind == "wait":
            ready = t
            for task in op[1]:
                if task in drains:
                    c, last = drains[task]
                    v = self.arrival(c, last) if c is not None else t
                elif task in fills:
                    f, _, last = fills[task]
                    vs = [self.arrival(c, last) for c in self.cons_of[f]]
                    v = None if any(x is None for x in vs) else max(vs + [t])
                else:
                    v = t
                if v is None:
                    return False
                ready = max(ready, v)
            if ready > t:
                self.events.append(Event(name, "wait for transfers", "wait", t, ready))
                st[3] = ready
            return True
        return True


class Timeline:
    """The modelled timeline of one run: events per track and what the summary prints."""

    def __init__(self, events: list, end: float, model: CostModel, tile_of_track: dict,
                 incomplete: bool):
        self.events, self.end, self.model = events, end, model
        self.tile_of_track, self.incomplete = tile_of_track, incomplete

    @property
    def time_s(self) -> float:
        return self.end / CLOCK_HZ

    def busy(self) -> dict:
        """Fraction of the run each compute tile spends in kernels."""
        out: dict = {}
        for e in self.events:
            if e.cat == "kernel":
                out[e.track] = out.get(e.track, 0.0) + (e.end - e.start)
        return {k: (v / self.end if self.end else 0.0) for k, v in out.items()}

    def tracks(self) -> list[str]:
        seen: dict = {}
        for e in self.events:
            seen.setdefault(e.track, None)
        return sorted(seen, key=lambda s: (0 if s in self.tile_of_track else 1, s))

    def chrome_trace(self) -> dict:
        tracks = self.tracks()
        tid = {t: i + 1 for i, t in enumerate(tracks)}
        ev = [{"ph": "M", "name": "process_name", "pid": 1, "tid": 0,
               "args": {"name": "emulated NPU run (modelled times)"}}]
        for t in tracks:
            ev.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid[t],
                       "args": {"name": t}})
            ev.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": tid[t],
                       "args": {"sort_index": tid[t]}})
        for e in self.events:
            ev.append({"ph": "X", "name": e.name, "cat": e.cat, "pid": 1, "tid": tid[e.track],
                       "ts": e.start / 1e3, "dur": (e.end - e.start) / 1e3})
        return {"traceEvents": ev, "displayTimeUnit": "ns",
                "otherData": {"cost_model": self.model.describe(),
                              "modelled_time_us": self.end / 1e3,
                              "incomplete": self.incomplete}}

    def write_json(self, path: str) -> None:
        import os
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.chrome_trace(), fh)
        os.replace(tmp, path)

    def write_gantt(self, path: str) -> None:
        import os

        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        tracks = self.tracks()
        colors = {"kernel": "tab:blue", "wait": "tab:red", "dma": "tab:green"}
        fig, ax = plt.subplots(figsize=(12, 0.4 * len(tracks) + 1.5))
        for i, t in enumerate(tracks):
            for cat, col in colors.items():
                bars = [(e.start / 1e3, (e.end - e.start) / 1e3) for e in self.events
                        if e.track == t and e.cat == cat]
                if bars:
                    ax.broken_barh(bars, (i - 0.4, 0.8), facecolors=col, label=cat)
        ax.set_yticks(range(len(tracks)))
        ax.set_yticklabels(tracks, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("modelled time (us)")
        ax.set_title(f"modelled run: {self.end / 1e3:.2f} us ({self.model.describe()})",
                     fontsize=8)
        h, lab = ax.get_legend_handles_labels()
        uniq = dict(zip(lab, h))
        ax.legend(uniq.values(), uniq.keys(), loc="upper right", fontsize=7)
        fig.tight_layout()
        tmp = f"{path}.tmp.png"
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)


def _deep(fn) -> None:
    """Run ``fn`` in a thread with a large stack and recursion limit: the replay resolves
    arrival times recursively along fifo chains, at most once per fifo end at a time (a
    re-entry is cut as a cycle), so as deep as a design has ends, not as long as a run."""
    import sys
    import threading

    from .errors import EmulationError

    box: list = []
    old_size, old_limit = threading.stack_size(), sys.getrecursionlimit()

    def body() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box.append(e)
    try:
        threading.stack_size(1 << 29)
        sys.setrecursionlimit(max(old_limit, 200_000))
        t = threading.Thread(target=body, name="timeline replay")
        t.start()
        t.join()
    finally:
        threading.stack_size(old_size)
        sys.setrecursionlimit(old_limit)
    if box:
        if isinstance(box[0], RecursionError):
            raise EmulationError("timeline: the design's fifo chain is too deep to "
                                 "replay") from None
        raise box[0]


def build(plan, log: dict, handle_rt: dict, model: CostModel) -> Timeline:
    """Replay a traced run's ``log`` ({party name: [ops]}, host under "runtime sequence")."""
    from .fifomem import bound_ends, needs_dma
    dma = set()
    for f in plan.fifos:
        p, cons = bound_ends(plan, f)
        pt = plan.tile_of(p) if p is not None else None
        if needs_dma(plan, f, pt, [plan.tile_of(h) for h in cons], cons):
            dma.add(f)
    r = Replay(plan, model)
    r.setup(handle_rt, dma)
    _deep(lambda: r.run(list(log.items())))
    tiles = {name: None for name in log}
    return Timeline(r.events, r.end_time, model, tiles, r.incomplete)


__all__ = ["CostModel", "Timeline", "build", "model_for", "parse_efficiencies"]
