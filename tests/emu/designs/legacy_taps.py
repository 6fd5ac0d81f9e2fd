# Intermediate taplib and v1.x dims forms: TensorAccessPattern(dims) with default
# offset/sizes/strides, tile_sequence(tile_dim_order=...), the aie.helpers.taplib.tap
# submodule, a forward through a compute tile, a dims_to_stream list whose walk is shorter
# than the object (the DMA keeps stepping its outermost dimension) and a degenerate
# all-size-1 list (a linear copy).
import sys
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.device import AnyComputeTile, from_name
from aie.helpers.taplib.tap import TensorAccessPattern


def design(rows=8, cols=4):
    mat = np.ndarray[(rows, cols), np.dtype[np.int32]]
    obj = np.ndarray[(2 * cols * 2,), np.dtype[np.int32]]      # two 2 x cols blocks
    flat = np.ndarray[(rows * cols,), np.dtype[np.int32]]
    tap_t = TensorAccessPattern((rows, cols)).tile_sequence((rows, cols), tile_dim_order=[1, 0])[0]
    # one 2 x cols block read column-major; the walk is extended over both blocks
    blk = [(1, 2 * cols), (cols, 1), (2, cols)]
    of_t = ObjectFifo(mat, name="t")
    of_t2 = of_t.cons().forward(AnyComputeTile)
    of_b = ObjectFifo(obj, name="b")
    of_lin = ObjectFifo(obj, name="lin", dims_to_stream=blk)

    def copy(ci, co):
        a, b = ci.acquire(1), co.acquire(1)
        b[:] = a
        ci.release(1)
        co.release(1)

    w = Worker(copy, [of_b.cons(dims_from_stream=[(1, 2), (1, 1)]), of_lin.prod()])
    rt = Runtime()
    with rt.sequence(mat, mat, flat, flat) as (A, T, B, L):
        rt.start(w)
        rt.fill(of_t.prod(), A, tap_t)
        rt.drain(of_t2.cons(), T, wait=True)
        rt.fill(of_b.prod(), B)
        rt.drain(of_lin.cons(), L, wait=True)
    return Program(from_name(sys.argv[1] if len(sys.argv) > 1 else "npu"), rt).resolve_program()


if __name__ == "__main__":
    print(design())
