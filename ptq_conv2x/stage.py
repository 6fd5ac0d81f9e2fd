"""conv2_x in integers: extraction from Brevitas, bundle content, device tensors, golden model.

Per block i (0..2) the NPU column runs four cores; their runtime parameters (RTPs, one
int32[16] each, written by the runtime sequence) are:
  b{i}.conv1      [0] shift conv1   [1] rounding code   [2] shift of the 1x1 projection
                  (block 0 only: the conv1 core also computes the skip projection)
  b{i}.conv3x3_0  [0] shift conv2 (3x3)               [1] rounding code   (out ch  0..31)
  b{i}.conv3x3_1  [0] shift conv2 (3x3)               [1] rounding code   (out ch 32..63)
  b{i}.skip       [0] shift conv3  [1] shift add->out  [2] skip_in_shift: shift applied to the skip input
                  (blocks 1, 2: requant of the uint8 block input to the add scale;
                  block 0: 0, the projection arrives already at the add scale)
                  [3] rounding code
Weights of a column travel as one int8 blob, each part ``common.layouts.pack_conv_params``
(OIYXI8O8 weights, int32 bias), in the order the cores take them:
  block 0: conv1 | proj | conv2 | conv3      blocks 1, 2: conv1 | conv2 | conv3
Activations: stage input int8 (64, 32, 32), output uint8 (256, 32, 32), both NCHW here and
YCXC8 rows on the device (common.layouts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from common import golden_torch
from common.bundle import BundleError
from common.intlayer import IntLayer
from common.layouts import (conv_params_nbytes, from_yc8x, pack_conv_params, to_yc8x,
                            unpack_conv_params)
from common.quant import RoundingMode, add_shift, check_shift, combined_shift, po2_exponent
from ptq_conv2x.model import MID_CH, N_BLOCKS, OUT_CH, STAGE_IN_CH, IMG

RTP_WORDS = 16
CORE_ROLES = ("conv1", "conv3x3_0", "conv3x3_1", "skip")
IN_SHAPE = (STAGE_IN_CH, IMG, IMG)
OUT_SHAPE = (OUT_CH, IMG, IMG)
OUTPUT_SCALE = f"block{N_BLOCKS - 1}.relu3"   # scales_log2 key of the stage output


@dataclass
class IntBlock:
    """One bottleneck in integers. ``proj``: block 0's 1x1 skip projection (its shift
    brings the int8 block input to the add scale); ``skip_in_shift``: blocks 1, 2 only,
    requant shift of the uint8 block input to the add scale (0 for block 0);
    ``out_shift``: add -> ReLU output."""

    conv1: IntLayer
    conv2: IntLayer
    conv3: IntLayer
    proj: IntLayer | None
    skip_in_shift: int
    out_shift: int

    def convs(self) -> list[IntLayer]:
        return [c for _, c in self.blob_order()]

    def blob_order(self) -> list[tuple[str, IntLayer]]:
        """(name, conv) in weight-blob order: conv1 [| proj] | conv2 | conv3."""
        head = [("conv1", self.conv1)] + ([("proj", self.proj)] if self.proj else [])
        return head + [("conv2", self.conv2), ("conv3", self.conv3)]


@dataclass
class IntStage:
    """The whole offloaded stage in integers plus its scales (log2 exponents)."""

    blocks: list[IntBlock]
    rounding: RoundingMode
    scales_log2: dict[str, int] = field(default_factory=dict)

    def column_blob(self, i: int) -> np.ndarray:
        """int8 blob of block i's column (what that column's weight fifo carries)."""
        return np.concatenate([pack_conv_params(c.weight, c.bias) for c in self.blocks[i].convs()])

    def weight_blob(self) -> np.ndarray:
        """The three column blobs back to back (the design's weight tensor)."""
        return np.concatenate([self.column_blob(i) for i in range(len(self.blocks))])

    def rtp_table(self) -> np.ndarray:
        """int32 (12, 16): one row per core, block-major, CORE_ROLES order."""
        t = np.zeros((len(self.blocks) * len(CORE_ROLES), RTP_WORDS), np.int32)
        r = self.rounding.code
        for i, b in enumerate(self.blocks):
            base = i * len(CORE_ROLES)
            t[base + 0, :3] = (b.conv1.shift, r, b.proj.shift if b.proj else 0)
            t[base + 1, :2] = (b.conv2.shift, r)
            t[base + 2, :2] = (b.conv2.shift, r)
            t[base + 3, :4] = (b.conv3.shift, b.out_shift, b.skip_in_shift, r)
        return t

    def golden(self, x: np.ndarray, ops: ModuleType = golden_torch) -> np.ndarray:
        """Integer reference: int8 NCHW (N,64,32,32) -> uint8 (N,256,32,32)."""
        return golden_stage(self, x, ops)

    # ---- device tensors: one image per call, YCXC8 rows
    def device_inputs(self, x: np.ndarray, batch: int = 1) -> np.ndarray:
        if batch != 1 or len(x) != 1:
            raise ValueError("the conv2x design takes one image per call")
        return to_yc8x(x[0]).reshape(-1)

    def device_outputs(self, batch: int = 1) -> np.ndarray:
        return np.zeros(int(np.prod(OUT_SHAPE)), np.uint8)

    def from_device(self, out: np.ndarray, n: int = 1) -> np.ndarray:
        c, h, w = OUT_SHAPE
        return from_yc8x(out.reshape(h, c // 8, w, 8), c)[None]

    # ---- bundle
    def bundle_content(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {"rtp": self.rtp_table()}
        convs: dict[str, dict[str, Any]] = {}
        for i, b in enumerate(self.blocks):
            arrays[f"wts_block{i}"] = self.column_blob(i)
            off = 0
            for name, c in b.blob_order():
                o, ci, ky, kx = c.weight.shape
                arrays[f"bias.block{i}.{name}"] = c.bias.astype(np.int32)
                convs[f"block{i}.{name}"] = {"shape": [o, ci, ky, kx], "offset": off,
                                             "nbytes": conv_params_nbytes(o, ci, ky, kx),
                                             "shift": c.shift}
                off += conv_params_nbytes(o, ci, ky, kx)
        fields = {
            "scales_log2": self.scales_log2, "convs": convs,
            "skip_in_shifts": [b.skip_in_shift for b in self.blocks],
            "out_shifts": [b.out_shift for b in self.blocks],
            "rtp_cores": core_names(len(self.blocks)),
            "rtp_slots": {"conv1": ["shift", "rounding", "proj_shift"],
                          "conv3x3": ["shift", "rounding"],
                          "skip": ["conv3_shift", "out_shift", "skip_in_shift", "rounding"]},
            "activations": {"input": {"dtype": "int8", "shape_chw": list(IN_SHAPE),
                                      "layout": "YCXC8"},
                            "output": {"dtype": "uint8", "shape_chw": list(OUT_SHAPE),
                                       "layout": "YCXC8"}},
        }
        return fields, arrays

    def summary_lines(self) -> list[str]:
        return [f"block{i}: shifts conv1 {b.conv1.shift} conv2 {b.conv2.shift} conv3 "
                f"{b.conv3.shift} {'proj ' + str(b.proj.shift) if b.proj else 'skip_in ' + str(b.skip_in_shift)} "
                f"add->out {b.out_shift}" for i, b in enumerate(self.blocks)]


def core_names(n_blocks: int = N_BLOCKS) -> list[str]:
    return [f"b{i}.{role}" for i in range(n_blocks) for role in CORE_ROLES]


def extract(qm) -> IntStage:
    """Integers, shifts and scales of a calibrated QuantConv2xNet (ptq_conv2x.quant_model)."""
    from common.ptq import act_scale, int_conv  # Brevitas: only needed for extraction

    s_x = act_scale(qm.in_q, "stage input")
    scales = {"stage_in": po2_exponent(s_x, "stage input")}
    blocks = []
    for i, qb in enumerate(qm.blocks):
        n = f"block{i}"
        s1 = act_scale(qb.relu1, f"{n}.relu1")
        s2 = act_scale(qb.relu2, f"{n}.relu2")
        sa = act_scale(qb.add_q, f"{n}.add")
        so = act_scale(qb.relu3, f"{n}.relu3")
        c1, c2, c3 = (int_conv(qb.conv1, s_x, f"{n}.conv1"), int_conv(qb.conv2, s1, f"{n}.conv2"),
                      int_conv(qb.conv3, s2, f"{n}.conv3"))
        conv1 = IntLayer(c1.weight, c1.bias, combined_shift(s_x, c1.s_w, s1, f"{n}.conv1"))
        conv2 = IntLayer(c2.weight, c2.bias, combined_shift(s1, c2.s_w, s2, f"{n}.conv2"))
        conv3 = IntLayer(c3.weight, c3.bias, combined_shift(s2, c3.s_w, sa, f"{n}.conv3"))
        if qb.proj is not None:
            cp = int_conv(qb.proj, s_x, f"{n}.proj")
            proj = IntLayer(cp.weight, cp.bias, combined_shift(s_x, cp.s_w, sa, f"{n}.proj"))
            skip_in_shift = 0
        else:
            proj, skip_in_shift = None, add_shift(s_x, sa, f"{n}.skip")
        blocks.append(IntBlock(conv1, conv2, conv3, proj, skip_in_shift,
                               add_shift(sa, so, f"{n}.add")))
        for k, s in (("relu1", s1), ("relu2", s2), ("add", sa), ("relu3", so)):
            scales[f"{n}.{k}"] = po2_exponent(s, f"{n}.{k}")
        s_x = so
    return IntStage(blocks, RoundingMode(qm.rounding), scales)


def golden_stage(p: IntStage, x: np.ndarray, ops: ModuleType = golden_torch) -> np.ndarray:
    """Integer reference of the stage: int8 NCHW (N,64,32,32) -> uint8 (N,256,32,32).
    ``ops``: common.golden_torch (fast, default) or common.golden (the reference formulas)."""
    r = p.rounding
    for b in p.blocks:
        h = ops.conv_requant(x, b.conv1.weight, b.conv1.bias, b.conv1.shift, r, np.uint8)
        h = ops.conv_requant(h, b.conv2.weight, b.conv2.bias, b.conv2.shift, r, np.uint8,
                             padding=1)
        if b.proj is not None:
            x = ops.conv_skip_proj_add(h, b.conv3.weight, b.conv3.bias, b.conv3.shift, x,
                                       b.proj.weight, b.proj.bias, b.proj.shift,
                                       b.out_shift, r)
        else:
            x = ops.conv_skip_add(h, b.conv3.weight, b.conv3.bias, b.conv3.shift, x,
                                  b.skip_in_shift, b.out_shift, r)
    return np.asarray(x)


def stage_from_bundle(m: dict[str, Any], a: dict[str, np.ndarray], where: str) -> IntStage:
    """Rebuild and validate the IntStage from a bundle's manifest and arrays (the NPU
    blobs are the source; stored biases, shifts and RTP table must agree with them)."""
    rounding = RoundingMode.parse(m["rounding"])
    blocks = []
    for i in range(N_BLOCKS):
        blob = a[f"wts_block{i}"]
        cs = []
        for name in ("conv1", "conv2", "conv3", "proj"):
            spec = m["convs"].get(f"block{i}.{name}")
            if spec is None:
                cs.append(None)
                continue
            o, ci, ky, kx = spec["shape"]
            w, b = unpack_conv_params(blob[spec["offset"]:spec["offset"] + spec["nbytes"]],
                                      o, ci, ky, kx)
            if not np.array_equal(b, a[f"bias.block{i}.{name}"]):
                raise BundleError(f"{where}: block{i}.{name}: bias in the weight blob differs "
                                  "from the stored bias")
            cs.append(IntLayer(w, b, check_shift(spec["shift"], f"{where}: block{i}.{name}")))
        blocks.append(IntBlock(cs[0], cs[1], cs[2], cs[3],
                               check_shift(m["skip_in_shifts"][i], f"{where}: block{i}.skip"),
                               check_shift(m["out_shifts"][i], f"{where}: block{i}.add")))
    scales = m["scales_log2"]
    if not isinstance(scales, dict) or OUTPUT_SCALE not in scales:
        raise BundleError(f"{where}: scales_log2 lacks the output scale {OUTPUT_SCALE!r}")
    for k, v in scales.items():
        if not isinstance(v, int) or isinstance(v, bool) or not -64 <= v <= 64:
            raise BundleError(f"{where}: scale {k!r}: log2 exponent {v!r} is not an integer "
                              "in -64..64 (scales must be powers of two)")
    p = IntStage(blocks, rounding, dict(scales))
    if not np.array_equal(p.rtp_table(), a["rtp"]):
        raise BundleError(f"{where}: RTP table does not match the recorded shifts")
    _check_shapes(p, where)
    return p


def _check_shapes(p: IntStage, where: str) -> None:
    want_in = [STAGE_IN_CH] + [OUT_CH] * (N_BLOCKS - 1)
    for i, b in enumerate(p.blocks):
        exp = {"conv1": (MID_CH, want_in[i], 1, 1), "conv2": (MID_CH, MID_CH, 3, 3),
               "conv3": (OUT_CH, MID_CH, 1, 1)}
        for name, shape in exp.items():
            got = getattr(b, name).weight.shape
            if tuple(got) != shape:
                raise BundleError(f"{where}: block{i}.{name} weights {tuple(got)}, expected {shape}")
        if (b.proj is not None) != (i == 0):
            raise BundleError(f"{where}: block{i}: projection "
                              f"{'missing' if i == 0 else 'unexpected'}")
