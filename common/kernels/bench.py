"""Host-kernel throughput at the conv2_x shapes vs a float32 torch convolution.

``run()`` returns rows ``{"name", "value", "unit", "note"}``. Each kernel is timed over
a whole 32x32 image (32 row calls through :func:`host.host_kernel_table`, buffers
preallocated, best of several repeats) and compared with ``torch.nn.functional.conv2d``
on float32 of the same shape in the same run, both on one thread
(``torch.set_num_threads(1)``; the host kernels are single-threaded per call).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from common.bench import best_time

from .. import layouts
from . import host

W = H = 32
_REPEATS = 7


def _best(fn: Callable[[], None], repeats: int = _REPEATS) -> float:
    return best_time(fn, repeats)


def _rand(rng, shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def _blob(rng, o, i, k):
    return layouts.pack_conv_params(_rand(rng, (o, i, k, k), np.int8),
                                    rng.integers(-5000, 5000, size=o).astype(np.int32))


def _cases(rng):
    """(name, MACs per image, host image fn, torch conv shapes [(ic, oc, k)])."""
    t = host.host_kernel_table()
    rows8 = lambda c, dt: [_rand(rng, (c // 8, W, 8), dt) for _ in range(H)]  # noqa: E731
    out = lambda c: np.empty((c // 8, W, 8), np.uint8)                         # noqa: E731
    cases = []

    x0, p, o = rows8(64, np.int8), _blob(rng, 64, 64, 1), out(64)
    f = t["conv2dk1_i8_ui8"]
    cases.append(("conv2dk1_i8_ui8 64->64 (block 0 conv1)", W * H * 64 * 64,
                  lambda: [f(r, p, o, W, 64, 64, 10, 0) for r in x0], [(64, 64, 1)]))

    x1, p1, o1 = rows8(256, np.uint8), _blob(rng, 64, 256, 1), out(64)
    f1 = t["conv2dk1_ui8_ui8"]
    cases.append(("conv2dk1_ui8_ui8 256->64 (blocks 1-2 conv1)", W * H * 256 * 64,
                  lambda: [f1(r, p1, o1, W, 256, 64, 12, 0) for r in x1], [(256, 64, 1)]))

    x3, p3, o3 = rows8(64, np.uint8), _blob(rng, 64, 64, 3), out(32)
    f3 = t["conv2dk3_ui8"]

    def k3():
        for y in range(H):
            border = 0 if y == 0 else (2 if y == H - 1 else 1)
            f3(x3[max(y - 1, 0)], x3[y], x3[min(y + 1, H - 1)], p3, o3, W, 64, 32, 64,
               border, 12, 0, 32)
    cases.append(("conv2dk3_ui8 64->32 of 64 (oc_offset 32, one 3x3 core)",
                  W * H * 9 * 64 * 32, k3, [(64, 32, 3)]))

    a, b = rows8(32, np.uint8), rows8(32, np.uint8)
    sk, ps, os_ = rows8(256, np.uint8), _blob(rng, 256, 64, 1), out(256)
    fs = t["conv2dk1_skip_ui8"]
    cases.append(("conv2dk1_skip_ui8 64->256 + add (blocks 1-2)", W * H * 64 * 256,
                  lambda: [fs(a[y], b[y], ps, os_, sk[y], W, 64, 256, 10, 0, 1, 0)
                           for y in range(H)], [(64, 256, 1)]))

    ski = rows8(64, np.int8)
    pi = np.concatenate([_blob(rng, 256, 64, 1), _blob(rng, 256, 64, 1)])
    fi = t["conv2dk1_skip_init_ui8"]
    cases.append(("conv2dk1_skip_init_ui8 64->256 + proj 64->256 + add (block 0)",
                  2 * W * H * 64 * 256,
                  lambda: [fi(a[y], b[y], pi, os_, ski[y], W, 64, 256, 64, 10, -1, 10, 0)
                           for y in range(H)], [(64, 256, 1), (64, 256, 1)]))
    xp = rows8(64, np.uint8)
    pp = np.concatenate([_blob(rng, 64, 64, 1), _blob(rng, 256, 64, 1)])
    o1, op_ = out(64), np.zeros((256 // 8, W, 8), np.int8)
    fp = t["conv2dk1_proj_ui8"]
    cases.append(("conv2dk1_proj_ui8 64->64 + proj 64->256 (block 0 conv1 core)",
                  W * H * 64 * (64 + 256),
                  lambda: [fp(xp[y], pp, o1, op_, W, 64, 64, 256, 10, 10, 0) for y in range(H)],
                  [(64, 64, 1), (64, 256, 1)]))
    return cases


def _torch_fn(shapes):
    import torch
    convs = [(torch.randn(1, ic, H, W), torch.randn(oc, ic, k, k), k // 2)
             for ic, oc, k in shapes]

    def fn():
        with torch.no_grad():
            for x, w, pad in convs:
                torch.nn.functional.conv2d(x, w, padding=pad)
    return fn


def run() -> list[dict]:
    """Benchmark rows: host GMAC/s, torch GMAC/s and host/torch ratio per kernel."""
    import torch
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = {}
        for name, macs, host_fn, shapes in _cases(rng):
            th, tt = _best(host_fn), _best(_torch_fn(shapes))
            times[name.split()[0]] = (th, tt)
            sym = name.split()[0]
            rows.append({"name": f"host_kernel.{sym}", "value": round(macs / th / 1e9, 2),
                         "unit": "GMAC/s",
                         "note": f"{name}; 32x32 image as 32 row calls via host_kernel_table, "
                                 f"{th * 1e3:.3f} ms"})
            rows.append({"name": f"torch_f32.{sym}", "value": round(macs / tt / 1e9, 2),
                         "unit": "GMAC/s",
                         "note": f"torch conv2d float32 same shape, 1 thread, "
                                 f"{tt * 1e3:.3f} ms"})
            rows.append({"name": f"ratio.{sym}", "value": round(tt / th, 3), "unit": "x",
                         "note": "host kernel speed / torch float32 speed (>1: host faster)"})
        # one conv2_x image = block 0 + blocks 1, 2 (3x3 runs twice: two halves of OC)
        def img(i):
            t = lambda k: times[k][i]  # noqa: E731
            return (t("conv2dk1_i8_ui8") + 2 * t("conv2dk3_ui8") + t("conv2dk1_skip_init_ui8")
                    + 2 * (t("conv2dk1_ui8_ui8") + 2 * t("conv2dk3_ui8")
                           + t("conv2dk1_skip_ui8")))
        rows.append({"name": "host_kernel.conv2x_image", "value": round(img(0) * 1e3, 3),
                     "unit": "ms", "note": "sum of kernel times for one 218 M MAC conv2_x "
                                           "image (3 blocks), single thread"})
        rows.append({"name": "torch_f32.conv2x_image", "value": round(img(1) * 1e3, 3),
                     "unit": "ms", "note": "same convs in torch float32, 1 thread "
                                           "(no add/ReLU/requant)"})
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['name']:<40} {r['value']:>10} {r['unit']:<7} {r['note']}")
