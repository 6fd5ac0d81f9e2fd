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
Activations: stage input IN_DTYPE (uint8: the stem ends in a ReLU) (64, 32, 32), output
uint8 (256, 32, 32), both NCHW here and YCXC8 rows on the device (common.layouts).
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
from common.quant import (QuantError, RoundingMode, add_shift, check_shift, combined_shift,
                          po2_exponent)
from ptq_conv2x.model import MID_CH, N_BLOCKS, OUT_CH, STAGE_IN_CH, IMG

RTP_WORDS = 16
CORE_ROLES = ("conv1", "conv3x3_0", "conv3x3_1", "skip")
IN_SHAPE = (STAGE_IN_CH, IMG, IMG)
IN_DTYPE = np.uint8     # stage input (after the stem's ReLU); the design's input rows, the
                        # block-0 conv1 + projection kernel and the bundle follow it
OUT_SHAPE = (OUT_CH, IMG, IMG)
OUTPUT_SCALE = f"block{N_BLOCKS - 1}.relu3"   # scales_log2 key of the stage output


@dataclass
class IntBlock:
    """One bottleneck in integers. ``proj``: block 0's 1x1 skip projection (its shift
    brings the block input to the add scale); ``skip_in_shift``: blocks 1, 2 only,
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
        """Integer reference: IN_DTYPE NCHW (N,64,32,32) -> uint8 (N,256,32,32)."""
        return golden_stage(self, x, ops)

    # ---- device tensors: B images per call, each image YCXC8 rows, images back to back
    def device_inputs(self, x: np.ndarray, batch: int) -> np.ndarray:
        """IN_DTYPE NCHW (n <= batch, 64, 32, 32) -> the design's flat input tensor of
        ``batch`` images (zero images pad a short batch)."""
        a = np.asarray(x)
        if a.ndim != 4 or len(a) > batch or a.shape[1:] != IN_SHAPE or a.dtype != IN_DTYPE:
            raise ValueError(f"images {a.dtype}{list(a.shape)} do not fit a call of {batch} "
                             f"images of {np.dtype(IN_DTYPE)}{list(IN_SHAPE)}")
        if len(a) < batch:
            a = np.concatenate([a, np.zeros((batch - len(a),) + IN_SHAPE, a.dtype)])
        return to_yc8x(a).reshape(-1)

    def device_outputs(self, batch: int) -> np.ndarray:
        """A zeroed flat output tensor of ``batch`` images (uint8 YCXC8 each)."""
        return np.zeros(batch * int(np.prod(OUT_SHAPE)), np.uint8)

    def from_device(self, out: np.ndarray, n: int) -> np.ndarray:
        """Flat output tensor -> uint8 NCHW (n, 256, 32, 32), the first ``n`` images."""
        c, h, w = OUT_SHAPE
        return from_yc8x(out.reshape(-1, h, c // 8, w, 8)[:n], c)

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
            "activations": activation_fields(),
        }
        return fields, arrays

    def summary_lines(self) -> list[str]:
        return [f"block{i}: shifts conv1 {b.conv1.shift} conv2 {b.conv2.shift} conv3 "
                f"{b.conv3.shift} {'proj ' + str(b.proj.shift) if b.proj else 'skip_in ' + str(b.skip_in_shift)} "
                f"add->out {b.out_shift}" for i, b in enumerate(self.blocks)]


def activation_fields() -> dict[str, dict[str, Any]]:
    """The bundle's ``activations`` entry: dtype, CHW shape and device layout of the stage
    input and output."""
    return {"input": {"dtype": np.dtype(IN_DTYPE).name, "shape_chw": list(IN_SHAPE),
                      "layout": "YCXC8"},
            "output": {"dtype": "uint8", "shape_chw": list(OUT_SHAPE), "layout": "YCXC8"}}


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
    """Integer reference of the stage: IN_DTYPE NCHW (N,64,32,32) -> uint8 (N,256,32,32).
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


SCALE_LOG2_RANGE = (-64, 64)   # sane exponents of power-of-two scales (float32 spans -149..127)
_SCALE_ROLES = ("relu1", "relu2", "add", "relu3")


def stage_from_bundle(m: dict[str, Any], a: dict[str, np.ndarray], where: str) -> IntStage:
    """Rebuild and validate the IntStage from a bundle's manifest and arrays.

    Every value the run uses is checked (a BundleError names the manifest key or array):
    the rounding mode; the activations entry (input dtype IN_DTYPE, shapes, layouts); the
    scale exponents (all of ``scale_keys()``, ints within SCALE_LOG2_RANGE); conv shapes,
    blob offsets and sizes; every shift within the kernels' range; skip and output shifts
    consistent with the scales; biases equal in the blob and stored; the RTP table equal to
    the one the shifts give.
    """
    path = where
    r = m.get("rounding")
    if r not in [mode.value for mode in RoundingMode]:
        raise BundleError(f"{path}: rounding: {str(r)[:40]!r} is not one of "
                          f"{[mode.value for mode in RoundingMode]}")
    scales = _check_scales(path, m.get("scales_log2"))
    if m.get("activations") != activation_fields():
        raise BundleError(f"{path}: activations: {str(m.get('activations'))[:200]}, but this "
                          f"design takes {activation_fields()}")
    convs = m.get("convs")
    if not isinstance(convs, dict):
        raise BundleError(f"{path}: convs: missing or not an object")
    unknown = set(convs) - {f"block{i}.{n}" for i in range(N_BLOCKS) for n in _expected_convs(i)}
    if unknown:
        raise BundleError(f"{path}: convs: unexpected entries {sorted(unknown)}")
    skip_in_shifts = _shift_list(path, m, "skip_in_shifts")
    out_shifts = _shift_list(path, m, "out_shifts")
    blocks = []
    for i in range(N_BLOCKS):
        cs = _block_convs(path, i, convs, a)
        n, prev = f"block{i}", ("stage_in" if i == 0 else f"block{i - 1}.relu3")
        want_skip = 0 if "proj" in cs else scales[f"{n}.add"] - scales[prev]
        want_out = scales[f"{n}.relu3"] - scales[f"{n}.add"]
        for key, got, want in ((f"skip_in_shifts[{i}]", skip_in_shifts[i], want_skip),
                               (f"out_shifts[{i}]", out_shifts[i], want_out)):
            if got != want:
                raise BundleError(f"{path}: {key}: {got}, but the scales (and shifts) give {want}")
        blocks.append(IntBlock(cs["conv1"], cs["conv2"], cs["conv3"], cs.get("proj"),
                               skip_in_shifts[i], out_shifts[i]))
    p = IntStage(blocks, RoundingMode(r), scales)
    rtp = _array(path, a, "rtp", np.int32, (N_BLOCKS * len(CORE_ROLES), RTP_WORDS))
    if not np.array_equal(p.rtp_table(), rtp):
        raise BundleError(f"{path}: rtp: RTP table does not match the recorded shifts")
    return p


def scale_keys(n_blocks: int = N_BLOCKS) -> list[str]:
    """Keys of ``IntStage.scales_log2`` (as ``extract`` writes them); block2.relu3 is the
    stage output scale that feeds the head."""
    return ["stage_in"] + [f"block{i}.{k}" for i in range(n_blocks) for k in _SCALE_ROLES]


def _expected_convs(i: int) -> dict[str, tuple[int, int, int, int]]:
    """OIHW shapes of block ``i``'s convs, in weight-blob order."""
    c_in, mid, c_out = (IN_SHAPE[0] if i == 0 else OUT_SHAPE[0]), MID_CH, OUT_SHAPE[0]
    head = {"conv1": (mid, c_in, 1, 1)}
    if i == 0:
        head["proj"] = (c_out, c_in, 1, 1)
    return {**head, "conv2": (mid, mid, 3, 3), "conv3": (c_out, mid, 1, 1)}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shift(path, v: Any, key: str) -> int:
    try:
        return check_shift(v if _is_int(v) else str(v)[:40], key)
    except QuantError as e:
        raise BundleError(f"{path}: {e}") from None


def _shift_list(path, m: dict[str, Any], key: str) -> list[int]:
    v = m.get(key)
    if not isinstance(v, list) or len(v) != N_BLOCKS:
        raise BundleError(f"{path}: {key}: expected a list of {N_BLOCKS} shifts, got "
                          f"{str(v)[:60]}")
    return [_shift(path, s, f"{key}[{i}]") for i, s in enumerate(v)]


def _check_scales(path, scales: Any) -> dict[str, int]:
    if not isinstance(scales, dict):
        raise BundleError(f"{path}: scales_log2: missing or not an object")
    want = scale_keys()
    missing, extra = [k for k in want if k not in scales], sorted(set(scales) - set(want))
    if missing or extra:
        raise BundleError(f"{path}: scales_log2: missing {missing}, unexpected {extra}")
    lo, hi = SCALE_LOG2_RANGE
    for k in want:
        v = scales[k]
        if not _is_int(v) or not lo <= v <= hi:
            raise BundleError(f"{path}: scales_log2.{k}: {str(v)[:40]} is not an integer "
                              f"exponent in [{lo}, {hi}] (scales are powers of two)")
    return {k: scales[k] for k in want}


def _array(path, a: dict[str, np.ndarray], name: str, dtype, shape: tuple[int, ...]) -> np.ndarray:
    if name not in a:
        raise BundleError(f"{path}: array {name!r} missing")
    x = a[name]
    if x.dtype != dtype or x.shape != shape:
        raise BundleError(f"{path}: array {name!r} is {x.dtype}{list(x.shape)}, expected "
                          f"{np.dtype(dtype)}{list(shape)}")
    return x


def _block_convs(path, i: int, convs: dict[str, Any], a: dict[str, np.ndarray]
                 ) -> dict[str, IntLayer]:
    """Block ``i``'s convs from its weight blob; specs checked before anything is unpacked."""
    expected = _expected_convs(i)
    total = sum(conv_params_nbytes(*s) for s in expected.values())
    blob = _array(path, a, f"wts_block{i}", np.int8, (total,))
    out, off = {}, 0
    for name, shape in expected.items():
        key = f"block{i}.{name}"
        spec = convs.get(key)
        if not isinstance(spec, dict):
            raise BundleError(f"{path}: convs.{key}: missing or not an object")
        nbytes = conv_params_nbytes(*shape)
        for field_, want in (("shape", list(shape)), ("offset", off), ("nbytes", nbytes)):
            if spec.get(field_) != want or isinstance(spec.get(field_), bool):
                raise BundleError(f"{path}: convs.{key}.{field_}: {str(spec.get(field_))[:40]}, "
                                  f"expected {want}")
        shift = _shift(path, spec.get("shift"), f"convs.{key}.shift")
        w, b = unpack_conv_params(blob[off:off + nbytes], *shape)
        if not np.array_equal(b, _array(path, a, f"bias.{key}", np.int32, (shape[0],))):
            raise BundleError(f"{path}: {key}: bias in the weight blob differs from the "
                              "stored bias")
        out[name] = IntLayer(w, b, shift)
        off += nbytes
    return out
