# The LeNet data-movement pattern for the timeline, small: a memtile forward regroups ROWS
# row objects into one larger vector object (input depth 2 < ROWS: the first rows must
# leave before the last arrive), and a weight blob split at the memtile whose parts the
# cores hold for a whole batch of B items (argv[1], default 2).
#   shim -> 'x' (ROW) -> stage1 (0, 2) -> 'row' -> memtile forward -> 'vec' (ROWS x ROW)
#        -> stage2 (0, 4) -> 'y' (ROW) -> shim
# stage1: row = x + w1; stage2: y = sum of the vector's rows + w2 (own host kernels).
import sys

import numpy as np

from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col1, Tile
from common.emu import register_kernel

B = int(sys.argv[1]) if len(sys.argv) > 1 else 2
ROW, ROWS = 16, 5
row_t = np.ndarray[(ROW,), np.dtype[np.int32]]
vec_t = np.ndarray[(ROW * ROWS,), np.dtype[np.int32]]
blob_t = np.ndarray[(2 * ROW,), np.dtype[np.int32]]

register_kernel("rg_row", lambda a, w, o: np.add(a, w, out=o), macs=lambda args: 64 * ROW)
register_kernel("rg_vec", lambda v, w, o: np.add(v.reshape(ROWS, ROW).sum(0), w, out=o),
                macs=lambda args: 64 * ROW * ROWS)
k_row = Kernel("rg_row", "rg.o", [row_t, row_t, row_t])
k_vec = Kernel("rg_vec", "rg.o", [vec_t, row_t, row_t])

x = ObjectFifo(row_t, depth=2, name="x")
row = ObjectFifo(row_t, depth=2, name="row")
vec = row.cons().forward(tile=Tile(0, 1), obj_type=vec_t, depth=2, name="vec")
y = ObjectFifo(row_t, depth=2, name="y")
wts = ObjectFifo(blob_t, depth=1, name="wts")
w1, w2 = wts.cons().split([0, ROW], tile=Tile(0, 1), depths=[1, 1], obj_types=[row_t, row_t],
                          names=["w1", "w2"])


def stage1(of_w, of_x, of_row, k):
    w = of_w.acquire(1)
    for _ in range_(B * ROWS):
        a, o = of_x.acquire(1), of_row.acquire(1)
        k(a, w, o)
        of_x.release(1)
        of_row.release(1)
    of_w.release(1)


def stage2(of_w, of_v, of_y, k):
    w = of_w.acquire(1)
    for _ in range_(B):
        v, o = of_v.acquire(1), of_y.acquire(1)
        k(v, w, o)
        of_v.release(1)
        of_y.release(1)
    of_w.release(1)


workers = [Worker(stage1, [w1.cons(), x.cons(), row.prod(), k_row], tile=Tile(0, 2)),
           Worker(stage2, [w2.cons(), vec.cons(), y.prod(), k_vec], tile=Tile(0, 4))]


def seq(xs, ws, ys, hx, hw, hy):
    hw.fill(ws)
    hx.fill(xs)
    hy.drain(ys, wait=True)


rt = Runtime(seq, [np.ndarray[(B * ROWS * ROW,), np.dtype[np.int32]], blob_t,
                   np.ndarray[(B * ROW,), np.dtype[np.int32]], x.prod(), wts.prod(),
                   y.cons()])
print(Program(NPU1Col1(), rt, workers=workers).resolve_program())
