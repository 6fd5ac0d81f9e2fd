"""Resolve-time structure discovery, sequential placement and resource checks."""
from __future__ import annotations

from dataclasses import dataclass, field

from .device import DEFAULT_STACK, KIND_COMPUTE, KIND_MEM, KIND_SHIM, LIMITS, Device
from .errors import DesignError, ResourceError
from .fifo import Link, ObjectFifo
from .fifomem import all_acquires, bound_ends, fifo_pools, needs_dma
from .worker import Worker


@dataclass
class Plan:
    """Everything resolved about a design: parts, placement, memory and channel use."""
    device: Device
    workers: list
    fifos: list
    links: list
    rt_handles: list                       # runtime-bound handles (drains deduped per fifo)
    place: dict = field(default_factory=dict)       # id(obj) -> (col, row)
    mem: dict = field(default_factory=dict)         # (col,row) -> [(what, bytes)]
    chans: dict = field(default_factory=dict)       # (col,row) -> [in, out, [names]]
    sink_of: dict = field(default_factory=dict)     # fifo -> representative runtime cons handle
    pools: list = field(default_factory=list)       # fifomem.Pool: fifo/link buffers per tile

    def tile_of(self, h) -> tuple:
        """Coordinates of the endpoint of handle ``h``."""
        ep = h.endpoint
        if isinstance(ep, (Worker, Link)):
            return self.place[id(ep)]
        if not h.is_prod and h.fifo in self.sink_of:
            h = self.sink_of[h.fifo]
        return self.place[id(h)]

    def kind_at(self, t: tuple) -> str:
        return self.device.kind_at(*t)


def worker_label(w: Worker, plan: "Plan | None" = None) -> str:
    where = ""
    if plan is not None and id(w) in plan.place:
        where = " at tile ({}, {})".format(*plan.place[id(w)])
    return f"worker '{w.name}'{where}"


def discover(device: Device, workers: list, rt) -> Plan:
    fifos: list[ObjectFifo] = []
    links: list[Link] = []
    seen: set = set()

    def add_fifo(f: ObjectFifo) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        fifos.append(f)
        for ln in f.links:
            if ln not in links:
                links.append(ln)
                for h in ln.srcs + ln.dsts:
                    add_fifo(h.fifo)

    for w in workers:
        for h in w.fifos:
            add_fifo(h.fifo)
    for h in rt.fifos:
        add_fifo(h.fifo)
    n = 0
    for f in fifos:
        if f.name is None:
            while any(g.name == f"of{n}" for g in fifos):
                n += 1
            f.name = f"of{n}"
            n += 1
    names = [f.name for f in fifos]
    dup = {x for x in names if names.count(x) > 1}
    if dup:
        raise DesignError(f"several ObjectFifos are named {sorted(dup)}")
    rn = 0
    for w in workers:
        for b in w.buffers:
            if b.name is None:
                b.name = f"rtp{rn}" if b.use_write_rtp else f"buf{rn}"
                rn += 1
    plan = Plan(device, list(workers), fifos, links, [])
    for h in rt.fifos:
        if not h.is_prod:
            if h.fifo in plan.sink_of:
                first = plan.sink_of[h.fifo]
                if first.depth != h.depth or first.from_stream is not h.from_stream:
                    raise DesignError(f"fifo '{h.fifo.name}': runtime consumer handles differ "
                                      f"in depth or from_stream")
                continue
            plan.sink_of[h.fifo] = h
        plan.rt_handles.append(h)
    return plan


def _check_coords(device: Device, t, what: str, kind: str) -> tuple:
    try:
        k = device.kind_at(t.col, t.row)
    except DesignError as e:
        raise ResourceError(f"{what}: {e}") from None
    if k != kind:
        raise ResourceError(f"{what}: tile ({t.col}, {t.row}) is a {k} tile, not a {kind} tile")
    return (t.col, t.row)


def place(plan: Plan) -> None:
    """Sequential placement of unplaced workers, links and runtime endpoints."""
    dev = plan.device
    used: dict = {}
    for w in plan.workers:
        t = w.tile
        if t is not None and t.is_placed:
            c = _check_coords(dev, t, worker_label(w), KIND_COMPUTE)
            if c in used:
                raise ResourceError(f"two workers on compute tile {c}: '{used[c].name}' and "
                                    f"'{w.name}'")
            used[c] = w
            plan.place[id(w)] = c
    order = [(c, r) for c in range(dev.cols) for r in range(1 + dev.mem_rows, dev.rows)]
    for w in plan.workers:
        if id(w) in plan.place:
            continue
        col = w.tile.col if w.tile is not None else None
        if col is not None and not 0 <= col < dev.cols:
            raise ResourceError(f"{worker_label(w)}: column {col} is outside the {dev.name} grid")
        free = [t for t in order if t not in used and (col is None or t[0] == col)]
        if not free:
            raise ResourceError(f"no free compute tile for {worker_label(w)} on {dev.name}")
        used[free[0]] = w
        plan.place[id(w)] = free[0]

    _place_links(plan)

    shim_use: dict = {}
    for h in plan.rt_handles:
        t = h.tile
        d = 1 if h.is_prod else 0   # index 1 = out channel (fill), 0 = in (drain)
        if t is not None and t.is_placed:
            c = _check_coords(dev, t, f"runtime endpoint of fifo '{h.fifo.name}'", KIND_SHIM)
        else:
            others = [h.fifo._prod] if not h.is_prod else h.fifo._cons
            pref = 0
            for o in others:
                if o is not None and isinstance(o.endpoint, (Worker, Link)):
                    pref = plan.place[id(o.endpoint)][0]
                    break
            if t is not None and t.col is not None:
                cols = [t.col]
            else:
                cols = [pref] + [c for c in range(dev.cols) if c != pref]
            c = None
            for col in cols:
                if shim_use.get((col, 0), [0, 0])[d] < LIMITS[KIND_SHIM][1 + d]:
                    c = (col, 0)
                    break
            if c is None:
                c = (cols[0], 0)
        shim_use.setdefault(c, [0, 0])[d] += 1
        plan.place[id(h)] = c


def _peer_columns(plan: Plan, ln) -> list[list[int]]:
    """Per fifo of link ``ln``: the columns of the workers at its other end."""
    out = []
    for h in ln.srcs + ln.dsts:
        f = h.fifo
        others = [f._prod] if h in ln.srcs else f._cons
        cols = [plan.place[id(o.endpoint)][0] for o in others
                if o is not None and isinstance(o.endpoint, Worker)]
        if cols:
            out.append(cols)
    return out


def _place_links(plan: Plan) -> None:
    """Memtile links, as mlir-aie's sequential placer places non-core tiles: heaviest DMA
    demand first, each at the column that minimises the distance to its fifos' worker
    columns (ties: nearest the mean), then on the memtile nearest that column with free
    channels (ties: least loaded, then lowest column)."""
    dev = plan.device
    used: dict = {}                                    # memtile -> [in, out]
    _, li, lo = LIMITS[KIND_MEM]
    mems = [(c, r) for c in range(dev.cols) for r in range(1, 1 + dev.mem_rows)]
    free = []
    for ln in plan.links:
        t = ln.tile
        if t is not None and t.is_placed:
            c = _check_coords(dev, t, f"link {ln.name}", KIND_MEM)
            plan.place[id(ln)] = c
            u = used.setdefault(c, [0, 0])
            u[0] += len(ln.srcs)
            u[1] += len(ln.dsts)
        else:
            free.append(ln)
    free.sort(key=lambda ln: -(len(ln.srcs) + len(ln.dsts)))       # stable
    for ln in free:
        t = ln.tile
        if t is not None and t.col is not None:
            target = t.col
            if not 0 <= target < dev.cols:
                raise ResourceError(f"link {ln.name}: column {target} is outside the "
                                    f"{dev.name} grid")
        else:
            groups = _peer_columns(plan, ln)
            target = 0
            if groups:
                mean = sum(sum(g) for g in groups) / sum(len(g) for g in groups)
                target = min(range(dev.cols), key=lambda s: (
                    sum(max(min(g) - s, 0, s - max(g)) for g in groups), abs(s - mean)))
        need_in, need_out = len(ln.srcs), len(ln.dsts)
        fits = [m for m in mems if used.get(m, [0, 0])[0] + need_in <= li
                and used.get(m, [0, 0])[1] + need_out <= lo]
        pick = min(fits, key=lambda m: (abs(m[0] - target), sum(used.get(m, [0, 0])),
                                        m[0], m[1])) if fits else (target, 1)
        plan.place[id(ln)] = pick
        u = used.setdefault(pick, [0, 0])
        u[0] += need_in
        u[1] += need_out


def account(plan: Plan) -> None:
    """Fill ``plan.mem`` and ``plan.chans`` and raise ResourceError on overuse."""
    mem, chans = plan.mem, plan.chans
    for w in plan.workers:
        t = plan.place[id(w)]
        stack = int(w.stack_size or DEFAULT_STACK)
        mem.setdefault(t, []).append((f"stack of '{w.name}' {stack} B", stack))
        if w.data_size:
            mem[t].append((f"data of '{w.name}' {int(w.data_size)} B", int(w.data_size)))
    seen_bufs: set = set()
    for w in plan.workers:
        for b in w.buffers:
            if id(b) in seen_bufs:
                continue
            seen_bufs.add(id(b))
            if b.tile is not None and b.tile.is_placed:
                t = _check_coords(plan.device, b.tile, f"Buffer '{b.name}'", KIND_COMPUTE)
            else:
                t = plan.place[id(b.owner if b.owner is not None else w)]
            mem.setdefault(t, []).append((f"buffer '{b.name}' {b.nbytes} B", b.nbytes))
    plan.pools = fifo_pools(plan, all_acquires(plan))
    for pool in plan.pools:
        mem.setdefault(pool.tile, []).append((pool.label(), pool.nbytes))
    for t, items in mem.items():
        kind = plan.kind_at(t)
        total = sum(b for _, b in items)
        limit = LIMITS[kind][0]
        if total > limit:
            raise ResourceError(f"{kind} tile {t} needs {total} bytes of memory, more than its "
                                f"{limit} bytes: " + "; ".join(w for w, _ in items))

    def use(t, d, name):
        e = chans.setdefault(t, [0, 0, []])
        e[d] += 1
        e[2].append(name)

    for f in plan.fifos:
        p, cons = bound_ends(plan, f)
        ptile = plan.tile_of(p) if p is not None else None
        ctiles = [plan.tile_of(h) for h in cons]
        if not needs_dma(plan, f, ptile, ctiles, cons):
            continue            # ends share memory: no DMA
        if ptile is not None and any(c != ptile for c in ctiles):
            use(ptile, 1, f"{f.name} (out)")
        for c in ctiles:
            if c != ptile:
                use(c, 0, f"{f.name} (in)")
    prio = {KIND_COMPUTE: 0, KIND_MEM: 1, KIND_SHIM: 2}
    for t, (i, o, names) in sorted(chans.items(), key=lambda kv: (prio[plan.kind_at(kv[0])], kv[0])):
        kind = plan.kind_at(t)
        _, li, lo = LIMITS[kind]
        if i > li or o > lo:
            d, n, lim = ("input", i, li) if i > li else ("output", o, lo)
            raise ResourceError(f"{kind} tile {t} uses {n} {d} DMA channels, more than its {lim}: "
                                + ", ".join(names))


def resolve(device: Device, workers: list, rt) -> Plan:
    plan = discover(device, workers, rt)
    place(plan)
    account(plan)
    return plan
