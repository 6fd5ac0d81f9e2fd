# RTP Buffer written by the sequence body, WorkerRuntimeBarrier; python kernel by symbol.
import numpy as np
from aie.iron import (Buffer, Kernel, ObjectFifo, Program, Runtime, Worker,
                      WorkerRuntimeBarrier)
from aie.iron.device import NPU2Col1
from aie.helpers.dialects.scf import if_, else_


def design(n=64, obj=16):
    vec = np.ndarray[(n,), np.dtype[np.int32]]
    t = np.ndarray[(obj,), np.dtype[np.int32]]
    scale = Kernel("scale_i32", "scale.o", [t, t, np.int32, np.int32])
    of_in, of_out = ObjectFifo(t, name="in"), ObjectFifo(t, name="out")
    rtp = Buffer(np.ndarray[(2,), np.dtype[np.int32]], name="rtp", use_write_rtp=True)
    bar = WorkerRuntimeBarrier()

    def core(ci, co, k, p, b):
        b.wait_for_value(1)
        for _ in range(n // obj):
            a, o = ci.acquire(1), co.acquire(1)
            with if_(p[1] > 0) as op:
                k(a, o, p[0], obj)
            with else_(op):
                o[:] = a
            ci.release(1)
            co.release(1)

    w = Worker(core, [of_in.cons(), of_out.prod(), scale, rtp, bar], while_true=False)

    def seq(a, c, factor, hi, ho):
        rtp[0] = factor
        rtp[1] = 1
        bar.set(1)
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [vec, vec, np.int32, of_in.prod(), of_out.cons()])
    return Program(NPU2Col1(), rt, workers=[w]).resolve_program()


if __name__ == "__main__":
    print(design())
