#!/usr/bin/env python3
"""IRON design of the conv2_x stage: three bottleneck blocks, depth-first, one per column.

    python aie2.py [npu|npu2] [--bundle BUNDLE.npz] [--batch B]

With mlir-aie installed this prints the MLIR module; without it the project's emulator
runs this same file (python -m common.emu ptq_conv2x/aie2.py npu --bundle ...).

Per column i (block i), four compute tiles, placed in a snake so that the 3x3 cores sit
next to the skip core (their outputs move through shared memory, not DMA):
    conv1     1x1, IC -> 64, uint8 + ReLU          rows in: block input, uint8 (block 0:
              the stage input, IN_DTYPE of ptq_conv2x/stage.py)
              block 0 also: the 1x1 skip projection 64 -> 256, int8
    conv3x3_0 3x3, 64 -> 32 (out ch  0..31)        3-row sliding window over conv1 rows
    conv3x3_1 3x3, 64 -> 32 (out ch 32..63)
    skip      1x1 64 -> 256, add the skip, ReLU
Balance: upstream runs the block-0 projection on the skip core (33.6 M MACs per image on
one tile, ~131 us at 1 GHz); here the block-0 conv1 core does it (4.2 + 16.8 M MACs), so
the busiest tile does 21.0 M MACs (~82 us) against a 12-tile floor of ~71 us.
Data moves one image row at a time ([C/8][W][8] layout, common.layouts). The skip input
(block 0: the projection rows; blocks 1, 2: the block input, broadcast with conv1) reaches
the skip core through a 4-deep memtile buffer. Weights of a column are one blob
(common.layouts.pack_conv_params per conv, order in ptq_conv2x/stage.py) split at the
memtile.
Batch: a call carries B images (--batch, default DEFAULT_BATCH). The weights enter each
column once per call: every core acquires its weights once, streams the B images (one
after the other, rows in order), then releases them, so a call pays the weight transfer
and the host dispatch once for B images.
Runtime parameters (shifts, rounding; ptq_conv2x.stage documents the slots) are int32[16]
Buffers written once per call by the runtime sequence from the bundle's RTP table. Cores
read them after their first input row has arrived, i.e. after the sequence wrote them.

Runtime sequence arguments: input IN_DTYPE B x [32][64/8][32][8], weights int8 (three column
blobs back to back), output uint8 B x [32][256/8][32][8].
"""
from __future__ import annotations

import numpy as np
from aie.helpers.taplib import TensorAccessPattern
from aie.iron import Buffer, Kernel, ObjectFifo, Program, Runtime, Worker
from aie.iron.controlflow import range_
from aie.iron.device import NPU1Col3, NPU2, Tile

from common.bundle import BundleError
from common.cli import ArgumentParser, int_at_least
from common.layouts import conv_params_nbytes
from ptq_conv2x.model import IMG, MID_CH, N_BLOCKS, OUT_CH, STAGE_IN_CH
from ptq_conv2x.stage import IN_DTYPE, RTP_WORDS

W = H = IMG                     # geometry: ptq_conv2x/model.py
C_IN0, C_MID, C_OUT = STAGE_IN_CH, MID_CH, OUT_CH
DEFAULT_BATCH = 8      # images per call (ptq_conv2x.network.NETWORK.images_per_call)
MAX_BATCH = 1024       # 256 MiB of output per call
KERNEL_OBJ = "npu_kernels.o"   # all project kernels, one archive (see ptq_conv2x/Makefile)
SUFFIX = {np.dtype(np.int8): "i8", np.dtype(np.uint8): "ui8"}   # kernel name part per dtype


def row_ty(channels: int, dtype) -> type:
    return np.ndarray[(W * channels,), np.dtype[dtype]]


def blob_ty(nbytes: int) -> type:
    return np.ndarray[(nbytes,), np.dtype[np.int8]]


def block_blob_sizes(i: int) -> tuple[int, int, int]:
    """(conv1 [+ projection], 3x3, conv3) parameter blob sizes in bytes for block i."""
    c_in = C_IN0 if i == 0 else C_OUT
    conv1 = conv_params_nbytes(C_MID, c_in, 1, 1)
    if i == 0:
        conv1 += conv_params_nbytes(C_OUT, C_IN0, 1, 1)
    return conv1, conv_params_nbytes(C_MID, C_MID, 3, 3), conv_params_nbytes(C_OUT, C_MID, 1, 1)


def default_rtps() -> np.ndarray:
    """RTP table used when no bundle is given (design exploration with random data)."""
    t = np.zeros((N_BLOCKS * 4, RTP_WORDS), np.int32)
    t[:, 0] = 10
    t[0, 2] = 10
    t[3::4, 1] = 1
    t[7::4, 2] = 1
    return t


def conv2x_design(dev, rtp_table: np.ndarray, batch: int = DEFAULT_BATCH):
    in_row = [row_ty(C_IN0, IN_DTYPE)] + [row_ty(C_OUT, np.uint8)] * (N_BLOCKS - 1)
    mid_row = row_ty(C_MID, np.uint8)
    half_row = row_ty(C_MID // 2, np.uint8)
    out_row = row_ty(C_OUT, np.uint8)
    sizes = [block_blob_sizes(i) for i in range(N_BLOCKS)]
    col_bytes = [sum(s) for s in sizes]
    i32 = np.int32

    # Kernels (C symbols of common/kernels/*.cc; argument order as declared there).
    skip_row = [row_ty(C_OUT, np.int8)] + [row_ty(C_OUT, np.uint8)] * (N_BLOCKS - 1)
    conv1_k = [Kernel(f"conv2dk1_proj_{SUFFIX[np.dtype(IN_DTYPE)]}", KERNEL_OBJ,
                      [in_row[0], blob_ty(sizes[0][0]), mid_row, skip_row[0],
                       i32, i32, i32, i32, i32, i32, i32])] + \
              [Kernel("conv2dk1_ui8_ui8", KERNEL_OBJ,
                      [in_row[i], blob_ty(sizes[i][0]), mid_row, i32, i32, i32, i32, i32])
               for i in range(1, N_BLOCKS)]
    conv3_k = Kernel("conv2dk3_ui8", KERNEL_OBJ,
                     [mid_row, mid_row, mid_row, blob_ty(sizes[0][1]), half_row,
                      i32, i32, i32, i32, i32, i32, i32, i32])
    skip_k = [Kernel("conv2dk1_skip_i8skip_ui8" if i == 0 else "conv2dk1_skip_ui8", KERNEL_OBJ,
                     [half_row, half_row, blob_ty(sizes[i][2]), out_row, skip_row[i],
                      i32, i32, i32, i32, i32, i32, i32])
              for i in range(N_BLOCKS)]

    # Placement: snake through the columns; 3x3 cores are neighbours of the skip core.
    rows = [(2, 3, 5, 4), (5, 4, 2, 3), (2, 3, 5, 4)]   # conv1, 3x3_0, 3x3_1, skip
    tiles = [[Tile(c, r) for r in rows[c]] for c in range(N_BLOCKS)]
    rtps = [[Buffer(np.ndarray[(RTP_WORDS,), np.dtype[np.int32]], name=f"rtp_b{i}_{j}",
                    use_write_rtp=True) for j in range(4)] for i in range(N_BLOCKS)]

    # Activations: block inputs (block 0 from the host, later ones from the previous skip
    # core), conv1 -> 3x3 (broadcast to both), 3x3 -> skip, and the skip copy via memtile.
    act_in = [ObjectFifo(in_row[i], depth=2, name=f"act_in{i}") for i in range(N_BLOCKS)]
    act_out = ObjectFifo(out_row, depth=2, name="act_out")
    proj0 = ObjectFifo(skip_row[0], depth=2, name="proj0")
    skip_src = [proj0] + act_in[1:]
    skips = [skip_src[i].cons(depth=4).forward(tile=Tile(i, 1), depth=2, name=f"skip{i}")
             for i in range(N_BLOCKS)]
    act2 = [ObjectFifo(mid_row, depth=4, name=f"act2_{i}") for i in range(N_BLOCKS)]
    act3 = [[ObjectFifo(half_row, depth=2, name=f"act3_{i}_{j}") for j in range(2)]
            for i in range(N_BLOCKS)]
    wts = [ObjectFifo(blob_ty(col_bytes[i]), depth=1, name=f"wts{i}") for i in range(N_BLOCKS)]
    wts_parts = [wts[i].cons().split([0, sizes[i][0], sizes[i][0] + sizes[i][1]],
                                     tile=Tile(i, 1), depths=[1, 1, 1],
                                     obj_types=[blob_ty(s) for s in sizes[i]],
                                     names=[f"wts{i}_{p}" for p in ("c1", "c3", "sk")])
                 for i in range(N_BLOCKS)]

    def conv1_fn(of_w, of_in, of_out, kernel, rtp, ic):
        w = of_w.acquire(1)
        for _ in range_(batch * H):
            a = of_in.acquire(1)
            o = of_out.acquire(1)
            kernel(a, w, o, W, ic, C_MID, rtp[0], rtp[1])
            of_in.release(1)
            of_out.release(1)
        of_w.release(1)

    def conv1_proj_fn(of_w, of_in, of_out, of_proj, kernel, rtp):
        w = of_w.acquire(1)
        for _ in range_(batch * H):
            a = of_in.acquire(1)
            o = of_out.acquire(1)
            p = of_proj.acquire(1)
            kernel(a, w, o, p, W, C_IN0, C_MID, C_OUT, rtp[0], rtp[2], rtp[1])
            of_in.release(1)
            of_out.release(1)
            of_proj.release(1)
        of_w.release(1)

    def conv3x3_fn(of_w, of_in, of_out, kernel, rtp, oc_offset):
        w = of_w.acquire(1)
        for _ in range_(batch):                        # each image releases all its rows
            rows_in = of_in.acquire(2)                 # top: (r0, r0, r1), row 0 padded
            o = of_out.acquire(1)
            kernel(rows_in[0], rows_in[0], rows_in[1], w, o, W, C_MID, C_MID // 2, C_MID, 0,
                   rtp[0], rtp[1], oc_offset)
            of_out.release(1)
            for _ in range_(H - 2):                    # middle: (r-1, r, r+1)
                rows_in = of_in.acquire(3)
                o = of_out.acquire(1)
                kernel(rows_in[0], rows_in[1], rows_in[2], w, o, W, C_MID, C_MID // 2,
                       C_MID, 1, rtp[0], rtp[1], oc_offset)
                of_in.release(1)
                of_out.release(1)
            rows_in = of_in.acquire(2)                 # bottom: (r30, r31, r31), row 2 padded
            o = of_out.acquire(1)
            kernel(rows_in[0], rows_in[1], rows_in[1], w, o, W, C_MID, C_MID // 2, C_MID, 2,
                   rtp[0], rtp[1], oc_offset)
            of_in.release(2)
            of_out.release(1)
        of_w.release(1)

    def skip_fn(of_w, of_a, of_b, of_out, of_skip, kernel, rtp):
        w = of_w.acquire(1)
        for _ in range_(batch * H):
            a = of_a.acquire(1)
            b = of_b.acquire(1)
            o = of_out.acquire(1)
            s = of_skip.acquire(1)
            kernel(a, b, w, o, s, W, C_MID, C_OUT, rtp[0], rtp[1], rtp[2], rtp[3])
            of_a.release(1)
            of_b.release(1)
            of_out.release(1)
            of_skip.release(1)
        of_w.release(1)

    workers = []
    for i in range(N_BLOCKS):
        c1, k0, k1, sk = tiles[i]
        nxt = act_in[i + 1] if i + 1 < N_BLOCKS else act_out
        if i == 0:
            workers.append(Worker(conv1_proj_fn, [wts_parts[0][0].cons(), act_in[0].cons(),
                                                  act2[0].prod(), proj0.prod(), conv1_k[0],
                                                  rtps[0][0]], tile=c1))
        else:
            workers.append(Worker(conv1_fn, [wts_parts[i][0].cons(), act_in[i].cons(),
                                             act2[i].prod(), conv1_k[i], rtps[i][0], C_OUT],
                                  tile=c1))
        workers += [
            Worker(conv3x3_fn, [wts_parts[i][1].cons(), act2[i].cons(), act3[i][0].prod(),
                                conv3_k, rtps[i][1], 0], tile=k0),
            Worker(conv3x3_fn, [wts_parts[i][1].cons(), act2[i].cons(), act3[i][1].prod(),
                                conv3_k, rtps[i][2], C_MID // 2], tile=k1),
            Worker(skip_fn, [wts_parts[i][2].cons(), act3[i][0].cons(), act3[i][1].cons(),
                             nxt.prod(), skips[i].cons(), skip_k[i], rtps[i][3]],
                   tile=sk, stack_size=0xA00),
        ]

    in_ty = np.ndarray[(batch * H * W * C_IN0,), np.dtype[IN_DTYPE]]
    wts_ty = np.ndarray[(sum(col_bytes),), np.dtype[np.int8]]
    out_ty = np.ndarray[(batch * H * W * C_OUT,), np.dtype[np.uint8]]
    table = np.asarray(rtp_table, dtype=np.int32)

    def sequence(inp, weights, out, in_h, wts_h, out_h, rtp_bufs):
        for i in range(N_BLOCKS):
            for j in range(4):
                for k in range(RTP_WORDS):
                    rtp_bufs[i][j][k] = int(table[i * 4 + j, k])
        in_h.fill(inp)
        off = 0
        for i in range(N_BLOCKS):
            wts_h[i].fill(weights, tap=TensorAccessPattern((sum(col_bytes),), off,
                                                           [1, 1, 1, col_bytes[i]], [0, 0, 0, 1]))
            off += col_bytes[i]
        out_h.drain(out, wait=True)

    rt = Runtime(sequence, [in_ty, wts_ty, out_ty, act_in[0].prod(tile=Tile(0, 0)),
                            [w.prod(tile=Tile(i, 0)) for i, w in enumerate(wts)],
                            act_out.cons(tile=Tile(N_BLOCKS - 1, 0)), rtps])
    return Program(dev, rt, workers=workers).resolve_program()


def main(argv: list[str] | None = None):
    p = ArgumentParser(description="conv2_x IRON design")
    p.add_argument("device", nargs="?", default="npu", choices=["npu", "npu2"])
    p.add_argument("--bundle", default=None, help="deploy bundle (RTP table); default shifts "
                   "are used without one")
    p.add_argument("--batch", type=int_at_least(1), default=DEFAULT_BATCH,
                   help=f"images per call (default {DEFAULT_BATCH})")
    a = p.parse_args(argv)
    if a.batch > MAX_BATCH:
        p.error(f"argument --batch: {a.batch} is over {MAX_BATCH} images per call")
    dev = NPU1Col3() if a.device == "npu" else NPU2()
    if a.bundle:
        from common.pipeline import load_bundle  # validates shifts, RTP table vs shifts
        from ptq_conv2x.network import NETWORK

        try:
            table = load_bundle(NETWORK, a.bundle)[0].rtp_table()
        except BundleError as e:
            raise SystemExit(f"error: {e}") from None
    else:
        table = default_rtps()
    return conv2x_design(dev, table, a.batch)


if __name__ == "__main__":
    print(main())
