# 3-row sliding window (3x3 filter style line buffer): acquire(2) / acquire(3)+release(1) /
# acquire(2)+release(2); out[r] = rows r-1 + r + r+1 (zero outside).
import sys
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col1


def design(h=8, w=16):
    img = np.ndarray[(h, w), np.dtype[np.int32]]
    line = np.ndarray[(w,), np.dtype[np.int32]]
    of_in = ObjectFifo(line, name="lines", depth=3)
    of_out = ObjectFifo(line, name="out", depth=2)

    def core(ci, co):
        rows = ci.acquire(2)
        o = co.acquire(1)
        o[:] = rows[0] + rows[1]
        co.release(1)
        for _ in range_(h - 2):
            rows = ci.acquire(3)
            o = co.acquire(1)
            o[:] = rows[0] + rows[1] + rows[2]
            co.release(1)
            ci.release(1)
        rows = ci.acquire(2)
        o = co.acquire(1)
        o[:] = rows[0] + rows[1]
        co.release(1)
        ci.release(2)

    wk = Worker(core, [of_in.cons(), of_out.prod()])

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [img, img, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=[wk]).resolve_program()


if __name__ == "__main__":
    print(design(*[int(x) for x in sys.argv[1:3]]))
