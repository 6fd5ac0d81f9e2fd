# v1.x API form: rt.sequence/start/fill/drain, GlobalBuffer RTP via inline_ops,
# barrier via set_barrier, placement=, SequentialPlacer, TensorTiler2D, ext.scf range.
import sys
import numpy as np
from aie.iron import (GlobalBuffer, Kernel, ObjectFifo, Program, Runtime, Worker,
                      WorkerRuntimeBarrier)
from aie.iron.placers import SequentialPlacer
from aie.iron.device import NPU1Col1, Tile
from aie.helpers.dialects.ext.scf import _for as range_
from aie.helpers.taplib import TensorTiler2D


def design(n=1024, tile_n=256):
    vec = np.ndarray[(n,), np.dtype[np.int32]]
    t_ty = np.ndarray[(tile_n,), np.dtype[np.int32]]
    add = Kernel("vadd_scaled_i32", "vadd.o", [t_ty, t_ty, t_ty, np.int32, np.int32])
    a_f, b_f, c_f = ObjectFifo(t_ty, name="a"), ObjectFifo(t_ty, name="b"), ObjectFifo(t_ty, name="c")
    rtp = GlobalBuffer(np.ndarray[(1,), np.dtype[np.int32]], name="scale", use_write_rtp=True)
    bar = WorkerRuntimeBarrier()

    def core(ka, kb, kc, k, r, barrier):
        barrier.wait_for_value(1)
        for _ in range_(n // tile_n):
            x, y, z = ka.acquire(1), kb.acquire(1), kc.acquire(1)
            k(x, y, z, r[0], tile_n)
            ka.release(1)
            kb.release(1)
            kc.release(1)

    w = Worker(core, [a_f.cons(), b_f.cons(), c_f.prod(), add, rtp, bar], placement=Tile(0, 2),
               while_true=False)
    tap = TensorTiler2D.simple_tiler((1, n), (1, n))[0]
    rt = Runtime()
    with rt.sequence(vec, vec, vec) as (A, B, C):
        rt.start(w)

        def set_rtp(buf):
            buf[0] = 3
        rt.inline_ops(set_rtp, [rtp])
        rt.set_barrier(bar, 1)
        rt.fill(a_f.prod(), A, tap)
        rt.fill(b_f.prod(), B)
        rt.drain(c_f.cons(), C, wait=True)
    return Program(NPU1Col1(), rt).resolve_program(SequentialPlacer())


if __name__ == "__main__":
    print(design())
