"""Brevitas helpers shared by the networks: power-of-two quantizers per rounding mode,
calibration, and extraction of integers and scales from calibrated layers.

Quantizers (all per-tensor, symmetric, scales restricted to powers of two):
  weights     int8 narrow range [-127, 127], scale from the max |w|;
  activations int8 [-128, 127] or uint8 [0, 255] (after ReLU), scale from the 99.999th
              percentile collected during calibration;
  biases      int32 with scale s_in * s_w (Brevitas ``Int32Bias``).
The activation rounding follows the project's rounding setting so that the integer
pipeline (common.quant.requantize) matches the Brevitas fake-quant model bit for bit:
half_even is Brevitas's own ``torch.round``; half_up is floor(x + 0.5) (straight-through
gradient), plugged in as the quantizer's ``float_to_int_impl``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from brevitas.graph.calibrate import bias_correction_mode, calibration_mode
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer as QuantWBIOL
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint,
                            Int32Bias, Uint8ActPerTensorFixedPoint)
from torch import nn

from common.quant import RoundingMode, po2_exponent


class AbsPercentileTopK(torch.nn.Module):
    """Brevitas ``AbsPercentile`` statistic (per tensor), computed with two ``torch.topk``.

    The same value: the k-th smallest |x| with k = floor(q/100 * n + 0.5), i.e. the m-th
    largest with m = n - k + 1. For a high percentile m is small (q = 99.999: ~40 of 4M),
    and the m largest of the whole tensor are among the m largest of each of ROWS rows:
    a row-wise top-m, then a top-m of those, ~4x faster than Brevitas's ``kthvalue`` on
    calibration batches (which was ~15 s of the conv2x PTQ step). Other cases use
    ``kthvalue`` as Brevitas does."""

    ROWS = 64

    def __init__(self, high_percentile_q: float, stats_reduce_dim=None,
                 keepdim: bool = False) -> None:
        super().__init__()
        if stats_reduce_dim is not None:
            raise ValueError("AbsPercentileTopK is per-tensor only (stats_reduce_dim=None)")
        if not 0 < high_percentile_q <= 100:
            raise ValueError(f"percentile {high_percentile_q} outside (0, 100]")
        self.q = float(high_percentile_q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.detach().abs().reshape(-1)
        n = a.numel()
        k = max(1, int(math.floor(0.01 * self.q * n + 0.5)))
        m = n - k + 1
        if n % self.ROWS or m * 4 * self.ROWS > n:
            return torch.kthvalue(a, k).values
        rows = torch.topk(a.view(self.ROWS, -1), m, dim=1, sorted=False).values
        return torch.topk(rows.reshape(-1), m).values[-1]


class ClampToRange(torch.nn.Module):
    """Brevitas ``TensorClamp`` (min/max given as tensors) as one ``torch.clamp``.

    The same values and gradient as Brevitas's two ``torch.where`` passes, in one pass over
    the activation; the integer range clamp was a quarter of the fake-quant forward."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, min_val: torch.Tensor,
                max_val: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, min_val, max_val)


class RoundHalfUpSte(torch.nn.Module):
    """floor(x + 0.5) forward, identity gradient (AIE ``positive_inf`` rounding)."""

    def __init__(self) -> None:  # explicit: Brevitas's injector rejects *args/**kwargs
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (torch.floor(x + 0.5) - x).detach()


class Int8ActPo2(Int8ActPerTensorFixedPoint):
    """Signed int8 po2 activation quantizer (round half to even, Brevitas's default)."""

    scaling_stats_impl = AbsPercentileTopK
    tensor_clamp_impl = ClampToRange


class Uint8ActPo2(Uint8ActPerTensorFixedPoint):
    """Unsigned int8 po2 activation quantizer (round half to even)."""

    scaling_stats_impl = AbsPercentileTopK
    tensor_clamp_impl = ClampToRange


class Int8ActPo2HalfUp(Int8ActPo2):
    """Signed int8 po2 activation quantizer rounding half up."""

    float_to_int_impl = RoundHalfUpSte


class Uint8ActPo2HalfUp(Uint8ActPo2):
    """Unsigned int8 po2 activation quantizer rounding half up."""

    float_to_int_impl = RoundHalfUpSte


def act_quantizers(rounding: RoundingMode) -> tuple[type, type]:
    """(signed int8, unsigned int8) Brevitas activation quantizers for ``rounding``."""
    if RoundingMode(rounding) is RoundingMode.HALF_UP:
        return Int8ActPo2HalfUp, Uint8ActPo2HalfUp
    return Int8ActPo2, Uint8ActPo2


def _with_params(q: QuantWBIOL, w: torch.Tensor, b: torch.Tensor) -> QuantWBIOL:
    """``q`` with its weight and bias set to copies of the float ``w`` and ``b``."""
    with torch.no_grad():
        q.weight.copy_(w)
        q.bias.copy_(b)
    return q


def quant_conv(conv_w: torch.Tensor, conv_b: torch.Tensor, padding: int = 0,
               bits: int = 8) -> QuantConv2d:
    """A QuantConv2d (po2 weights, ``bits`` wide, narrow range; int32 bias) initialised with
    folded float params. bits = 8 is the deployed int8 path; other widths serve the studies."""
    o, i, kh, kw = conv_w.shape
    return _with_params(QuantConv2d(i, o, (kh, kw), padding=padding, bias=True,
                                    weight_quant=Int8WeightPerTensorFixedPoint,
                                    weight_bit_width=bits, bias_quant=Int32Bias,
                                    return_quant_tensor=True), conv_w, conv_b)


def quant_linear(fc_w: torch.Tensor, fc_b: torch.Tensor, bits: int = 8) -> QuantLinear:
    """A QuantLinear (po2 weights, ``bits`` wide, narrow range; int32 bias) initialised with
    float params (O, I); bits = 8 is the deployed path."""
    o, i = fc_w.shape
    return _with_params(QuantLinear(i, o, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                                    weight_bit_width=bits, bias_quant=Int32Bias,
                                    return_quant_tensor=True), fc_w, fc_b)


def quant_act(rounding: RoundingMode, signed: bool, bits: int = 8) -> nn.Module:
    """QuantIdentity (int8) or QuantReLU (uint8) returning QuantTensors; ``bits`` wide
    (8 is the deployed path; other widths serve the studies)."""
    i8, u8 = act_quantizers(rounding)
    if signed:
        return QuantIdentity(act_quant=i8, bit_width=bits, return_quant_tensor=True)
    return QuantReLU(act_quant=u8, bit_width=bits, return_quant_tensor=True)


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor], progress: bool = True) -> None:
    """Collect activation statistics with Brevitas ``calibration_mode`` (eval mode after)."""
    from tqdm import tqdm

    model.eval()
    with calibration_mode(model):
        for x in tqdm(list(batches), desc="calibrate", disable=not progress):
            model(x)
    model.eval()


def act_scale(act: nn.Module, what: str) -> float:
    """Power-of-two output scale of a calibrated QuantIdentity/QuantReLU (checked)."""
    s = act.act_quant.scale()
    po2_exponent(s, what)
    return float(s.item())


@dataclass(frozen=True)
class IntConv:
    """Integer parameters of one QuantConv2d or QuantLinear: int8 weights (OIHW or OI),
    int32 bias, weight scale."""

    weight: np.ndarray   # int8, (O, I, KH, KW) or (O, I)
    bias: np.ndarray     # int32, (O,), in units of s_in * s_w
    s_w: float           # weight scale (power of two)


def int_conv(q: QuantWBIOL, s_in: float, what: str) -> IntConv:
    """Extract integers from a calibrated QuantConv2d or QuantLinear whose input scale is
    ``s_in``."""
    qw = q.quant_weight()
    s_w = float(qw.scale.reshape(-1)[0].item())
    po2_exponent(s_w, f"{what} weight scale")
    if qw.scale.numel() != 1:
        raise ValueError(f"{what}: expected a per-tensor weight scale, got {qw.scale.shape}")
    w = qw.int(float_datatype=False).detach().cpu().numpy()
    if w.min() < -128 or w.max() > 127:
        raise ValueError(f"{what}: weights outside int8")
    s_b = s_in * s_w
    bq = q.bias_quant
    if not bq.cache_inference_quant_bias or bq._cached_bias is None:
        raise ValueError(f"{what}: no cached quantized bias; call enable_bias_cache(model) "
                         "and run one eval forward first")
    cached_scale = float(bq.get_cached("scale").reshape(-1)[0].item())
    if cached_scale != s_b:
        raise ValueError(f"{what}: bias scale {cached_scale} != s_in * s_w = {s_b}")
    b = torch.round(bq.get_cached("value").detach().double() / s_b)
    lim = 2.0 ** 31
    if b.min() < -lim or b.max() > lim - 1:
        raise ValueError(f"{what}: bias does not fit int32 at scale {s_b}")
    return IntConv(w.astype(np.int8), b.numpy().astype(np.int32), s_w)


def enable_bias_cache(model: nn.Module) -> None:
    """Make every QuantConv2d/QuantLinear keep its last quantized bias (read by
    ``int_conv``)."""
    for m in model.modules():
        if isinstance(m, QuantWBIOL) and m.bias_quant is not None:
            m.bias_quant.cache_inference_quant_bias = True


@torch.no_grad()
def calibrate_for_extraction(model: nn.Module, calib_images: torch.Tensor, batch: int = 64,
                             bias_correction: bool = False, progress: bool = True) -> None:
    """Calibrate ``model`` on ``calib_images`` (batches of ``batch``); with
    ``bias_correction``, then shift every float bias by the mean output error that weight
    quantization causes on those images (Brevitas ``bias_correction_mode``; the int32
    bias is quantized from the corrected one); last, cache every quantized bias with one
    eval forward so that ``int_conv`` can read it."""
    if len(calib_images) == 0:
        raise ValueError("calibration needs at least one image, got none")
    batches = [calib_images[i:i + batch] for i in range(0, len(calib_images), batch)]
    calibrate(model, batches, progress=progress)
    if bias_correction:
        with bias_correction_mode(model):
            for x in batches:
                model(x)
    enable_bias_cache(model)
    model(calib_images[:2])
