# one input fifo broadcast to two workers (different consumer depths); two outputs.
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.device import NPU1Col1


def design(n=256, obj=32):
    vec = np.ndarray[(n,), np.dtype[np.int32]]
    t = np.ndarray[(obj,), np.dtype[np.int32]]
    of_in = ObjectFifo(t, name="in", depth=2)
    o1, o2 = ObjectFifo(t, name="o1"), ObjectFifo(t, name="o2")

    def neg(ci, co):
        a, b = ci.acquire(1), co.acquire(1)
        b[:] = -a
        ci.release(1)
        co.release(1)

    def slow_sum(ci, co):
        # holds two objects at once: needs depth >= 2 on its side
        a = ci.acquire(2)
        b = co.acquire(2)
        b[0][:] = a[0] + a[1]
        b[1][:] = a[1] - a[0]
        ci.release(2)
        co.release(2)

    w1 = Worker(neg, [of_in.cons(), o1.prod()])
    w2 = Worker(slow_sum, [of_in.cons(depth=3), o2.prod()])

    def seq(a, b, c, hi, h1, h2):
        hi.fill(a)
        h1.drain(b, wait=True)
        h2.drain(c, wait=True)

    rt = Runtime(seq, [vec, vec, vec, of_in.prod(), o1.cons(), o2.cons()])
    return Program(NPU1Col1(), rt, workers=[w1, w2]).resolve_program()


if __name__ == "__main__":
    print(design())
