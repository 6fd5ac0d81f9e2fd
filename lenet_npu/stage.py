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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from common import golden_torch
from common.intlayer import IntLayer
from common.quant import RoundingMode

LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


@dataclass
class IntLeNet:
    """Integer LeNet-5: layers by name (LAYERS), conv1 padding, rounding mode and the
    log2 scales of the activations (``input``, ``conv1``, ``conv2``, ``fc1``, ``fc2``,
    ``fc3`` = scale of the int32 logits)."""

    layers: dict[str, IntLayer]
    conv1_padding: int
    rounding: RoundingMode
    scales_log2: dict[str, int] = field(default_factory=dict)


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
    shapes = {"conv1": (6, in_channels, 5, 5), "conv2": (16, 6, 5, 5), "fc1": (120, 400),
              "fc2": (84, 120), "fc3": (10, 84)}
    shifts = {"conv1": 8, "conv2": 10, "fc1": 10, "fc2": 9, "fc3": 0}
    layers = {n: IntLayer(rng.integers(-128, 128, s, dtype=np.int8),
                          rng.integers(-2000, 2000, s[0]).astype(np.int32), shifts[n])
              for n, s in shapes.items()}
    return IntLeNet(layers, 2 if in_channels == 1 else 0, RoundingMode.parse(rounding))
