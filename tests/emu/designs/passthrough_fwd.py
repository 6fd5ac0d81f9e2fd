# Passthrough through a memtile (forward) and one worker, newest API form.
import sys
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col1, NPU2


def design(n=4096, line=1024, dev="npu"):
    vec = np.ndarray[(n,), np.dtype[np.int32]]
    lt = np.ndarray[(line,), np.dtype[np.int32]]
    of_in = ObjectFifo(lt, name="in")
    of_mid = of_in.cons().forward(name="mid", obj_type=np.ndarray[(line // 2,), np.dtype[np.int32]])
    of_out = ObjectFifo(np.ndarray[(line // 2,), np.dtype[np.int32]], name="out", depth=2)

    def core(ci, co):
        for _ in range_(n // (line // 2)):
            a = ci.acquire(1)
            b = co.acquire(1)
            b[:] = a + 1
            ci.release(1)
            co.release(1)

    w = Worker(core, [of_mid.cons(), of_out.prod()])

    def seq(a, c, fill_h, drain_h):
        fill_h.fill(a)
        drain_h.drain(c, wait=True)

    rt = Runtime(seq, [vec, vec, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1() if dev == "npu" else NPU2(), rt, workers=[w]).resolve_program()


if __name__ == "__main__":
    print(design(int(sys.argv[1]) if len(sys.argv) > 1 else 4096))
