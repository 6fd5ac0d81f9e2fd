"""Memtile links placed as mlir-aie's sequential placer places non-core tiles
(AIEPlacer.cpp placeNonCoreTileByCentroid / findTileWithCapacity): at the column nearest
their workers, moving to the nearest memtile with free DMA channels when that one is full."""
import numpy as np

from common.emu.device import NPU1, Tile
from common.emu.fifo import ObjectFifo
from common.emu.program import Program
from common.emu.runtime import Runtime
from common.emu.worker import Worker

T = np.ndarray[(64,), np.dtype[np.int32]]


def forwards(worker_tiles):
    """One shim -> memtile forward -> worker -> shim chain per worker tile."""
    ws, hs, types = [], [], []
    for i, t in enumerate(worker_tiles):
        src = ObjectFifo(T, name=f"src{i}")
        fwd = src.cons().forward(name=f"fwd{i}")
        out = ObjectFifo(T, name=f"out{i}")

        def core(ci, co):
            a, b = ci.acquire(1), co.acquire(1)
            b[:] = a
            ci.release(1)
            co.release(1)
        ws.append(Worker(core, [fwd.cons(), out.prod()], tile=t))
        hs += [src.prod(), out.cons()]
        types += [T, T]

    def seq(*a):
        n = len(a) // 2
        for i in range(0, n, 2):
            a[n + i].fill(a[i])
            a[n + i + 1].drain(a[i + 1], wait=True)
    return Program(NPU1(), Runtime(seq, types + hs), workers=ws).resolve_program()


def link_tiles(rp):
    return [rp.plan.place[id(ln)] for ln in rp.plan.links]


def test_link_goes_to_its_workers_column():
    rp = forwards([Tile(c, 2) for c in range(4)])
    assert link_tiles(rp) == [(0, 1), (1, 1), (2, 1), (3, 1)]
    x = np.arange(64, dtype=np.int32)
    outs = rp.run(*[x, None] * 4)
    assert all(np.array_equal(o, x) for o in outs)


def test_full_memtile_spills_to_the_nearest_column():
    # four workers in column 0 with two forwarded inputs each: eight links want memtile
    # (0, 1), which has 6 input channels, so the last two land on the neighbour (1, 1)
    ws, hs, types = [], [], []
    for w in range(4):
        fwds = [ObjectFifo(T, name=f"s{w}_{j}") for j in range(2)]
        ins = [f.cons().forward(name=f"f{w}_{j}") for j, f in enumerate(fwds)]
        out = ObjectFifo(T, name=f"o{w}")

        def core(a, b, co):
            x, y, z = a.acquire(1), b.acquire(1), co.acquire(1)
            z[:] = x + y
            a.release(1)
            b.release(1)
            co.release(1)
        ws.append(Worker(core, [ins[0].cons(), ins[1].cons(), out.prod()], tile=Tile(0, 2 + w)))
        hs += [f.prod() for f in fwds] + [out.cons()]
        types += [T, T, T]

    def seq(*a):
        n = len(a) // 2
        for i in range(0, n, 3):
            a[n + i].fill(a[i])
            a[n + i + 1].fill(a[i + 1])
            a[n + i + 2].drain(a[i + 2], wait=True)
    rp = Program(NPU1(), Runtime(seq, types + hs), workers=ws).resolve_program()
    assert link_tiles(rp) == [(0, 1)] * 6 + [(1, 1)] * 2
    x = np.arange(64, dtype=np.int32)
    outs = rp.run(*[x, x, None] * 4)
    assert all(np.array_equal(o, 2 * x) for o in outs)
