"""Independent golden model of the integer kernels (numpy, exact).

Written from the formulas, not from the kernel loops: convolution as a sum over taps
of channel contractions (float64 BLAS; exact because every partial sum stays far below
2**53), bias added in int64, then :func:`common.quant.requantize`.

Arrays are plain NCHW (or CHW) integer arrays; weights OIHW int8; biases int32 (O,).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .quant import DEFAULT_ROUNDING, RoundingMode, requantize

_EXACT_LIMIT = 2 ** 52


def _nchw(x: np.ndarray) -> tuple[np.ndarray, bool]:
    a = np.asarray(x)
    if a.ndim == 3:
        return a[None], True
    if a.ndim == 4:
        return a, False
    raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {a.shape}")


def abs_max(a: np.ndarray) -> int:
    """Largest magnitude in an integer array (0 when empty), as a python int."""
    return max(-int(a.min()), int(a.max())) if a.size else 0


def check_conv(x_shape: tuple[int, ...], x_absmax: int, w: np.ndarray,
               b: np.ndarray | None, padding: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Check a convolution of an (N, C, H, W) integer input of largest magnitude
    ``x_absmax``; returns (w, b or None, padding) as arrays / int.

    Raises ValueError for mismatched shapes, non-integer weights, a kernel larger than the
    padded input, or operands whose sums could leave the exact float64 range
    (max|x| * max|w| * C*KY*KX >= 2**52).
    """
    wa = np.asarray(w)
    if wa.ndim != 4 or wa.shape[1] != x_shape[1]:
        raise ValueError(f"weights {wa.shape} do not match input channels {x_shape[1]}")
    if wa.dtype.kind not in "iu":
        raise ValueError("conv2d_acc: integer inputs and weights required")
    p = int(padding)
    o, c, ky, kx = wa.shape
    if x_shape[2] + 2 * p - ky + 1 < 1 or x_shape[3] + 2 * p - kx + 1 < 1:
        raise ValueError("conv2d_acc: kernel larger than padded input")
    if x_absmax * abs_max(wa) * c * ky * kx >= _EXACT_LIMIT:
        raise ValueError("conv2d_acc: sums could exceed exact float64 range")
    bb = None if b is None else np.asarray(b)
    if bb is not None and bb.shape != (o,):
        raise ValueError(f"bias shape {bb.shape} != ({o},)")
    return wa, bb, p


def conv2d_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
               padding: int = 0) -> np.ndarray:
    """Integer convolution, stride 1, zero padding ``padding`` on all four sides.

    x: (N, C, H, W) or (C, H, W) integers; w: (O, C, KY, KX); b: (O,) or None.
    Returns the int64 accumulator (N, O, H+2p-KY+1, W+2p-KX+1) (N dropped for CHW).
    Raises ValueError when a value (bias included) leaves the int32 range: the kernels
    accumulate in int32, so such inputs are outside their contract (and see check_conv).
    """
    xa, squeeze = _nchw(x)
    if xa.dtype.kind not in "iu":
        raise ValueError("conv2d_acc: integer inputs and weights required")
    wa, bb, p = check_conv(xa.shape, abs_max(xa), w, b, padding)
    o, c, ky, kx = wa.shape
    n, _, h, wd = xa.shape
    ho, wo = h + 2 * p - ky + 1, wd + 2 * p - kx + 1
    xp = np.zeros((n, c, h + 2 * p, wd + 2 * p), dtype=np.float64)
    xp[:, :, p:p + h, p:p + wd] = xa
    wf = wa.astype(np.float64)
    acc = np.zeros((n, o, ho, wo), dtype=np.float64)
    for dy in range(ky):
        for dx in range(kx):
            window = xp[:, :, dy:dy + ho, dx:dx + wo]           # (N, C, Ho, Wo)
            acc += np.einsum("nchw,oc->nohw", window, wf[:, :, dy, dx], optimize=True)
    out = np.rint(acc).astype(np.int64)
    if bb is not None:
        out += bb.astype(np.int64)[None, :, None, None]
    if out.size and (out.min() < -2**31 or out.max() > 2**31 - 1):
        raise ValueError("conv2d_acc: accumulator exceeds int32 (kernel contract)")
    return out[0] if squeeze else out


def conv_requant(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, shift: int,
                 rounding: Any = DEFAULT_ROUNDING, out_dtype: Any = np.uint8,
                 padding: int = 0) -> np.ndarray:
    """requantize(conv(x, w) + b, shift) to int8, or uint8 with ReLU fused."""
    return requantize(conv2d_acc(x, w, b, padding), shift, rounding, out_dtype)


def conv_skip_add(y_in: np.ndarray, w3: np.ndarray, b3: np.ndarray | None, shift3: int,
                  skip: np.ndarray, skip_in_shift: int, skip_shift: int,
                  rounding: Any = DEFAULT_ROUNDING) -> np.ndarray:
    """Bottleneck tail (blocks 1, 2): y3 = requant(conv1x1(y_in)+b3, shift3, int8);
    s = requant(skip, skip_in_shift, int8) (the uint8 block input brought to the add
    scale; shift 0 only saturates); out = requant(y3 + s, skip_shift, uint8 with ReLU).
    Shapes NCHW or CHW."""
    y3 = conv_requant(y_in, w3, b3, shift3, rounding, np.int8)
    s = np.asarray(skip)
    if s.shape != y3.shape:
        raise ValueError(f"skip shape {s.shape} != conv3 output shape {y3.shape}")
    s8 = requantize(s.astype(np.int64), skip_in_shift, rounding, np.int8)
    return requantize(y3.astype(np.int32) + s8.astype(np.int32), skip_shift, rounding,
                      np.uint8)


def conv_skip_proj_add(y_in: np.ndarray, w3: np.ndarray, b3: np.ndarray | None,
                       shift3: int, skip_in: np.ndarray, w_skip: np.ndarray,
                       b_skip: np.ndarray | None, skip_conv_shift: int, skip_shift: int,
                       rounding: Any = DEFAULT_ROUNDING) -> np.ndarray:
    """Block-0 tail: as :func:`conv_skip_add` but the skip path is a 1x1 projection of
    the int8 block input, s = requant(conv1x1(skip_in)+b_skip, skip_conv_shift, int8)."""
    s = conv_requant(skip_in, w_skip, b_skip, skip_conv_shift, rounding, np.int8)
    y3 = conv_requant(y_in, w3, b3, shift3, rounding, np.int8)
    if s.shape != y3.shape:
        raise ValueError(f"skip projection shape {s.shape} != conv3 shape {y3.shape}")
    return requantize(y3.astype(np.int32) + s.astype(np.int32), skip_shift, rounding,
                      np.uint8)


def maxpool2x2(x: np.ndarray) -> np.ndarray:
    """2x2 max pool, stride 2, on (..., H, W); odd trailing row/column dropped."""
    a = np.asarray(x)
    if a.ndim < 2:
        raise ValueError("maxpool2x2: need at least (H, W)")
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    if h == 0 or w == 0:
        raise ValueError(f"maxpool2x2: input {a.shape} too small")
    v = a[..., :h, :w].reshape(*a.shape[:-2], h // 2, 2, w // 2, 2)
    return v.max(axis=(-3, -1))


def check_fc(x_shape: tuple[int, ...], w: np.ndarray, b: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Check a fully connected layer of an (N, I) integer input; returns (w, b or None);
    raises ValueError for mismatched shapes or non-integer weights."""
    wa = np.asarray(w)
    if len(x_shape) != 2 or wa.ndim != 2 or wa.shape[1] != x_shape[1]:
        raise ValueError(f"fc_acc: weights {wa.shape} do not match input {tuple(x_shape)}")
    if wa.dtype.kind not in "iu":
        raise ValueError("fc_acc: integer inputs and weights required")
    bb = None if b is None else np.asarray(b)
    if bb is not None and bb.shape != (wa.shape[0],):
        raise ValueError(f"bias shape {bb.shape} != ({wa.shape[0]},)")
    return wa, bb


def fc_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Integer fully connected layer: x (N, I) or (I,) integers, w (O, I) int8,
    b (O,) int32 or None -> int64 accumulator (N, O) (or (O,)). Raises ValueError when
    a value leaves the int32 range (the kernels accumulate in int32)."""
    xa = np.asarray(x)
    squeeze = xa.ndim == 1
    xa = xa[None] if squeeze else xa
    if xa.dtype.kind not in "iu":
        raise ValueError("fc_acc: integer inputs and weights required")
    wa, bb = check_fc(xa.shape, w, b)
    out = xa.astype(np.int64) @ wa.astype(np.int64).T
    if bb is not None:
        out += bb.astype(np.int64)[None, :]
    if out.size and (out.min() < -2**31 or out.max() > 2**31 - 1):
        raise ValueError("fc_acc: accumulator exceeds int32 (kernel contract)")
    return out[0] if squeeze else out


def fc_requant(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, shift: int,
               rounding: Any = DEFAULT_ROUNDING, out_dtype: Any = np.uint8) -> np.ndarray:
    """requantize(x @ w.T + b, shift) to int8, or uint8 with ReLU fused."""
    return requantize(fc_acc(x, w, b), shift, rounding, out_dtype)


__all__ = ["conv2d_acc", "conv_requant", "conv_skip_add", "conv_skip_proj_add",
           "fc_acc", "fc_requant", "maxpool2x2", "RoundingMode"]
