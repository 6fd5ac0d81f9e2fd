"""conv2_x integer parameters: extraction from Brevitas, deploy bundle, integer golden stage.

Per block i (0..2) the NPU column runs four cores; their runtime parameters (RTPs, one
int32[16] each, written by the runtime sequence) are:
  b{i}.conv1      [0] shift conv1   [1] rounding code   [2] shift of the 1x1 projection
                  (block 0 only: the conv1 core also computes the skip projection)
  b{i}.conv3x3_0  [0] shift conv2 (3x3)               [1] rounding code   (out ch  0..31)
  b{i}.conv3x3_1  [0] shift conv2 (3x3)               [1] rounding code   (out ch 32..63)
  b{i}.skip       [0] shift conv3  [1] shift add->out  [2] shift applied to the skip input
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

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from common import golden_torch
from common.bundle import SCHEMA, BundleError, config_sha256, read_bundle, write_bundle
from common.checkpoint import file_sha256
from common.layouts import conv_params_nbytes, pack_conv_params, unpack_conv_params
from common.ptq import act_scale, int_conv
from common.quant import RoundingMode, add_shift, check_shift, combined_shift, po2_exponent

NETWORK = "conv2x"
RTP_WORDS = 16
CORE_ROLES = ("conv1", "conv3x3_0", "conv3x3_1", "skip")
IN_SHAPE = (64, 32, 32)
OUT_SHAPE = (256, 32, 32)


@dataclass
class IntConv:
    """One conv: int8 OIHW weights, int32 bias (units s_in*s_w), requant shift."""

    weight: np.ndarray
    bias: np.ndarray
    shift: int


@dataclass
class IntBlock:
    """One bottleneck in integers; ``skip_shift`` is proj's shift (block 0) or the
    requant shift of the uint8 skip (blocks 1, 2); ``out_shift`` is add -> ReLU."""

    conv1: IntConv
    conv2: IntConv
    conv3: IntConv
    proj: IntConv | None
    skip_shift: int
    out_shift: int

    def convs(self) -> list[IntConv]:
        return [c for _, c in self.blob_order()]

    def blob_order(self) -> list[tuple[str, IntConv]]:
        """(name, conv) in weight-blob order: conv1 [| proj] | conv2 | conv3."""
        head = [("conv1", self.conv1)] + ([("proj", self.proj)] if self.proj else [])
        return head + [("conv2", self.conv2), ("conv3", self.conv3)]


@dataclass
class IntStage:
    """The whole offloaded stage in integers plus its scales (log2 exponents)."""

    blocks: list[IntBlock]
    rounding: RoundingMode
    scales_log2: dict[str, int] = field(default_factory=dict)

    def weight_blob(self, i: int) -> np.ndarray:
        """int8 blob of block i's column (what the weight fifo carries)."""
        return np.concatenate([pack_conv_params(c.weight, c.bias) for c in self.blocks[i].convs()])

    def rtp_table(self) -> np.ndarray:
        """int32 (12, 16): one row per core, block-major, CORE_ROLES order."""
        t = np.zeros((len(self.blocks) * len(CORE_ROLES), RTP_WORDS), np.int32)
        r = self.rounding.code
        for i, b in enumerate(self.blocks):
            base = i * len(CORE_ROLES)
            t[base + 0, :3] = (b.conv1.shift, r, b.proj.shift if b.proj else 0)
            t[base + 1, :2] = (b.conv2.shift, r)
            t[base + 2, :2] = (b.conv2.shift, r)
            t[base + 3, :4] = (b.conv3.shift, b.out_shift, 0 if b.proj else b.skip_shift, r)
        return t


def core_names(n_blocks: int = 3) -> list[str]:
    return [f"b{i}.{role}" for i in range(n_blocks) for role in CORE_ROLES]


def extract(qm) -> IntStage:
    """Integers, shifts and scales of a calibrated QuantConv2xNet (ptq_conv2x.quant_model)."""
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
        conv1 = IntConv(c1.weight, c1.bias, combined_shift(s_x, c1.s_w, s1, f"{n}.conv1"))
        conv2 = IntConv(c2.weight, c2.bias, combined_shift(s1, c2.s_w, s2, f"{n}.conv2"))
        conv3 = IntConv(c3.weight, c3.bias, combined_shift(s2, c3.s_w, sa, f"{n}.conv3"))
        if qb.proj is not None:
            cp = int_conv(qb.proj, s_x, f"{n}.proj")
            proj = IntConv(cp.weight, cp.bias, combined_shift(s_x, cp.s_w, sa, f"{n}.proj"))
            skip_shift = proj.shift
        else:
            proj, skip_shift = None, add_shift(s_x, sa, f"{n}.skip")
        blocks.append(IntBlock(conv1, conv2, conv3, proj, skip_shift,
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
                                  b.skip_shift, b.out_shift, r)  # skip_in, add->out
    return np.asarray(x)


# ------------------------------------------------------------------ bundle
def save_bundle(path: str | os.PathLike, p: IntStage, checkpoint: str | os.PathLike,
                config: dict[str, Any]) -> None:
    """Write the deploy bundle of ``p`` (atomic)."""
    arrays: dict[str, np.ndarray] = {"rtp": p.rtp_table()}
    convs: dict[str, dict[str, Any]] = {}
    for i, b in enumerate(p.blocks):
        arrays[f"wts_block{i}"] = p.weight_blob(i)
        off = 0
        for name, c in b.blob_order():
            o, ci, ky, kx = c.weight.shape
            arrays[f"bias.block{i}.{name}"] = c.bias.astype(np.int32)
            convs[f"block{i}.{name}"] = {"shape": [o, ci, ky, kx], "offset": off,
                                         "nbytes": conv_params_nbytes(o, ci, ky, kx),
                                         "shift": c.shift}
            off += conv_params_nbytes(o, ci, ky, kx)
    manifest = {
        "schema": SCHEMA, "network": NETWORK, "rounding": p.rounding.value,
        "checkpoint_sha256": file_sha256(checkpoint), "config_sha256": config_sha256(config),
        "config": config, "scales_log2": p.scales_log2, "convs": convs,
        "skip_shifts": [b.skip_shift for b in p.blocks],
        "out_shifts": [b.out_shift for b in p.blocks],
        "rtp_cores": core_names(len(p.blocks)),
        "rtp_slots": {"conv1": ["shift", "rounding", "proj_shift"],
                      "conv3x3": ["shift", "rounding"],
                      "skip": ["conv3_shift", "out_shift", "skip_in_shift", "rounding"]},
        "activations": {"input": {"dtype": "int8", "shape_chw": list(IN_SHAPE),
                                  "layout": "YCXC8"},
                        "output": {"dtype": "uint8", "shape_chw": list(OUT_SHAPE),
                                   "layout": "YCXC8"}},
    }
    write_bundle(path, manifest, arrays)


def load_bundle(path: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                config: dict[str, Any] | None = None) -> tuple[IntStage, dict[str, Any]]:
    """Read and validate a conv2x bundle; rebuild the IntStage from the NPU blobs."""
    m, a = read_bundle(path, SCHEMA, checkpoint, config)
    if m.get("network") != NETWORK:
        raise BundleError(f"{path}: bundle is for network {m.get('network')!r}, not {NETWORK!r}")
    try:
        rounding = RoundingMode.parse(m["rounding"])
        blocks = []
        for i in range(3):
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
                    raise BundleError(f"{path}: block{i}.{name}: bias in the weight blob differs "
                                      "from the stored bias")
                cs.append(IntConv(w, b, check_shift(spec["shift"], f"block{i}.{name}")))
            blocks.append(IntBlock(cs[0], cs[1], cs[2], cs[3],
                                   check_shift(m["skip_shifts"][i], f"block{i}.skip"),
                                   check_shift(m["out_shifts"][i], f"block{i}.add")))
        p = IntStage(blocks, rounding, dict(m["scales_log2"]))
    except BundleError:
        raise
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise BundleError(f"{path}: inconsistent conv2x bundle ({type(e).__name__}: {e})") \
            from None
    if not np.array_equal(p.rtp_table(), a["rtp"]):
        raise BundleError(f"{path}: RTP table does not match the recorded shifts")
    _check_shapes(p, path)
    return p, m


def _check_shapes(p: IntStage, path) -> None:
    want_in = [64, 256, 256]
    for i, b in enumerate(p.blocks):
        exp = {"conv1": (64, want_in[i], 1, 1), "conv2": (64, 64, 3, 3),
               "conv3": (256, 64, 1, 1)}
        for name, shape in exp.items():
            got = getattr(b, name).weight.shape
            if tuple(got) != shape:
                raise BundleError(f"{path}: block{i}.{name} weights {tuple(got)}, expected {shape}")
        if (b.proj is not None) != (i == 0):
            raise BundleError(f"{path}: block{i}: projection "
                              f"{'missing' if i == 0 else 'unexpected'}")
