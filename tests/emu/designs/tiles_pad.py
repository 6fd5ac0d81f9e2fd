# fill by a tile walk (TaskGroup, several fills), passthrough worker, producer to_stream
# with padding into a larger consumer object type, drained linearly.
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, TaskGroup, Worker
from aie.iron.device import NPU1Col1
from aie.helpers.taplib import TensorAccessPattern


def design(n=16, t=4):
    mat = np.ndarray[(n, n), np.dtype[np.int32]]
    ntile = (n // t) ** 2
    out_ty = np.ndarray[(ntile * (t + 2) ** 2,), np.dtype[np.int32]]
    tile_ty = np.ndarray[(t, t), np.dtype[np.int32]]
    padded_ty = np.ndarray[(t + 2, t + 2), np.dtype[np.int32]]
    of_in = ObjectFifo(np.ndarray[(t * t,), np.dtype[np.int32]], name="in")
    pad_tap = TensorAccessPattern.full((t, t)).pad([(1, 1), (1, 1)])
    of_out = ObjectFifo(tile_ty, name="out", to_stream=pad_tap, consumer_obj_type=padded_ty,
                        pad_value=-1)

    def core(ci, co):
        a, b = ci.acquire(1), co.acquire(1)
        b[:] = a.reshape(t, t)
        ci.release(1)
        co.release(1)

    w = Worker(core, [of_in.cons(), of_out.prod()])
    grid = TensorAccessPattern.full((n, n)).tile((t, t))

    def seq(a, c, hi, ho):
        tg = TaskGroup()
        for step in grid:
            hi.fill(a, step, group=tg)
        ho.drain(c, wait=True, group=tg)
        tg.finish()

    rt = Runtime(seq, [mat, out_ty, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=[w]).resolve_program()


if __name__ == "__main__":
    print(design())
