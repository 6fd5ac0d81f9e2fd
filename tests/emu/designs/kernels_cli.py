# Current upstream design shape: @iron.jit generator, a kernel from aie.iron.kernels,
# StreamDims annotations, aie.extras scalars, the hostruntime CLI helpers and assert_pass.
import argparse

import numpy as np

import aie.iron as iron
from aie.extras import types as T
from aie.extras.dialects import arith
from aie.iron import CompileTime, In, ObjectFifo, Out, Program, Runtime, StreamDims, Worker, kernels
from aie.iron.controlflow import range_
from aie.utils.hostruntime.argparse import add_compile_args, add_trace_arg, device_from_args
from aie.utils.hostruntime.cli import run_design_cli
from aie.utils.trace import TraceConfig
from aie.utils.verify import assert_pass


@iron.jit(aiecc_flags=["--alloc-scheme=basic-sequential"])
def scale_design(a: In, c: Out, f: In, *, n: CompileTime[int] = 256, tile: CompileTime[int] = 64,
                 factor: CompileTime[int] = 3):
    vec = np.ndarray[(n,), np.dtype[np.int32]]
    t = np.ndarray[(tile,), np.dtype[np.int32]]
    k = kernels.scale(tile_size=tile, dtype=np.int32)
    dims: StreamDims | None = None
    of_in = ObjectFifo(t, name="in", dims_to_stream=dims)
    of_out = ObjectFifo(t, name="out")
    of_f = ObjectFifo(np.ndarray[(1,), np.dtype[np.int32]], name="factor", depth=1)

    def core(ci, co, cf, kern):
        f = cf.acquire(1)
        count = arith.index_cast(n // tile, to=T.i32())
        for _ in range_(count):
            x, y = ci.acquire(1), co.acquire(1)
            kern(x, y, f, arith.trunci(T.i16(), tile))
            ci.release(1)
            co.release(1)
        cf.release(1)

    w = Worker(core, [of_in.cons(), of_out.prod(), of_f.cons(), k])

    def seq(x, y, fv, hi, ho, hf):
        hf.fill(fv)
        hi.fill(x)
        ho.drain(y, wait=True)

    rt = Runtime(seq, [vec, vec, np.ndarray[(1,), np.dtype[np.int32]], of_in.prod(),
                       of_out.cons(), of_f.prod()])
    return Program(iron.get_current_device(), rt, workers=[w]).resolve_program()


def main():
    p = argparse.ArgumentParser()
    add_compile_args(p)
    add_trace_arg(p)
    p.add_argument("-n", type=int, default=256)
    opts = p.parse_args()
    TraceConfig(trace_size=opts.trace_size)

    def run_and_verify(o):
        a = iron.arange(o.n, dtype=np.int32)
        c = iron.zeros(o.n, dtype=np.int32)
        f = iron.full((1,), 3, dtype=np.int32)
        scale_design(a, c, f, n=o.n)
        assert_pass(c.numpy(), a.numpy() * 3, fail_msg="scale mismatch")

    run_design_cli(scale_design, opts, compile_kwargs=lambda o: dict(n=o.n),
                   run_and_verify=run_and_verify, device=device_from_args)


if __name__ == "__main__":
    main()
