"""Brevitas power-of-two PTQ of the whole LeNet-5, and extraction of its integer stage.

    x   = in_q(image)                    uint8, image in [0, 1] (ReLU is the identity)
    c1  = relu1(conv1(x))                uint8 ] conv1 5x5 + ReLU, then 2x2 max pool
    c2  = relu2(conv2(pool(c1)))         uint8 ] conv2 5x5 + ReLU, then 2x2 max pool
    f1  = relu3(fc1(flatten(pool(c2))))  uint8
    f2  = relu4(fc2(f1))                 uint8
    out = fc3(f2)                        int32 accumulators + bias at scale s_f2 * s_w3
Weights int8 per-tensor po2 narrow range, biases int32 at s_in * s_w, activation
quantizers in the given rounding mode (common.ptq). Max pooling of uint8 values on a
shared scale is exact, so pooling the QuantTensors is pooling the integers.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from common.intlayer import IntLayer
from common.ptq import (act_scale, calibrate_for_extraction, int_conv, quant_act, quant_conv,
                        quant_linear)
from common.quant import RoundingMode, combined_shift, po2_exponent
from lenet_npu.model import LeNet5, conv1_padding
from lenet_npu.stage import LAYERS, IntLeNet

# Quantized activations in network order: trace key -> activation quantizer attribute.
ACTS = {"input": "in_q", "conv1": "relu1", "conv2": "relu2", "fc1": "relu3", "fc2": "relu4"}

def _value(t):
    """Float value of a QuantTensor, or the tensor itself (plain while calibrating)."""
    return getattr(t, "value", t)

class QuantLeNet5(nn.Module):
    """Fake-quantized LeNet-5 built from a float one; ``forward`` gives log-probabilities."""

    def __init__(self, fm: LeNet5, rounding: RoundingMode, bits_w: int = 8, bits_a: int = 8):
        super().__init__()
        self.rounding = RoundingMode(rounding)
        self.in_channels = fm.in_channels
        self.in_q = quant_act(rounding, signed=False, bits=bits_a)
        self.conv1 = quant_conv(fm.conv1.weight, fm.conv1.bias,
                                padding=conv1_padding(fm.in_channels), bits=bits_w)
        self.conv2 = quant_conv(fm.conv2.weight, fm.conv2.bias, bits=bits_w)
        self.fc1 = quant_linear(fm.fc1.weight, fm.fc1.bias, bits=bits_w)
        self.fc2 = quant_linear(fm.fc2.weight, fm.fc2.bias, bits=bits_w)
        self.fc3 = quant_linear(fm.fc3.weight, fm.fc3.bias, bits=bits_w)
        for name in ACTS.values():
            if name != "in_q":
                setattr(self, name, quant_act(rounding, signed=False, bits=bits_a))
        self.pool = nn.MaxPool2d(2)

    def trace(self, x: torch.Tensor) -> dict:
        """Every quantized activation by name: input, conv1, pool1, conv2, pool2, fc1, fc2,
        fc3 (QuantTensors; plain tensors while calibrating). x: (N, C, H, W) in [0, 1]."""
        t = {"input": self.in_q(x)}
        t["conv1"] = self.relu1(self.conv1(t["input"]))
        t["pool1"] = self.pool(t["conv1"])
        t["conv2"] = self.relu2(self.conv2(t["pool1"]))
        t["pool2"] = self.pool(t["conv2"])
        t["fc1"] = self.relu3(self.fc1(torch.flatten(t["pool2"], 1)))
        t["fc2"] = self.relu4(self.fc2(t["fc1"]))
        t["fc3"] = self.fc3(t["fc2"])
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(_value(self.trace(x)["fc3"]), dim=1)

    # ---- common.network.QuantNet: the host program's view (the whole network offloaded)
    @torch.no_grad()
    def offload_input(self, x: torch.Tensor) -> np.ndarray:
        """Input quantizer -> uint8 NCHW images."""
        return _ints(self.in_q(x)).astype(np.uint8)

    @torch.no_grad()
    def reference(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(int32 logits (N, 10), predictions) of the fake-quant model."""
        logits = _ints(self.trace(x)["fc3"])
        return logits.astype(np.int32), logits.argmax(1)

    def onnx_module(self) -> nn.Module:
        """Image -> logits (int32 accumulators times their scale), for the QCDQ export."""
        return _Logits(self)

    def onnx_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the input of ``onnx_module`` (the images themselves)."""
        return x

    def output_scale(self) -> float:
        """Scale of the int32 logits: s_in * s_w of fc3 (power of two)."""
        return 2.0 ** extract(self).scales_log2["fc3"]

    def predict(self, offload_out: np.ndarray) -> np.ndarray:
        """Argmax of the int32 logits (the one step left on the host)."""
        return np.asarray(offload_out).argmax(1)


class _Logits(nn.Module):
    def __init__(self, qm: "QuantLeNet5"):
        super().__init__()
        self.qm = qm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _value(self.qm.trace(x)["fc3"])


def _ints(q) -> np.ndarray:
    """Integer values of a QuantTensor (value / scale, exact for po2 scales), int64."""
    return torch.round(q.value / q.scale).to(torch.int64).numpy()

def build_quant_model(float_model: LeNet5, calib_images: torch.Tensor,
                      rounding: RoundingMode, batch: int = 64, bias_correction: bool = True,
                      progress: bool = True, bits_w: int = 8, bits_a: int = 8) -> QuantLeNet5:
    """Build the Brevitas model of ``float_model`` and calibrate it on ``calib_images``
    (N, C, H, W float in [0, 1], training images); bits_w / bits_a: weight / activation
    widths (8 = the deployed int8 model, other widths for the studies)."""
    float_model.eval()
    qm = QuantLeNet5(float_model, rounding, bits_w, bits_a)
    calibrate_for_extraction(qm, calib_images, batch, bias_correction, progress)
    return qm

@torch.no_grad()
def trace_ints(qm: QuantLeNet5, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Brevitas's integers at every traced point (value / scale, exact for po2 scales)."""
    qm.eval()
    return {k: _ints(q) for k, q in qm.trace(x).items()}

def extract(qm: QuantLeNet5) -> IntLeNet:
    """Integer LeNet of a calibrated QuantLeNet5 (after build_quant_model)."""
    s = {k: act_scale(getattr(qm, a), f"{k} activation") for k, a in ACTS.items()}
    ins = dict(zip(LAYERS, ("input", "conv1", "conv2", "fc1", "fc2")))
    layers: dict[str, IntLayer] = {}
    scales_log2: dict[str, int] = {k: po2_exponent(v, k) for k, v in s.items()}
    for name in LAYERS:
        s_in = s[ins[name]]
        ic = int_conv(getattr(qm, name), s_in, name)
        if name == "fc3":
            shift = 0
            scales_log2["fc3"] = po2_exponent(s_in * ic.s_w, "fc3 accumulator")
        else:
            shift = combined_shift(s_in, ic.s_w, s[name], name)
        layers[name] = IntLayer(ic.weight, ic.bias, shift)
    return IntLeNet(layers, conv1_padding(qm.in_channels), qm.rounding, scales_log2)

__all__ = ["QuantLeNet5", "build_quant_model", "extract", "trace_ints"]
