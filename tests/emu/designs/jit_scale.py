# iron.jit form: the generator builds the design from its tensor arguments, main() makes
# host tensors with iron.randint/iron.zeros_like, calls the design, checks and exits 0.
# Also: iron.CoreFunction (old ExternalFunction name), aie.iron.dtype, argparse options.
import argparse
import sys
import numpy as np
import aie.iron as iron
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.dtype import str_to_dtype


@iron.jit(is_placed=False)
def scale_add(x, y, out, factor=3):
    n, tile = x.numel(), 16
    vec = np.ndarray[(n,), np.dtype[x.dtype]]
    t_ty = np.ndarray[(tile,), np.dtype[x.dtype]]
    k = iron.CoreFunction("scale_i32", source_file="scale.cc",
                          arg_types=[t_ty, t_ty, np.int32, np.int32])
    fx, fy, fo = ObjectFifo(t_ty, name="x"), ObjectFifo(t_ty, name="y"), ObjectFifo(t_ty, name="o")

    def core(cx, cy, co, kern):
        for _ in range_(n // tile):
            a, b, c = cx.acquire(1), cy.acquire(1), co.acquire(1)
            kern(a, c, factor, tile)
            for i in range_(tile):
                c[i] = c[i] + b[i]
            cx.release(1)
            cy.release(1)
            co.release(1)

    w = Worker(core, [fx.cons(), fy.cons(), fo.prod(), k])
    rt = Runtime()
    with rt.sequence(vec, vec, vec) as (X, Y, O):
        rt.start(w)
        rt.fill(fx.prod(), X)
        rt.fill(fy.prod(), Y)
        rt.drain(fo.cons(), O, wait=True)
    return Program(iron.get_current_device(), rt).resolve_program()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--dtype", default="i32")
    args = p.parse_args()
    dt = str_to_dtype(args.dtype)
    x = iron.randint(0, 100, (args.n,), dtype=dt, device="npu")
    y = iron.arange(args.n, dtype=dt)
    out = iron.zeros_like(x)
    scale_add(x, y, out)
    ok = np.array_equal(out.numpy(), 3 * x.numpy() + y.numpy())
    print("PASS!" if ok else "FAIL")
    sys.exit(0 if ok else -1)


if __name__ == "__main__":
    main()
