# Two-stage pipeline for the timeline: shim -> 'stage1' (0, 2) -> 'stage2' (0, 4) -> shim,
# each stage one 'tl_mac' kernel call per 256-element object. The design registers its own
# host kernel (a stand-in that adds 1 and declares 256 * 64 MACs per call).
import sys

import numpy as np

from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.device import NPU1Col1, Tile
from common.emu import register_kernel

N_OBJ = int(sys.argv[1]) if len(sys.argv) > 1 else 4
t = np.ndarray[(256,), np.dtype[np.int32]]
vec = np.ndarray[(256 * N_OBJ,), np.dtype[np.int32]]
MACS = 256 * 64

register_kernel("tl_mac", lambda a, b: np.add(a, 1, out=b), macs=lambda args: MACS)
k = Kernel("tl_mac", "tl_mac.o", [t, t])
of_in, of_mid, of_out = (ObjectFifo(t, name=n) for n in ("in", "mid", "out"))


def stage(ci, co, kern):
    a, b = ci.acquire(1), co.acquire(1)
    kern(a, b)
    ci.release(1)
    co.release(1)


workers = [Worker(stage, [of_in.cons(), of_mid.prod(), k], tile=Tile(0, 2)),
           Worker(stage, [of_mid.cons(), of_out.prod(), k], tile=Tile(0, 4))]


def seq(a, c, hi, ho):
    hi.fill(a)
    ho.drain(c, wait=True)


rt = Runtime(seq, [vec, vec, of_in.prod(), of_out.cons()])
print(Program(NPU1Col1(), rt, workers=workers).resolve_program())
