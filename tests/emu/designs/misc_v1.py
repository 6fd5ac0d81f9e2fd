# v1.x keyword forms: dims_to_stream / dims_from_stream_per_cons lists, an idle worker
# (core_fn=None), a worker that never gets data (no error), a ctypes-able kernel symbol.
import numpy as np
from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.device import NPU1Col2, Tile


def design():
    t = np.ndarray[(4, 4), np.dtype[np.int32]]
    vec = np.ndarray[(16,), np.dtype[np.int32]]
    flat = np.ndarray[(16,), np.dtype[np.int32]]
    k = Kernel("emu_test_add1", "add1.o", [flat, np.int32])
    # producer streams the transpose of each object
    of_in = ObjectFifo(t, depth=2, name="in")
    of_out = ObjectFifo(t, 2, "out", dims_to_stream=[(4, 1), (4, 4)])
    starved = ObjectFifo(t, name="starved")

    def core(ci, co, kk):
        a, b = ci.acquire(1), co.acquire(1)
        b[:] = a
        kk(b, 16)
        ci.release(1)
        co.release(1)

    def never(ci):
        ci.acquire(1)

    w = Worker(core, [of_in.cons(), of_out.prod(), k], placement=Tile(1, 3))
    w2 = Worker(never, [starved.cons()])
    idle = Worker(None)
    rt = Runtime()
    with rt.sequence(vec, vec) as (A, C):
        rt.start(w, w2, idle)
        rt.fill(of_in.prod(), A)
        rt.drain(of_out.cons(), C, wait=True)
    return Program(NPU1Col2(), rt).resolve_program()


if __name__ == "__main__":
    print(design())
