"""Emulator overhead benchmarks: ``run() -> list[dict]`` rows {name, value, unit, note}."""
from __future__ import annotations


import numpy as np

from common.bench import best_time

from .device import NPU1Col1
from .fifo import ObjectFifo
from .kernel import Kernel, register_kernel, unregister_kernel
from .program import Program
from .runtime import Runtime
from .worker import Worker


def _chain(n_obj: int, workers: int, obj: int = 16):
    """``workers`` copy workers in a chain of depth-2 fifos, moving ``n_obj`` objects."""
    t = np.ndarray[(obj,), np.dtype[np.int32]]
    vec = np.ndarray[(n_obj * obj,), np.dtype[np.int32]]
    fifos = [ObjectFifo(t, name=f"f{i}") for i in range(workers + 1)]

    def core(ci, co):
        for _ in range(n_obj):
            a = ci.acquire(1)
            b = co.acquire(1)
            b[0] = a[0]
            ci.release(1)
            co.release(1)

    ws = [Worker(core, [fifos[i].cons(), fifos[i + 1].prod()], while_true=False)
          for i in range(workers)]

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [vec, vec, fifos[0].prod(), fifos[-1].cons()])
    return Program(NPU1Col1(), rt, workers=ws).resolve_program()


_I32x16 = np.ndarray[(16,), np.dtype[np.int32]]


def _kernel_loop(calls: int, with_kernel: bool,
                 kernel=("emu_bench_noop", "noop.o", [_I32x16, _I32x16, np.int32]),
                 call=lambda k, a, b, i: k(a, b, i)):
    """A core calling ``kernel`` (name, object file, argument types: the first is the input
    buffer's, the last array type the output's) ``calls`` times as ``call(kernel, in
    buffer, out buffer, i)``, or the same loop without the call. Default: a no-op
    kernel(int32[16], int32[16], int32)."""
    name, obj, arg_types = kernel
    k = Kernel(name, obj, arg_types)
    t_in, t_out = arg_types[0], [t for t in arg_types if t is not np.int32][-1]
    of_in, of_out = ObjectFifo(t_in, name="in"), ObjectFifo(t_out, name="out")

    def core(ci, co, kk):
        a, b = ci.acquire(1), co.acquire(1)
        if with_kernel:
            for i in range(calls):
                call(kk, a, b, i)
        else:
            for i in range(calls):
                pass
        ci.release(1)
        co.release(1)

    w = Worker(core, [of_in.cons(), of_out.prod(), k], while_true=False)

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [t_in, t_out, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=[w]).resolve_program()


# the project's host kernel maxpool2x2_ui8 on 2 x 8 channels: next to no work in C
_U8x16, _U8x8 = np.ndarray[(16,), np.dtype[np.uint8]], np.ndarray[(8,), np.dtype[np.uint8]]
_MAXPOOL = ("maxpool2x2_ui8", "npu_kernels.o", [_U8x16, _U8x16, _U8x8, np.int32, np.int32])


def _host_kernel_loop(calls: int, with_kernel: bool):
    """A core calling maxpool2x2_ui8 ``calls`` times on the same buffers."""
    return _kernel_loop(calls, with_kernel, _MAXPOOL, lambda k, a, b, i: k(a, a, b, 2, 8))


def run() -> list[dict]:
    rows = []
    n = 2000
    rp = _chain(n, 1)
    data = np.arange(n * 16, dtype=np.int32)
    t = best_time(lambda: rp.run(data))
    rows.append(dict(name="emu_acquire_release_overhead", value=round(t / (4 * n) * 1e6, 2),
                     unit="us/op", note=f"passthrough worker, {n} objects x (2 acquire + 2 "
                     f"release), whole run incl. host fill/drain, best of 3"))
    rc = _chain(n, 2)
    t = best_time(lambda: rc.run(data))
    rows.append(dict(name="emu_acquire_release_overhead_2workers", value=round(t / (8 * n) * 1e6, 2),
                     unit="us/op", note=f"two workers in a depth-2 chain (party hand-offs), {n} "
                     f"objects x 8 acquire/release ops, best of 3"))
    rp1 = _chain(1, 1)
    small = np.arange(16, dtype=np.int32)
    t1 = best_time(lambda: [rp1.run(small) for _ in range(20)]) / 20
    rows.append(dict(name="emu_run_startup", value=round(t1 * 1e3, 3), unit="ms/run",
                     note="one-object passthrough run (setup, scheduling, teardown)"))
    register_kernel("emu_bench_noop", lambda a, b, i: None)
    try:
        calls = 20000
        rk, rb = _kernel_loop(calls, True), _kernel_loop(calls, False)
        x = np.zeros(16, np.int32)
        tk = best_time(lambda: rk.run(x))
        tb = best_time(lambda: rb.run(x))
        rows.append(dict(name="emu_kernel_call_overhead", value=round((tk - tb) / calls * 1e6, 2),
                         unit="us/call", note="no-op Python kernel with 2 array args + 1 int32 "
                         "scalar, minus the same loop without the call"))
    finally:
        unregister_kernel("emu_bench_noop")
    calls = 20000
    rk, rb = _host_kernel_loop(calls, True), _host_kernel_loop(calls, False)
    x, y = np.zeros(16, np.uint8), np.zeros(8, np.uint8)
    tk = best_time(lambda: rk.run(x, y))
    tb = best_time(lambda: rb.run(x, y))
    rows.append(dict(name="emu_host_kernel_call_overhead", value=round((tk - tb) / calls * 1e6, 2),
                     unit="us/call", note="project host kernel (maxpool2x2_ui8, 3 arrays + 2 "
                     "int32, next to no C work) repeating a checked call: emulator + ctypes "
                     "cost per call"))
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
