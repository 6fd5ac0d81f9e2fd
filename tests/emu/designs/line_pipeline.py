# Line pipeline shaped like the vision examples: RGBA lines are broadcast from a memtile to
# a first worker and, through a deep forward (depth 7), to a last worker that also keeps
# a one-line fifo on its own tile. argv: width height. At 1920 pixels per line the last
# tile fits only as the compiler counts memory (largest acquire + 1, one pool per
# same-tile fifo); at 4096 it does not fit at all.
import sys

import numpy as np

from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col1, Tile

width = int(sys.argv[1]) if len(sys.argv) > 1 else 64
height = int(sys.argv[2]) if len(sys.argv) > 2 else 8
rgba = np.ndarray[(width * 4,), np.dtype[np.uint8]]
gray = np.ndarray[(width,), np.dtype[np.uint8]]
frame = np.ndarray[(width * height * 4,), np.dtype[np.uint8]]

of_in = ObjectFifo(rgba, name="in")
of_wide = of_in.cons(7).forward(depth=7, name="in_L2L1")
of_gray = ObjectFifo(gray, name="gray", depth=4)
of_self = ObjectFifo(rgba, name="self", depth=1)
of_out = ObjectFifo(rgba, name="out")


def to_gray(ci, co):
    x, y = ci.acquire(1), co.acquire(1)
    y[:] = x.reshape(-1, 4)[:, 0]
    ci.release(1)
    co.release(1)


def blend(cg, cw, sp, sc, co):
    g = cg.acquire(1)
    s = sp.acquire(1)
    s[:] = np.repeat(g, 4)
    cg.release(1)
    sp.release(1)
    a, b, y = sc.acquire(1), cw.acquire(1), co.acquire(1)
    y[:] = (a // 2) + (b // 2)
    sc.release(1)
    cw.release(1)
    co.release(1)


workers = [Worker(to_gray, [of_in.cons(), of_gray.prod()], tile=Tile(0, 2)),
           Worker(blend, [of_gray.cons(), of_wide.cons(), of_self.prod(), of_self.cons(),
                          of_out.prod()], tile=Tile(0, 5))]


def seq(a, c, hi, ho):
    hi.fill(a)
    ho.drain(c, wait=True)


rt = Runtime(seq, [frame, frame, of_in.prod(), of_out.cons()])
print(Program(NPU1Col1(), rt, workers=workers).resolve_program())
