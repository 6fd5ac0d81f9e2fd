#!/usr/bin/env python3
"""IRON design of the whole LeNet-5: B images per call, only the argmax on the host.

    python aie2.py [npu|npu2] (--bundle BUNDLE.npz | --random-seed S [--channels 1|3]
                               [--rounding half_even|half_up]) [--batch B]

With mlir-aie installed this prints the MLIR module; without it the project's emulator
runs this same file (python -m common.emu lenet_npu/aie2.py npu --random-seed 0).

Five compute tiles, one per layer, one image after the other:
    conv1 + pool  5x5 conv (C_in -> 6, padded to 8) + ReLU, 2x2 max pool   rows of 28 / 14
    conv2 + pool  5x5 conv (6 -> 16) + ReLU, 2x2 max pool                   rows of 10 / 5
    fc1           400 -> 120 + ReLU (48 KB of weights: fits one tile's 64 KB)
    fc2           120 -> 84 (padded 88) + ReLU
    fc3           88 -> 16 (10 used): int32 accumulators + bias = the logits
The conv cores slide a 5-row window over their input rows (absolute acquire counting;
padding rows at the image border are masked, not sent) and pool pairs of conv output rows
kept in two local row buffers. The five pool2 rows ([16/8][5][8] each) are regrouped by a
memtile forward into one 400-byte vector: the YCXC8 image of the 16x5x5 map, the input
order of fc1's weights (lenet_npu.stage documents every device layout).
Weights: one int8 blob (IntLeNet.weight_blob: the five layer blobs back to back) enters
once per call through one shim channel and is split at a memtile; every core acquires its
part once, streams the B images, then releases it, so a call pays the weight transfer and
the host dispatch once for B images.
Runtime parameters: one int32[16] Buffer per core written by the runtime sequence from the
RTP table (slot 0 shift, slot 1 rounding code); cores read them after their weights have
arrived, i.e. after the sequence wrote them.

Runtime sequence arguments: images uint8 (B x [H][1][W][8]), weights int8 (the blob),
logits int32 (B x 16).
"""
from __future__ import annotations

import argparse

import numpy as np
from aie.iron import Buffer, Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col2, NPU2, Tile

from common.layouts import pad8
from common.quant import SHIFT_MAX, SHIFT_MIN
from lenet_npu import stage

KERNEL_OBJ = "npu_kernels.o"   # all project kernels, one archive (see ptq_conv2x/Makefile)
DEFAULT_BATCH = 8
_SHAPES = stage.layer_shapes(1)   # channel counts and fc sizes (all but conv1's input)
C1 = pad8(_SHAPES["conv1"][0])    # conv1 output channels as stored (6 -> 8)
C2 = pad8(_SHAPES["conv2"][0])    # 16
FC = [(pad8(_SHAPES[n][1]), pad8(_SHAPES[n][0])) for n in ("fc1", "fc2", "fc3")]  # (IN, OUT)


class LeNetDesignError(ValueError):
    """Bad design arguments or bundle content."""


def vec_ty(n: int, dtype) -> type:
    return np.ndarray[(n,), np.dtype[dtype]]


def window_plan(h: int, pad: int) -> list[tuple[int, int, int, int]]:
    """Schedule of a 5-row window over ``h`` input rows with ``pad`` zero rows above and
    below, one entry per conv output row: (n, row_mask, k0, release): hold the n window
    rows inside the image (acquire(n), oldest first), which fill window slots k0..k0+n-1
    (row_mask: the conv2dk5 bit per slot), then release ``release`` rows. The last
    output row releases everything still held, so each image row is released once."""
    hout = h + 2 * pad - 4
    plan = []
    for yo in range(hout):
        lo, hi = max(0, yo - pad), min(h - 1, yo - pad + 4)
        mask = sum(1 << k for k in range(5) if 0 <= yo - pad + k < h)
        nxt = max(0, yo + 1 - pad) if yo + 1 < hout else hi + 1
        plan.append((hi - lo + 1, mask, lo - (yo - pad), nxt - lo))
    return plan


def conv_pool_image(of_in, of_out, conv_k, pool_k, w, rtp, rows, h: int, win: int,
                    ic: int, oc: int, pad: int):
    """One image through a conv5x5 + pool core: conv output rows in pairs into the local
    ``rows`` buffers, each pair pooled into one output row. Head and tail pairs (border
    windows) are unrolled; the steady pairs run in one ``range_`` loop."""
    plan = window_plan(h, pad)
    wout = win + 2 * pad - 4

    def conv_row(step, dst):
        n, mask, k0, release = step
        held = of_in.acquire(n)
        held = [held] if n == 1 else held
        # slots outside the image get any valid row: the kernel does not read them
        lines = [held[k - k0] if (mask >> k) & 1 else held[0] for k in range(5)]
        conv_k(*lines, w, dst, win, ic, oc, pad, mask, rtp[0], rtp[1])
        if release:
            of_in.release(release)

    def pair(steps):
        conv_row(steps[0], rows[0])
        conv_row(steps[1], rows[1])
        o = of_out.acquire(1)
        pool_k(rows[0], rows[1], o, wout, oc)
        of_out.release(1)

    pairs = [(plan[2 * j], plan[2 * j + 1]) for j in range(len(plan) // 2)]
    steady = ((5, 31, 0, 1), (5, 31, 0, 1))
    idx = [j for j, p in enumerate(pairs) if p == steady]
    j0, j1 = (idx[0], idx[-1] + 1) if idx else (len(pairs), len(pairs))
    assert idx == list(range(j0, j1)), "steady windows must be contiguous"
    for p in pairs[:j0]:
        pair(p)
    if idx:
        for _ in range_(len(idx)):
            pair(steady)
    for p in pairs[j1:]:
        pair(p)


def lenet_design(dev, rtp_table: np.ndarray, in_channels: int, batch: int):
    size, pad1 = stage.INPUT_VARIANTS[in_channels]
    h1 = size + 2 * pad1 - 4                  # 28: conv1 output rows and width
    p1 = h1 // 2                              # 14: pool1
    h2 = p1 - 4                               # 10: conv2
    p2 = h2 // 2                              # 5: pool2
    sizes = list(stage.param_nbytes(in_channels).values())
    total = sum(sizes)
    u8, i32 = np.uint8, np.int32

    img_bytes = size * size * pad8(in_channels)      # one image, [H][1][W][8]
    img_row = vec_ty(img_bytes // size, u8)
    c1_row, p1_row = vec_ty(h1 * C1, u8), vec_ty(p1 * C1, u8)
    c2_row, p2_row = vec_ty(h2 * C2, u8), vec_ty(p2 * C2, u8)
    fc_in = [vec_ty(i, u8) for i, _ in FC]
    fc_out = [vec_ty(o, u8) for _, o in FC[:2]] + [vec_ty(FC[2][1], i32)]
    blob = [vec_ty(n, np.int8) for n in sizes]

    conv_k = [Kernel("conv2dk5_ui8_ui8", KERNEL_OBJ,
                     [r] * 5 + [blob[j], c, i32, i32, i32, i32, i32, i32, i32])
              for j, (r, c) in enumerate(((img_row, c1_row), (p1_row, c2_row)))]
    pool_k = [Kernel("maxpool2x2_ui8", KERNEL_OBJ, [c, c, p, i32, i32])
              for c, p in ((c1_row, p1_row), (c2_row, p2_row))]
    fc_k = [Kernel("fc_ui8_ui8", KERNEL_OBJ, [fc_in[j], blob[2 + j], fc_out[j]] + [i32] * 4)
            for j in range(2)]
    fc_k.append(Kernel("fc_ui8_i32", KERNEL_OBJ, [fc_in[2], blob[4], fc_out[2], i32, i32]))

    tiles = [Tile(0, 2), Tile(0, 3), Tile(0, 4), Tile(0, 5), Tile(1, 5)]
    rtps = [Buffer(vec_ty(stage.RTP_WORDS, i32), name=f"rtp_{n}", use_write_rtp=True)
            for n in stage.LAYERS]
    conv_rows = [[Buffer(t, name=f"{n}_row{k}") for k in range(2)]
                 for n, t in (("conv1", c1_row), ("conv2", c2_row))]

    # Activations: 5-row windows need 5 held rows plus one in flight.
    img = ObjectFifo(img_row, depth=6, name="img")
    act1 = ObjectFifo(p1_row, depth=6, name="act1")
    act2 = ObjectFifo(p2_row, depth=2, name="act2")
    flat = act2.cons().forward(tile=Tile(1, 1), obj_type=fc_in[0], depth=2, name="flat")
    v1 = ObjectFifo(fc_out[0], depth=2, name="v1")
    v2 = ObjectFifo(fc_out[1], depth=2, name="v2")
    logits = ObjectFifo(fc_out[2], depth=2, name="logits")
    wts = ObjectFifo(vec_ty(total, np.int8), depth=1, name="wts")
    offs = [int(x) for x in np.cumsum([0] + sizes[:-1])]
    parts = wts.cons().split(offs, tile=Tile(0, 1), depths=[1] * 5, obj_types=blob,
                             names=[f"wts_{n}" for n in stage.LAYERS])

    def conv_fn(of_w, of_in, of_out, ck, pk, rtp, rows, h, win, ic, oc, pad):
        w = of_w.acquire(1)
        for _ in range_(batch):
            conv_pool_image(of_in, of_out, ck, pk, w, rtp, rows, h, win, ic, oc, pad)
        of_w.release(1)

    def fc_fn(of_w, of_in, of_out, k, rtp, n_in, n_out, requant):
        w = of_w.acquire(1)
        for _ in range_(batch):
            x = of_in.acquire(1)
            y = of_out.acquire(1)
            if requant:
                k(x, w, y, n_in, n_out, rtp[0], rtp[1])
            else:
                k(x, w, y, n_in, n_out)
            of_in.release(1)
            of_out.release(1)
        of_w.release(1)

    workers = [
        Worker(conv_fn, [parts[0].cons(), img.cons(), act1.prod(), conv_k[0], pool_k[0],
                         rtps[0], conv_rows[0], size, size, pad8(in_channels), C1, pad1],
               tile=tiles[0]),
        Worker(conv_fn, [parts[1].cons(), act1.cons(), act2.prod(), conv_k[1], pool_k[1],
                         rtps[1], conv_rows[1], p1, p1, C1, C2, 0], tile=tiles[1]),
    ]
    fc_io = [(flat, v1), (v1, v2), (v2, logits)]
    for j, (src, dst) in enumerate(fc_io):
        workers.append(Worker(fc_fn, [parts[2 + j].cons(), src.cons(), dst.prod(), fc_k[j],
                                      rtps[2 + j], FC[j][0], FC[j][1], j < 2],
                              tile=tiles[2 + j]))

    img_ty = vec_ty(batch * img_bytes, u8)
    wts_ty = vec_ty(total, np.int8)
    out_ty = vec_ty(batch * stage.LOGITS_PAD, i32)
    table = np.asarray(rtp_table, dtype=np.int32)

    def sequence(images, weights, out, img_h, wts_h, out_h, rtp_bufs):
        for i, buf in enumerate(rtp_bufs):
            for k in range(stage.RTP_WORDS):
                buf[k] = int(table[i, k])
        wts_h.fill(weights)
        img_h.fill(images)
        out_h.drain(out, wait=True)

    rt = Runtime(sequence, [img_ty, wts_ty, out_ty, img.prod(tile=Tile(0, 0)),
                            wts.prod(tile=Tile(0, 0)), logits.cons(tile=Tile(1, 0)), rtps])
    return Program(dev, rt, workers=workers).resolve_program()


def check_rtp_table(table: np.ndarray, where: str) -> np.ndarray:
    """Validate an RTP table (shape, shift range, rounding codes); returns int32."""
    t = np.asarray(table)
    want = (len(stage.LAYERS), stage.RTP_WORDS)
    if t.shape != want or t.dtype.kind not in "iu":
        raise LeNetDesignError(f"{where}: RTP table {t.dtype} {t.shape}, expected integer "
                               f"{want}")
    if not ((t[:, 0] >= SHIFT_MIN) & (t[:, 0] <= SHIFT_MAX)).all():
        raise LeNetDesignError(f"{where}: RTP shift outside [{SHIFT_MIN}, {SHIFT_MAX}]")
    if not np.isin(t[:, 1], (0, 1)).all():
        raise LeNetDesignError(f"{where}: RTP rounding code not 0 or 1")
    return t.astype(np.int32)


def load_bundle(path: str) -> tuple[np.ndarray, int]:
    """(RTP table, input channels) of a LeNet deploy bundle (validated: shifts, RTP table
    against the recorded shifts, shapes, hashes)."""
    from common.bundle import BundleError
    from common.pipeline import load_bundle as read_net_bundle
    from lenet_npu.network import NETWORK

    try:
        net = read_net_bundle(NETWORK, path)[0]
    except BundleError as e:
        raise LeNetDesignError(str(e)) from None
    return check_rtp_table(net.rtp_table(), path), net.in_channels


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description="LeNet-5 IRON design")
    p.add_argument("device", nargs="?", default="npu", choices=["npu", "npu2"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundle", help="LeNet deploy bundle (RTP table, input variant)")
    src.add_argument("--random-seed", type=int,
                     help="use lenet_npu.stage.random_stage(channels, rounding, seed)")
    p.add_argument("--channels", type=int, default=1, choices=sorted(stage.INPUT_VARIANTS),
                   help="input channels with --random-seed (1: 28x28, 3: 32x32)")
    p.add_argument("--rounding", default="half_even", choices=["half_even", "half_up"],
                   help="rounding mode with --random-seed")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help=f"images per call (default {DEFAULT_BATCH})")
    a = p.parse_args(argv)
    try:
        if not 1 <= a.batch <= 4096:
            raise LeNetDesignError(f"--batch {a.batch}: must be 1..4096")
        if a.bundle:
            table, ch = load_bundle(a.bundle)
        else:
            net = stage.random_stage(a.channels, a.rounding, a.random_seed)
            table, ch = net.rtp_table(), a.channels
    except LeNetDesignError as e:
        raise SystemExit(f"error: {e}") from None
    dev = NPU1Col2() if a.device == "npu" else NPU2()
    return lenet_design(dev, table, ch, a.batch)


if __name__ == "__main__":
    print(main())
