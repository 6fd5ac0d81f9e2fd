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


def _kernel_loop(calls: int, with_kernel: bool):
    t = np.ndarray[(16,), np.dtype[np.int32]]
    k = Kernel("emu_bench_noop", "noop.o", [t, t, np.int32])
    of_in, of_out = ObjectFifo(t, name="in"), ObjectFifo(t, name="out")

    def core(ci, co, kk):
        a, b = ci.acquire(1), co.acquire(1)
        if with_kernel:
            for i in range(calls):
                kk(a, b, i)
        else:
            for i in range(calls):
                pass
        ci.release(1)
        co.release(1)

    w = Worker(core, [of_in.cons(), of_out.prod(), k], while_true=False)

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [t, t, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=[w]).resolve_program()


def _host_kernel_loop(calls: int, with_kernel: bool):
    """A core calling the project's host kernel maxpool2x2_ui8 (2 x 8 channels, next to
    no work in C) ``calls`` times on the same buffers (or the same loop without it)."""
    row = np.ndarray[(16,), np.dtype[np.uint8]]
    half = np.ndarray[(8,), np.dtype[np.uint8]]
    k = Kernel("maxpool2x2_ui8", "npu_kernels.o", [row, row, half, np.int32, np.int32])
    of_in, of_out = ObjectFifo(row, name="in"), ObjectFifo(half, name="out")

    def core(ci, co, kk):
        a, b = ci.acquire(1), co.acquire(1)
        if with_kernel:
            for _ in range(calls):
                kk(a, a, b, 2, 8)
        else:
            for _ in range(calls):
                pass
        ci.release(1)
        co.release(1)

    w = Worker(core, [of_in.cons(), of_out.prod(), k], while_true=False)

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)

    rt = Runtime(seq, [row, half, of_in.prod(), of_out.cons()])
    return Program(NPU1Col1(), rt, workers=[w]).resolve_program()


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
