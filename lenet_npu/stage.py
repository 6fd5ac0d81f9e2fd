"""LeNet-5 in integers: the whole network as the NPU runs it, and its golden model.

Layers (all on compute tiles; only the argmax stays on the host):
  conv1 5x5 (C_in -> 6, padding 2 for 1-channel 28x28, 0 for 3-channel 32x32) + ReLU
  -> uint8, max-pool 2x2; conv2 5x5 (6 -> 16) + ReLU -> uint8, max-pool 2x2;
  fc1 400 -> 120 + ReLU -> uint8; fc2 120 -> 84 + ReLU -> uint8;
  fc3 84 -> 10: int32 accumulators plus bias are the output (no requantization, so the
  host argmax sees exactly the order of Brevitas's logits: they are the same integers
  times one positive scale).
Stage input: uint8 NCHW image (Brevitas uint8 power-of-two input quantizer; the image is
in [0, 1]). Flatten order of the 400 features: PyTorch's, c * 25 + y * 5 + x.

Device facts (lenet_npu/aie2.py; the one place they are written down):
  * Input variants (INPUT_VARIANTS): 1 channel 28x28 with conv1 padding 2, or 3 channels
    32x32 with padding 0; both give 28x28 conv1 outputs.
  * Images tensor: B images back to back, each the YCXC8 image of common.layouts
    (``[H][1][W][8]`` uint8, channels zero-padded to 8): :func:`device_images`.
  * Weight blob (:meth:`IntLeNet.weight_blob`), int8, layers in LAYERS order, each
    ``[weights][int32 LE bias]``: conv1, conv2 as common.layouts.pack_conv_params
    (OIYXI8O8, channels padded to 8: conv1 8x8, conv2 16x8), fc1, fc2, fc3 as
    common.layouts.pack_fc_params (O8I8 tiles; fc1 120x400 with its 400 inputs in the
    order pool2 delivers them, the YCXC8 image [5][16/8][5][8], i.e.
    layouts.yc8x_flatten_order(16, 5, 5); fc2 84x120 -> padded 88x120; fc3 16x88).
    Sizes: :func:`param_nbytes`.
  * Logits tensor: int32 (B, LOGITS_PAD); entries 10.. are 0 (padding rows of fc3).
  * RTP table (:meth:`IntLeNet.rtp_table`): int32 (len(LAYERS), RTP_WORDS), one row per
    core in LAYERS order; slot 0 = requantization shift (0 for fc3, which outputs
    accumulators), slot 1 = rounding code (common.quant.RoundingMode.code), other slots 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from common import golden_torch, layouts
from common.intlayer import IntLayer
from common.quant import RoundingMode

LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")
INPUT_VARIANTS = {1: (28, 2), 3: (32, 0)}     # in_channels -> (image size, conv1 padding)
N_CLASSES = 10
LOGITS_PAD = layouts.pad8(N_CLASSES)
RTP_WORDS = 16
POOL2_SHAPE = (16, 5, 5)                      # (C, H, W) of the map fc1 reads


def _check_variant(in_channels: int) -> int:
    if in_channels not in INPUT_VARIANTS:
        raise ValueError(f"LeNet input channels {in_channels}: expected one of "
                         f"{sorted(INPUT_VARIANTS)}")
    return int(in_channels)


def layer_shapes(in_channels: int) -> dict[str, tuple[int, ...]]:
    """Weight shape of each layer (OIHW for convs, OI for fc), unpadded."""
    c = _check_variant(in_channels)
    return {"conv1": (6, c, 5, 5), "conv2": (16, 6, 5, 5), "fc1": (120, 400),
            "fc2": (84, 120), "fc3": (N_CLASSES, 84)}


def param_nbytes(in_channels: int) -> dict[str, int]:
    """Bytes of each layer's part of the weight blob, LAYERS order."""
    sh = layer_shapes(in_channels)
    out = {n: layouts.conv_params_nbytes(*sh[n]) for n in ("conv1", "conv2")}
    out.update({n: layouts.fc_params_nbytes(o, i) for n, (o, i) in
                ((n, sh[n]) for n in ("fc1", "fc2", "fc3"))})
    return out


def device_images(x: np.ndarray) -> np.ndarray:
    """uint8 NCHW images (N, C, H, W) -> the device's images tensor (flat uint8, YCXC8
    per image, channels padded to 8)."""
    a = np.asarray(x)
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"device_images: expected uint8 (N, C, H, W), got {a.dtype} "
                         f"{a.shape}")
    size = INPUT_VARIANTS[_check_variant(a.shape[1])][0]
    if a.shape[2:] != (size, size):
        raise ValueError(f"device_images: {a.shape[1]}-channel images must be "
                         f"{size}x{size}, got {a.shape[2]}x{a.shape[3]}")
    return layouts.to_yc8x(a).reshape(-1)


def logits_from_device(out: np.ndarray, n: int) -> np.ndarray:
    """The device's logits tensor -> int32 (n, 10)."""
    a = np.asarray(out)
    if a.dtype != np.int32 or a.size != n * LOGITS_PAD:
        raise ValueError(f"logits_from_device: expected {n * LOGITS_PAD} int32, got "
                         f"{a.dtype} {a.shape}")
    return np.ascontiguousarray(a.reshape(n, LOGITS_PAD)[:, :N_CLASSES])


@dataclass
class IntLeNet:
    """Integer LeNet-5: layers by name (LAYERS), conv1 padding, rounding mode and the
    log2 scales of the activations (``input``, ``conv1``, ``conv2``, ``fc1``, ``fc2``,
    ``fc3`` = scale of the int32 logits)."""

    layers: dict[str, IntLayer]
    conv1_padding: int
    rounding: RoundingMode
    scales_log2: dict[str, int] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.layers["conv1"].weight.shape[1])

    def weight_blob(self) -> np.ndarray:
        """All layers' parameters as the device reads them (module docstring), int8."""
        c = self.in_channels
        if INPUT_VARIANTS[_check_variant(c)][1] != self.conv1_padding:
            raise ValueError(f"conv1 padding {self.conv1_padding} does not match the "
                             f"{c}-channel input variant")
        L, sh = self.layers, layer_shapes(c)
        for n in LAYERS:
            if L[n].weight.shape != sh[n]:
                raise ValueError(f"{n}: weight shape {L[n].weight.shape}, expected {sh[n]}")
        parts = [layouts.pack_conv_params(L[n].weight, L[n].bias) for n in ("conv1", "conv2")]
        parts.append(layouts.pack_fc_params(L["fc1"].weight, L["fc1"].bias,
                                            layouts.yc8x_flatten_order(*POOL2_SHAPE)))
        parts += [layouts.pack_fc_params(L[n].weight, L[n].bias) for n in ("fc2", "fc3")]
        assert [p.size for p in parts] == list(param_nbytes(c).values())
        return np.concatenate(parts)

    def rtp_table(self) -> np.ndarray:
        """int32 (len(LAYERS), RTP_WORDS): slot 0 shift, slot 1 rounding code per core."""
        t = np.zeros((len(LAYERS), RTP_WORDS), np.int32)
        for i, n in enumerate(LAYERS):
            t[i, 0] = 0 if n == "fc3" else self.layers[n].shift
            t[i, 1] = self.rounding.code
        return t

    # ---- common.network.IntStage
    def golden(self, x: np.ndarray, ops: ModuleType = golden_torch) -> np.ndarray:
        """Integer reference: uint8 NCHW images -> int32 logits (N, 10)."""
        return golden_stage(self, x, ops)

    def device_inputs(self, x: np.ndarray, batch: int) -> np.ndarray:
        """uint8 NCHW images (n <= batch) -> images tensor of ``batch`` images (zero
        images pad a short batch)."""
        a = np.asarray(x)
        if len(a) > batch:
            raise ValueError(f"{len(a)} images do not fit a call of {batch}")
        if len(a) < batch:
            a = np.concatenate([a, np.zeros((batch - len(a),) + a.shape[1:], a.dtype)])
        return device_images(a)

    def device_outputs(self, batch: int) -> np.ndarray:
        return np.zeros(batch * LOGITS_PAD, np.int32)

    def from_device(self, out: np.ndarray, n: int) -> np.ndarray:
        return logits_from_device(out, len(out) // LOGITS_PAD)[:n]

    def bundle_content(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Manifest fields (shapes, shifts, padding, scales) and arrays (the weight blob,
        the RTP table, and every layer's bias)."""
        arrays = {"weights": self.weight_blob(), "rtp": self.rtp_table()}
        arrays.update({f"bias.{n}": self.layers[n].bias.astype(np.int32) for n in LAYERS})
        fields = {"in_channels": self.in_channels, "conv1_padding": self.conv1_padding,
                  "layers": {n: {"shape": list(self.layers[n].weight.shape),
                                 "shift": int(self.layers[n].shift)} for n in LAYERS},
                  "scales_log2": dict(self.scales_log2),
                  "output": "int32 logits (accumulators + bias), scale 2**scales_log2.fc3"}
        return fields, arrays

    def summary_lines(self) -> list[str]:
        return ["shifts " + " ".join(f"{n} {self.layers[n].shift}" for n in LAYERS[:-1])
                + f"; {LAYERS[-1]} outputs int32 logits (scale 2^{self.scales_log2.get('fc3')})"]


def stage_from_bundle(m: dict, a: dict[str, np.ndarray], where: str) -> IntLeNet:
    """Rebuild and validate an IntLeNet from a bundle (the weight blob is the source;
    stored biases, shapes, shifts and the RTP table must agree with it)."""
    from common.bundle import BundleError
    from common.quant import check_shift

    c = int(m["in_channels"])
    if c not in INPUT_VARIANTS or m["conv1_padding"] != INPUT_VARIANTS[c][1]:
        raise BundleError(f"{where}: input variant {c} channels / padding "
                          f"{m['conv1_padding']} is not one of {INPUT_VARIANTS}")
    shapes, sizes, blob = layer_shapes(c), param_nbytes(c), a["weights"]
    if blob.dtype != np.int8 or blob.size != sum(sizes.values()):
        raise BundleError(f"{where}: weight blob {blob.dtype} of {blob.size} bytes, expected "
                          f"int8 of {sum(sizes.values())}")
    layers, off = {}, 0
    for n in LAYERS:
        spec = m["layers"][n]
        if tuple(spec["shape"]) != shapes[n]:
            raise BundleError(f"{where}: layer {n}: shape {spec['shape']}, expected {shapes[n]}")
        part = blob[off:off + sizes[n]]
        off += sizes[n]
        if n in ("conv1", "conv2"):
            w, b = layouts.unpack_conv_params(part, *shapes[n])
        else:
            order = layouts.yc8x_flatten_order(*POOL2_SHAPE) if n == "fc1" else None
            w, b = layouts.unpack_fc_params(part, *shapes[n], order)
        if not np.array_equal(b, a[f"bias.{n}"]):
            raise BundleError(f"{where}: layer {n}: bias in the weight blob differs from the "
                              "stored bias")
        shift = check_shift(spec["shift"], f"{where}: layer {n}")
        if n == "fc3" and shift != 0:
            raise BundleError(f"{where}: layer fc3 outputs accumulators; shift must be 0")
        layers[n] = IntLayer(w, b, shift)
    scales = m["scales_log2"]
    for k in ("input", "conv1", "conv2", "fc1", "fc2", "fc3"):
        v = scales.get(k) if isinstance(scales, dict) else None
        if not isinstance(v, int) or isinstance(v, bool) or not -64 <= v <= 64:
            raise BundleError(f"{where}: scale {k!r}: log2 exponent {v!r} is not an integer "
                              "in -64..64 (scales must be powers of two)")
    p = IntLeNet(layers, INPUT_VARIANTS[c][1], RoundingMode.parse(m["rounding"]), dict(scales))
    if not np.array_equal(p.rtp_table(), a["rtp"]):
        raise BundleError(f"{where}: RTP table does not match the recorded shifts")
    return p


def golden_stage(p: IntLeNet, x: np.ndarray, ops: ModuleType = golden_torch) -> np.ndarray:
    """Integer reference: uint8 NCHW images (N, C, H, W) -> int32 logits (N, 10).
    ``ops``: common.golden_torch (fast, default) or common.golden (the reference formulas)."""
    r, L = p.rounding, p.layers
    h = ops.conv_requant(x, L["conv1"].weight, L["conv1"].bias, L["conv1"].shift, r,
                         np.uint8, padding=p.conv1_padding)
    h = ops.maxpool2x2(h)
    h = ops.conv_requant(h, L["conv2"].weight, L["conv2"].bias, L["conv2"].shift, r,
                         np.uint8)
    h = ops.maxpool2x2(h).reshape(len(h), -1)
    h = ops.fc_requant(h, L["fc1"].weight, L["fc1"].bias, L["fc1"].shift, r, np.uint8)
    h = ops.fc_requant(h, L["fc2"].weight, L["fc2"].bias, L["fc2"].shift, r, np.uint8)
    return ops.fc_acc(h, L["fc3"].weight, L["fc3"].bias).astype(np.int32)


def random_stage(in_channels: int = 1, rounding: str = "half_even",
                 seed: int = 0) -> IntLeNet:
    """A LeNet of random integers with shifts that keep activations in range (tests)."""
    rng = np.random.default_rng(seed)
    shapes = layer_shapes(in_channels)
    shifts = {"conv1": 8, "conv2": 10, "fc1": 10, "fc2": 9, "fc3": 0}
    layers = {n: IntLayer(rng.integers(-128, 128, s, dtype=np.int8),
                          rng.integers(-2000, 2000, s[0]).astype(np.int32), shifts[n])
              for n, s in shapes.items()}
    return IntLeNet(layers, INPUT_VARIANTS[in_channels][1], RoundingMode.parse(rounding))
