"""Brevitas fake-quantization of any float model with Conv2d/Linear layers.

Every nn.Conv2d / nn.Linear becomes: input quantizer (QuantIdentity, unsigned where the
calibration inputs are never negative, else signed) -> QuantConv2d / QuantLinear with a
weight quantizer; biases stay float, BatchNorm is not folded. Schemes:
  po2         symmetric, power-of-two scale, per tensor (the NPU's kind of quantizer)
  po2-channel as po2 but one power-of-two weight scale per output channel
  asym        asymmetric with zero point, float scale (the seeds' notebooks)
A width of None leaves that kind in float.
"""
from __future__ import annotations

import copy

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas.quant import (Int8WeightPerTensorFixedPoint, ShiftedUint8ActPerTensorFloat,
                            ShiftedUint8WeightPerTensorFloat)
from torch import nn

from common.ptq import Int8ActPo2, Uint8ActPo2, calibrate


class Int8WeightPerChannelPo2(Int8WeightPerTensorFixedPoint):
    """Symmetric narrow-range weights, one power-of-two scale per output channel."""

    scaling_per_output_channel = True


# scheme -> (weight quantizer, signed act quantizer, unsigned act quantizer)
SCHEMES: dict[str, tuple[type, type, type]] = {
    "po2": (Int8WeightPerTensorFixedPoint, Int8ActPo2, Uint8ActPo2),
    "po2-channel": (Int8WeightPerChannelPo2, Int8ActPo2, Uint8ActPo2),
    "asym": (ShiftedUint8WeightPerTensorFloat, ShiftedUint8ActPerTensorFloat,
             ShiftedUint8ActPerTensorFloat),
}
QUANT_LAYERS = (nn.Conv2d, nn.Linear)


class _QuantLayer(nn.Module):
    """Input quantizer followed by the quantized layer."""

    def __init__(self, in_q: nn.Module, layer: nn.Module):
        super().__init__()
        self.in_q = in_q
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.in_q(x))


def quant_layer_names(model: nn.Module) -> list[str]:
    """Names of the Conv2d / Linear layers of ``model`` in module order (error if none)."""
    names = [n for n, m in model.named_modules() if isinstance(m, QUANT_LAYERS)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to quantize")
    return names


@torch.no_grad()
def input_stats(model: nn.Module, calib: torch.Tensor) -> dict[str, tuple[float, bool]]:
    """For each Conv2d/Linear over the calibration images: (max |input|, whether every
    input is >= 0)."""
    out: dict[str, tuple[float, bool]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, QUANT_LAYERS):
            def hook(mod, args, name=name):
                mx, nonneg = out.get(name, (0.0, True))
                out[name] = (max(mx, float(args[0].abs().max())),
                             nonneg and bool((args[0] >= 0).all()))
            hooks.append(m.register_forward_pre_hook(hook))
    try:
        model.eval()
        model(calib)
    finally:
        for h in hooks:
            h.remove()
    return out


def input_is_nonnegative(model: nn.Module, calib: torch.Tensor) -> dict[str, bool]:
    """For each Conv2d/Linear: whether all its calibration inputs are >= 0."""
    return {k: v[1] for k, v in input_stats(model, calib).items()}


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def fake_quant_model(float_model: nn.Module, calib: torch.Tensor, scheme: str,
                     bits_w: int | None, bits_a: int | None) -> nn.Module:
    """Calibrated Brevitas copy of ``float_model`` (which is left untouched)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; known: {sorted(SCHEMES)}")
    wq, aq_signed, aq_unsigned = SCHEMES[scheme]
    model = copy.deepcopy(float_model).eval()
    nonneg = input_is_nonnegative(model, calib)
    for name in quant_layer_names(model):
        m = model.get_submodule(name)
        if bits_a is None:
            in_q: nn.Module = nn.Identity()
        else:
            in_q = QuantIdentity(act_quant=aq_unsigned if nonneg[name] else aq_signed,
                                 bit_width=bits_a, return_quant_tensor=False)
        wkw = ({"weight_quant": None} if bits_w is None
               else {"weight_quant": wq, "weight_bit_width": bits_w})
        if isinstance(m, nn.Conv2d):
            q = QuantConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                            padding=m.padding, dilation=m.dilation, groups=m.groups,
                            bias=m.bias is not None, bias_quant=None,
                            return_quant_tensor=False, **wkw)
        else:
            q = QuantLinear(m.in_features, m.out_features, bias=m.bias is not None,
                            bias_quant=None, return_quant_tensor=False, **wkw)
        with torch.no_grad():
            q.weight.copy_(m.weight)
            if m.bias is not None:
                q.bias.copy_(m.bias)
        _replace(model, name, _QuantLayer(in_q, q))
    calibrate(model, [calib[i:i + 64] for i in range(0, len(calib), 64)], progress=False)
    return model
