"""Tile memory counted as mlir-aie's objectfifo lowering (AIEObjectFifoStatefulTransform.cpp)
allocates it: one test per rule, each citing the compiler behaviour it follows."""
import numpy as np
import pytest

from common.emu import DeadlockError, ResourceError
from common.emu.device import NPU1, NPU1Col1, Tile
from common.emu.fifo import ObjectFifo
from common.emu.program import Program
from common.emu.runtime import Runtime
from common.emu.worker import Worker

T = np.ndarray[(256,), np.dtype[np.int32]]       # 1 KiB objects
VEC = np.ndarray[(1024,), np.dtype[np.int32]]


def copy_core(ci, co):
    a = ci.acquire(1)
    b = co.acquire(1)
    b[:] = a
    ci.release(1)
    co.release(1)


def window_core(ci, co):                 # a 3-object sliding window: largest acquire 3
    win = ci.acquire(3)
    b = co.acquire(1)
    b[:] = win[0]
    ci.release(1)
    co.release(1)


def one_worker(core=copy_core, in_depth=2, cons_depth=None, device=NPU1Col1, **kw):
    """shim -> worker (0, 2) -> shim."""
    of_in = ObjectFifo(T, name="in", depth=in_depth, **kw)
    of_out = ObjectFifo(T, name="out")
    w = Worker(core, [of_in.cons(cons_depth), of_out.prod()], tile=Tile(0, 2))

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)
    rt = Runtime(seq, [VEC, VEC, of_in.prod(), of_out.cons()])
    return Program(device(), rt, workers=[w]).resolve_program()


def pools(rp, fifo=None):
    return [(p.tile, p.what, p.count) for p in rp.plan.pools if fifo is None or p.fifo == fifo]


def tile_bytes(rp, t):
    return sum(b for _, b in rp.plan.mem[t])


def test_uniform_depth_compute_end_gets_largest_acquire_plus_one():
    # findObjectFifoSize: a core-tile end of a fifo with one depth gets maxAcquire + 1
    # buffers ("at least a ping-pong buffer"), whatever depth was declared.
    rp = one_worker(in_depth=7)
    assert pools(rp, "in") == [((0, 2), "fifo 'in' cons", 2)]
    rp = one_worker(window_core, in_depth=3)
    assert pools(rp, "in") == [((0, 2), "fifo 'in' cons", 4)]     # more than declared


def test_depth_one_acquire_one_keeps_one_buffer():
    # findObjectFifoSize: maxAcquire == 1 and size == 1 -> 1 buffer.
    rp = one_worker(in_depth=1)
    assert pools(rp, "in") == [((0, 2), "fifo 'in' cons", 1)]


def test_per_end_depths_are_kept():
    # IRON emits a depth list [prod, cons...] when ends differ; the lowering then gives
    # each consumer createOp.size(i + 1) and the producer size(0): the declared depths.
    rp = one_worker(in_depth=2, cons_depth=5)
    assert pools(rp, "in") == [((0, 2), "fifo 'in' cons", 5)]


def test_unreadable_acquire_keeps_declared_depth():
    # The compiler reads acquires from the traced core; when the core passes the handle
    # to a helper the emulator cannot see them and keeps the declared depth (the
    # compiler's own answer for an end it finds no acquire on).
    def helper(h):
        return h.acquire(1)

    def core(ci, co):
        a = helper(ci)
        b = co.acquire(1)
        b[:] = a
        ci.release(1)
        co.release(1)
    rp = one_worker(core, in_depth=6)
    assert pools(rp, "in") == [((0, 2), "fifo 'in' cons", 6)]


def two_workers(t1, t2, depth=2, **kw):
    """shim -> worker at t1 -> fifo 'mid' -> worker at t2 -> shim."""
    of_in, of_out = ObjectFifo(T, name="in"), ObjectFifo(T, name="out")
    mid = ObjectFifo(T, name="mid", depth=depth, **kw)
    w1 = Worker(copy_core, [of_in.cons(), mid.prod()], tile=t1)
    w2 = Worker(copy_core, [mid.cons(), of_out.prod()], tile=t2)

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)
    rt = Runtime(seq, [VEC, VEC, of_in.prod(), of_out.cons()])
    return Program(NPU1(), rt, workers=[w1, w2]).resolve_program()


def test_neighbour_fifo_is_one_pool_on_the_producer_tile():
    # requiresDMAs is false for one consumer on a tile sharing memory with the producer:
    # createObjectFifoElements makes ONE pool of the declared depth, on the producer's
    # tile (share_direction != 1), and no DMA channel is used.
    rp = two_workers(Tile(0, 2), Tile(0, 3), depth=3)
    assert pools(rp, "mid") == [((0, 2), "fifo 'mid' shared", 3)]
    assert not any("mid" in n for _, _, names in rp.plan.chans.values() for n in names)
    x = np.arange(1024, dtype=np.int32)
    assert np.array_equal(rp.run(x)[0], x)


def test_consumer_west_of_producer_holds_the_pool():
    # AIE2 cores reach their own, west, north and south memory: with the consumer directly
    # west only the producer's core reaches the consumer's memory (share_direction 1),
    # so the pool is created on the consumer's tile.
    rp = two_workers(Tile(1, 2), Tile(0, 2))
    assert pools(rp, "mid") == [((0, 2), "fifo 'mid' shared", 2)]


def test_same_tile_fifo_is_one_pool():
    # A fifo whose producer and consumer are the same core (isSharedMemory(a, a)) gets one
    # pool, not one per end.
    of_in, of_out = ObjectFifo(T, name="in"), ObjectFifo(T, name="out")
    loc = ObjectFifo(T, name="loc", depth=1)

    def core(ci, lp, lc, co):
        a, t = ci.acquire(1), lp.acquire(1)
        t[:] = a + 1
        lp.release(1)
        ci.release(1)
        t2, b = lc.acquire(1), co.acquire(1)
        b[:] = t2
        lc.release(1)
        co.release(1)
    w = Worker(core, [of_in.cons(), loc.prod(), loc.cons(), of_out.prod()], tile=Tile(0, 2))

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)
    rp = Program(NPU1Col1(), Runtime(seq, [VEC, VEC, of_in.prod(), of_out.cons()]),
                 workers=[w]).resolve_program()
    assert pools(rp, "loc") == [((0, 2), "fifo 'loc' shared", 1)]
    x = np.arange(1024, dtype=np.int32)
    assert np.array_equal(rp.run(x)[0], x + 1)


def test_access_pattern_forces_dma_and_two_pools():
    # requiresDMAs: a consumer that wants a data layout transform needs DMAs even between
    # neighbours, so each end gets its own pool.
    from common.emu.taplib import TensorAccessPattern as TAP
    for kw in (dict(from_stream_per_cons=TAP((16, 16)).T), dict(via_DMA=True)):
        rp = two_workers(Tile(0, 2), Tile(0, 3), **kw)
        assert sorted(pools(rp, "mid")) == [((0, 2), "fifo 'mid' prod", 2),
                                            ((0, 3), "fifo 'mid' cons", 2)], kw


def test_memtile_link_pools():
    # Memtile ends keep their declared depth (findObjectFifoSize), and a link allocates one
    # pool: a distribute (split) the input's, a join the output's, a forward the fifo with
    # the larger object (createObjectFifoElements).
    big = np.ndarray[(512,), np.dtype[np.int32]]
    of_in = ObjectFifo(big, name="in", depth=3)
    halves = of_in.cons().split([0, 256], obj_types=[T, T], names=["h0", "h1"], depths=[2, 2])
    outs = [ObjectFifo(T, name=f"o{i}", depth=2) for i in range(2)]
    joined = ObjectFifo(big, name="joined", depth=4)
    parts = joined.prod().join([0, 256], obj_types=[T, T], names=["j0", "j1"], depths=[2, 2])
    ws = [Worker(copy_core, [halves[i].cons(), parts[i].prod()], tile=Tile(i, 2))
          for i in range(2)]

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)
    big_vec = np.ndarray[(2048,), np.dtype[np.int32]]
    rp = Program(NPU1(), Runtime(seq, [big_vec, big_vec, of_in.prod(), joined.cons()]),
                 workers=ws).resolve_program()
    links = [(t, n) for t, w, n in pools(rp) if "link" in w]
    assert sorted(links) == [((0, 1), 3), ((0, 1), 4)]           # split: in x3, join: out x4
    assert tile_bytes(rp, (0, 1)) == (3 + 4) * 2048
    assert all(t[1] != 0 for t, _, _ in pools(rp))                # shim ends hold nothing
    x = np.arange(2048, dtype=np.int32)
    assert np.array_equal(rp.run(x)[0], x)
    del outs


def test_forward_link_pool_uses_larger_object():
    small = np.ndarray[(128,), np.dtype[np.int32]]
    of_in = ObjectFifo(small, name="in", depth=2)
    fwd = of_in.cons().forward(obj_type=T, depth=5, name="fwd")
    of_out = ObjectFifo(T, name="out")
    w = Worker(copy_core, [fwd.cons(), of_out.prod()], tile=Tile(0, 2))

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)
    rp = Program(NPU1Col1(), Runtime(seq, [VEC, VEC, of_in.prod(), of_out.cons()]),
                 workers=[w]).resolve_program()
    assert [(t, n, w) for t, w, n in pools(rp) if "link" in w] == \
        [((0, 1), 5, "forward link of 'in' -> 'fwd'")]            # fwd's 1 KiB objects x 5


def test_overflow_names_tile_fifos_counts_and_limit():
    # With the largest acquire 3, 'in' needs 4 x 16 KiB at (0, 2): refused, and the error
    # names the tile, each fifo with its buffer count and bytes, and the limit.
    big = np.ndarray[(4096,), np.dtype[np.int32]]

    def make():
        of_in, of_out = ObjectFifo(big, name="in", depth=3), ObjectFifo(big, name="out")
        w = Worker(window_core, [of_in.cons(), of_out.prod()], tile=Tile(0, 2))
        v = np.ndarray[(4096 * 4,), np.dtype[np.int32]]

        def seq(a, c, hi, ho):
            hi.fill(a)
            ho.drain(c, wait=True)
        return Program(NPU1Col1(), Runtime(seq, [v, v, of_in.prod(), of_out.cons()]),
                       workers=[w]).resolve_program()
    with pytest.raises(ResourceError) as e:
        make()
    msg = str(e.value)
    assert "compute tile (0, 2) needs 99328 bytes" in msg and "65536 bytes" in msg
    assert "fifo 'in' cons 4x16384 B" in msg and "fifo 'out' prod 2x16384 B" in msg


def test_v1_fill_drain_tile_keyword_places_shim_end():
    # v1.x rt.fill/rt.drain took the shim tile as tile= (and placement=): both are honoured.
    of_in, of_out = ObjectFifo(T, name="in"), ObjectFifo(T, name="out")
    w = Worker(copy_core, [of_in.cons(), of_out.prod()], tile=Tile(0, 2))
    rt = Runtime()
    with rt.sequence(VEC, VEC) as (a, c):
        rt.start(w)
        rt.fill(of_in.prod(), a, tile=Tile(1, 0))
        rt.drain(of_out.cons(), c, wait=True, placement=Tile(2, 0))
    rp = Program(NPU1(), rt).resolve_program()
    assert rp.plan.place[id(of_in._prod)] == (1, 0)
    assert rp.plan.place[id(rp.plan.sink_of[of_out])] == (2, 0)
    assert rp.plan.chans[(1, 0)][1] == 1 and rp.plan.chans[(2, 0)][0] == 1


def test_deadlock_names_each_worker_once():
    def core(ci, co):
        ci.acquire(2)
        ci.release(2)
    rp = one_worker(core, in_depth=2)
    with pytest.raises(DeadlockError) as e:
        rp.run(np.zeros(1024, np.int32))   # 'out' never gets an object
    msg = str(e.value)
    assert "  worker 'core' at tile (0, 2) waits for acquire(2)" in msg
    assert "worker 'worker" not in msg
