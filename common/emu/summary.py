"""Design summary: tiles, fifos, memory per tile, kernel calls and an NPU time bound."""
from __future__ import annotations

from dataclasses import dataclass, field

from .device import LIMITS
from .util import type_nbytes, type_str

CLOCK_HZ = 1.0e9


@dataclass
class Summary:
    """Static facts of a resolved design plus the statistics of its last run."""
    device: str
    macs_per_cycle: int
    tiles: list = field(default_factory=list)      # (coord, kind, description)
    fifos: list = field(default_factory=list)      # dicts
    memory: dict = field(default_factory=dict)     # coord -> (bytes, limit)
    channels: dict = field(default_factory=dict)   # coord -> (in, out)
    workers: list = field(default_factory=list)    # WorkerStats
    tile_macs: dict = field(default_factory=dict)  # coord -> MACs
    npu_time_s: float | None = None
    runs: int = 0
    timeline: object = None                        # timeline.Timeline of the last run

    def __str__(self) -> str:
        out = [f"device: {self.device} ({self.macs_per_cycle} int8 MACs/cycle/tile, 1 GHz)"]
        out.append(f"tiles used ({len(self.tiles)}):")
        for c, k, d in self.tiles:
            out.append(f"  ({c[0]},{c[1]}) {k:8s} {d}")
        out.append(f"fifos ({len(self.fifos)}):")
        for f in self.fifos:
            out.append(f"  {f['name']:16s} {f['obj']:>14s} {f['obj_bytes']:>7d} B/obj  "
                       f"depth prod {f['prod_depth']} cons {f['cons_depths']}  "
                       f"{f['bytes']} B buffered")
        out.append("memory per tile:")
        for c, (b, lim) in sorted(self.memory.items()):
            out.append(f"  ({c[0]},{c[1]}) {b:>8d} / {lim} B ({100.0 * b / lim:.1f}%)")
        out.append("DMA channels per tile (in/out):")
        for c, (i, o) in sorted(self.channels.items()):
            out.append(f"  ({c[0]},{c[1]}) {i}/{o}")
        out.append(f"kernel calls per worker (last run of {self.runs}):")
        for w in self.workers:
            calls = ", ".join(f"{k} x{v}" for k, v in sorted(w.kernel_calls.items())) or "none"
            macs = f", {w.macs} MACs" if w.macs else ""
            out.append(f"  {w.name}: {calls}{macs}")
        if self.npu_time_s is not None:
            out.append(f"estimated NPU time lower bound: {self.npu_time_s * 1e6:.2f} us "
                       f"(max over tiles of MACs / {self.macs_per_cycle} per cycle)")
        else:
            out.append("estimated NPU time lower bound: n/a (no kernel declares its MACs)")
        tl = self.timeline
        if tl is not None:
            out.append(f"modelled time per run: {tl.time_s * 1e6:.2f} us"
                       + (" (replay incomplete)" if tl.incomplete else "")
                       + f" [{tl.model.describe()}]")
            busy = tl.busy()
            if busy:
                out.append("busy per compute tile (kernel time / modelled run):")
                for name, frac in sorted(busy.items()):
                    out.append(f"  {name}: {100 * frac:.1f}%")
                top = max(busy, key=busy.get)
                out.append(f"bottleneck: {top} (busy {100 * busy[top]:.1f}%)")
        return "\n".join(out)


def make_summary(rp, stats=None, runs: int = 0, timeline=None) -> Summary:
    plan = rp.plan
    dev = plan.device
    s = Summary(dev.name, dev.macs_per_cycle, runs=runs, timeline=timeline)
    tiles: dict = {}
    for w in plan.workers:
        tiles.setdefault(plan.place[id(w)], []).append(f"worker '{w.name}'")
    for ln in plan.links:
        tiles.setdefault(plan.place[id(ln)], []).append(ln.name + " link")
    for h in plan.rt_handles:
        tiles.setdefault(plan.place[id(h)], []).append(
            f"{'fill' if h.is_prod else 'drain'} '{h.fifo.name}'")
    for c in sorted(tiles):
        s.tiles.append((c, plan.kind_at(c), ", ".join(tiles[c])))
    for f in plan.fifos:
        ob = type_nbytes(f.obj_type)
        pd = f._prod.depth if f._prod is not None and f._prod.endpoint is not None else None
        cds = [h.depth for h in f._cons if h.endpoint is not None]
        buffered = sum(p.nbytes for p in plan.pools if p.fifo == f.name)
        s.fifos.append(dict(name=f.name, obj=type_str(f.obj_type), obj_bytes=ob,
                            prod_depth=pd, cons_depths=cds, bytes=buffered))
    for c, items in plan.mem.items():
        s.memory[c] = (sum(b for _, b in items), LIMITS[plan.kind_at(c)][0])
    for c, (i, o, _) in plan.chans.items():
        s.channels[c] = (i, o)
    if stats is not None:
        s.workers = list(stats.workers)
        for w in stats.workers:
            s.tile_macs[w.tile] = s.tile_macs.get(w.tile, 0) + w.macs
        if any(s.tile_macs.values()):
            s.npu_time_s = max(s.tile_macs.values()) / dev.macs_per_cycle / CLOCK_HZ
    return s
