# split into 2 workers through a memtile, join the results back; new form.
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.device import NPU1Col1


def design(n=512, obj=128, k=2):
    vec = np.ndarray[(n,), np.dtype[np.int16]]
    big = np.ndarray[(obj,), np.dtype[np.int16]]
    part = np.ndarray[(obj // k,), np.dtype[np.int16]]
    of_in = ObjectFifo(big, name="in")
    of_out = ObjectFifo(big, name="out")
    ins = of_in.cons().split([i * obj // k for i in range(k)], obj_types=[part] * k,
                             names=[f"in{i}" for i in range(k)])
    outs = of_out.prod().join([i * obj // k for i in range(k)], obj_types=[part] * k,
                              names=[f"out{i}" for i in range(k)])
    workers = []
    for i in range(k):
        def core(ci, co, i=i):
            a = ci.acquire(1)
            b = co.acquire(1)
            b[:] = a * (i + 2)
            ci.release(1)
            co.release(1)
        workers.append(Worker(core, [ins[i].cons(), outs[i].prod()]))

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [vec, vec, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=workers).resolve_program()


if __name__ == "__main__":
    print(design())
