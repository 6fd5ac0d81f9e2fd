# Deliberately broken designs, selected by argv[1].
import sys
import numpy as np
from aie.iron import Buffer, Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.device import NPU1Col1, Tile

CASE = sys.argv[1] if len(sys.argv) > 1 else "deadlock"
vec = np.ndarray[(64,), np.dtype[np.int32]]
t16 = np.ndarray[(16,), np.dtype[np.int32]]


def simple(core=None, depth=2, obj=t16, tiles=(None,), extra=(), fill_tap=None, fill_n=None):
    of_in, of_out = ObjectFifo(obj, name="in", depth=depth), ObjectFifo(obj, name="out", depth=depth)

    def default_core(ci, co, *rest):
        a, b = ci.acquire(1), co.acquire(1)
        b[:] = a
        ci.release(1)
        co.release(1)

    workers = [Worker(core or default_core, [of_in.cons(), of_out.prod(), *extra], tile=tl)
               for tl in tiles[:1]]
    for tl in tiles[1:]:
        workers.append(Worker(lambda: None, [], tile=tl))
    in_ty = vec if fill_n is None else np.ndarray[(fill_n,), np.dtype[np.int32]]

    def seq(a, c, hi, ho):
        hi.fill(a, fill_tap)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [in_ty, vec, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=workers).resolve_program()


def make():
    if CASE == "deadlock":       # consumer wants 2 objects per output but only 1 exists at end
        def core(ci, co):
            a = ci.acquire(2)
            b = co.acquire(1)
            b[:] = a[0] + a[1]
            ci.release(2)
            co.release(1)
        return simple(core, fill_n=48)
    if CASE == "memory":         # 2 x 2 x 16 KiB fifo buffers + stack > 64 KiB
        big = np.ndarray[(4096,), np.dtype[np.int32]]
        return simple(obj=big, depth=2, fill_n=4096 * 4)
    if CASE == "two_workers":
        return simple(tiles=(Tile(0, 2), Tile(0, 2)))
    if CASE == "off_grid":
        return simple(tiles=(Tile(3, 2),))
    if CASE == "acquire":        # acquire(3) on a depth-2 consumer
        def core(ci, co):
            ci.acquire(3)
        return simple(core)
    if CASE == "release":
        def core(ci, co):
            ci.acquire(1)
            ci.release(2)
        return simple(core)
    if CASE == "fill_size":      # 40 elements into 16-element objects
        return simple(fill_n=40)
    if CASE == "kernel_raises":
        k = Kernel("boom_kernel", "boom.o", [t16])

        def core(ci, co, kk):
            a = ci.acquire(1)
            kk(a)
        return simple(core, extra=[k])
    if CASE == "missing_kernel":
        k = Kernel("no_such_symbol_xyz", "x.o", [t16])

        def core(ci, co, kk):
            kk(ci.acquire(1))
        return simple(core, extra=[k])
    if CASE == "channels":       # 3 input fifos into one compute tile (2 S2MM channels)
        fs = [ObjectFifo(t16, name=f"i{i}") for i in range(3)]
        of_out = ObjectFifo(t16, name="out")
        w = Worker(lambda a, b, c, o: None, [f.cons() for f in fs] + [of_out.prod()])

        def seq(a, c, *hs):
            pass
        rt = Runtime(seq, [vec, vec] + [f.prod() for f in fs] + [of_out.cons()])
        return Program(NPU1Col1(), rt, workers=[w]).resolve_program()
    raise SystemExit(f"unknown case {CASE}")


if __name__ == "__main__":
    print(make())
