"""Fast golden model: the ops of :mod:`common.golden` computed with torch.

Same function names, signatures, results (element for element, both rounding modes,
every shift in range, saturation) and errors for inputs inside the kernels' contract;
:mod:`common.golden` stays the reference formulas, and tests/test_golden_torch.py fuzzes
every op here against it. The requantizing ops and ``maxpool2x2`` of an :class:`Ints`
return :class:`Ints`: 8-bit integers kept in a float32 tensor, which the next op takes
without conversion; ``np.asarray(result)`` is exactly common.golden's array (dtype too).
Inputs: integer numpy arrays or torch tensors, or :class:`Ints`.

Why it is exact. Every value is an integer v, or (v + half) * 2**-shift with v an integer
and ``half`` the half-up rounding term; a float type holds such numbers exactly while
|v + half| stays below 2**24 (float32) or 2**53 (float64), and then sums and products
whose exact results stay below that bound are computed exactly, in any order (IEEE
rounding of a representable result is the identity; scaling by a power of two is
exact). So each convolution / matmul runs with weights and bias pre-scaled by 2**-shift
and ``half`` folded into the bias, in the narrowest float type for which the per-output
bound max|x| * sum|w_o| + |b_o + half| stays below the limit (checked before each call;
the real conv2_x and LeNet weights pass it in float32). Then round half to even
(``torch.round``) or floor (half up), and the clamp to the int8 / uint8 range.
float32 is used only while torch computes float32 convolutions and matmuls in IEEE
single precision (no TF32 / bf16 shortcut, no oneDNN fpmath override), and NNPACK
(Winograd / FFT convolutions, not exact) is switched off around the calls.

Contract beyond common.golden: biases must lie in the int32 range (the kernels' bias
type), else ValueError; common.golden computes with larger ones as long as the
accumulator still ends in int32.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .golden import abs_max, check_conv, check_fc
from .quant import DEFAULT_ROUNDING, RoundingMode, _out_range, check_shift

_F32_EXACT = 2 ** 24     # every integer of magnitude <= 2**24 is a float32
_F64_EXACT = 2 ** 53     # ... <= 2**53 a float64
_SAT = 2 ** 40           # |v| >= 2**40 saturates at every shift in range (common.quant)
_INT32 = (-2 ** 31, 2 ** 31 - 1)
_TORCH_INT = frozenset(np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.int32, np.int64))
_TORCH_8BIT = {np.dtype(np.int8): torch.int8, np.dtype(np.uint8): torch.uint8}


class Ints:
    """Integers in [lo, hi] (an int8 or uint8 range) held exactly in a float32 tensor.

    ``dtype`` is the numpy dtype they stand for; ``np.asarray`` converts to it."""

    __slots__ = ("t", "lo", "hi", "dtype")

    def __init__(self, t: torch.Tensor, dtype: Any):
        self.lo, self.hi, self.dtype = _out_range(dtype)
        self.t = t

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.t.shape)

    @property
    def ndim(self) -> int:
        return self.t.dim()

    def __len__(self) -> int:
        return len(self.t)

    def reshape(self, *shape: int) -> "Ints":
        return Ints(self.t.reshape(*shape), self.dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        a = self.t.to(_TORCH_8BIT[self.dtype]).numpy()
        return a if dtype is None else a.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        return np.asarray(self).astype(dtype)


def _ieee_float32() -> bool:
    """Whether torch computes float32 convolutions and matmuls in IEEE single precision."""
    mk = torch.backends.mkldnn
    settings = [getattr(m, "fp32_precision", "none")
                for m in (torch.backends, mk, getattr(mk, "conv", None),
                          getattr(mk, "matmul", None)) if m is not None]
    fpmath = os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE",
                            os.environ.get("DNNL_DEFAULT_FPMATH_MODE", "strict"))
    return (torch.get_float32_matmul_precision() == "highest"
            and all(s in ("none", "ieee") for s in settings) and fpmath.lower() == "strict")


def _exact_dtype(bound: int) -> torch.dtype | None:
    """Narrowest float type holding every partial result of magnitude <= bound exactly
    (None: neither does)."""
    if bound < _F32_EXACT and _ieee_float32():
        return torch.float32
    return torch.float64 if bound < _F64_EXACT else None


def _half(shift: int, mode: RoundingMode) -> int:
    """Rounding term added before the floor of a half-up right shift (0 otherwise)."""
    return 1 << (shift - 1) if shift > 0 and mode is RoundingMode.HALF_UP else 0


def _operand(x: Any, what: str) -> tuple[torch.Tensor, int]:
    """An integer operand as a tensor (no copy for Ints and int8..int64 arrays) and its
    largest magnitude."""
    if isinstance(x, Ints):
        return x.t, max(-x.lo, x.hi)
    a = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{what}: integer inputs and weights required")
    if a.dtype not in _TORCH_INT:
        if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"{what}: unsigned input exceeds int64")
        a = a.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(a)), abs_max(a)


def _check_bias(bb: np.ndarray | None, o: int, half: int, what: str) -> np.ndarray:
    """int64 bias plus the rounding term (zeros when None); int32 range enforced."""
    if bb is None:
        return np.full(o, half, np.int64)
    if bb.size and (bb.min() < _INT32[0] or bb.max() > _INT32[1]):
        raise ValueError(f"{what}: bias exceeds int32 (kernel contract)")
    return bb.astype(np.int64) + half


def _scaled(a: np.ndarray, shift: int, dt: torch.dtype) -> torch.Tensor:
    """int64 array * 2**-shift as a dt tensor (exact for the magnitudes that reach it)."""
    f = np.float32 if dt == torch.float32 else np.float64
    return torch.from_numpy((a.astype(np.float64) * 2.0 ** -shift).astype(f))


def _check_int32(y: torch.Tensor, bound: int, shift: int, half: int, what: str) -> None:
    """Raise when an accumulator v of y = (v + half) * 2**-shift leaves int32 (only
    possible when |v| <= bound allows it)."""
    if bound < 2 ** 31 or y.numel() == 0:
        return
    lo, hi = (float(t) * 2.0 ** shift - half for t in torch.aminmax(y))
    if lo < _INT32[0] or hi > _INT32[1]:
        raise ValueError(f"{what}: accumulator exceeds int32 (kernel contract)")


def _round_clamp(y: torch.Tensor, shift: int, mode: RoundingMode, out_dtype: Any) -> Ints:
    """y = (v + half) * 2**-shift exactly (modified in place) -> requantized Ints."""
    lo, hi, dt = _out_range(out_dtype)
    if shift > 0:
        y = y.floor_() if mode is RoundingMode.HALF_UP else y.round_()  # round: half even
    return Ints(y.clamp_(lo, hi).to(torch.float32), dt)


def _requant(t: torch.Tensor, bound: int, shift: int, mode: RoundingMode, out_dtype: Any,
             inplace: bool) -> Ints:
    """common.quant.requantize of a tensor of integers v, |v| <= bound (integer or exact
    float tensor; modified in place only when ``inplace``)."""
    if bound > _SAT:             # saturates anyway: clamping keeps the result, bounds |v|
        t, bound, inplace = t.clamp(-_SAT, _SAT), _SAT, True
    half = _half(shift, mode)
    dt = _exact_dtype(bound + half)
    if t.dtype != dt:
        t, inplace = t.to(dt), True
    if shift:
        t = t.mul_(2.0 ** -shift) if inplace else t.mul(2.0 ** -shift)
        inplace = True
    if half:
        t = t.add_(0.5) if inplace else t.add(0.5)
    return _round_clamp(t if inplace else t.clone(), shift, mode, out_dtype)


def _conv(x: Any, w: np.ndarray, b: np.ndarray | None, padding: int, shift: int,
          mode: RoundingMode) -> tuple[torch.Tensor, bool]:
    """(conv(x, w) + b + half) * 2**-shift, exact, NCHW; and whether x was CHW."""
    xt, m = _operand(x, "conv2d_acc")
    if xt.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {tuple(xt.shape)}")
    squeeze = xt.dim() == 3
    xt = xt[None] if squeeze else xt
    wa, bb, p = check_conv(tuple(xt.shape), m, w, b, padding)
    half = _half(shift, mode)
    w64 = wa.astype(np.int64)
    o = w64.shape[0]
    b64 = _check_bias(bb, o, half, "conv2d_acc")
    # check_conv bounds max|x| * sum|w_o| below 2**52, bias and half are below 2**31 each,
    # so float64 always suffices; with all-zero weights x does not count
    m = m if w64.any() else 0
    bound = int((m * np.abs(w64).reshape(o, -1).sum(1) + np.abs(b64)).max(initial=0))
    dt = _exact_dtype(bound)
    with torch.no_grad(), torch.backends.nnpack.flags(enabled=False):
        y = F.conv2d(xt.to(dt), _scaled(w64, shift, dt), _scaled(b64, shift, dt), padding=p)
    _check_int32(y, bound + half, shift, half, "conv2d_acc")
    return y, squeeze


def _squeezed(r: Ints, squeeze: bool) -> Ints:
    return Ints(r.t[0], r.dtype) if squeeze else r


def conv2d_acc(x: Any, w: np.ndarray, b: np.ndarray | None = None,
               padding: int = 0) -> np.ndarray:
    """As :func:`common.golden.conv2d_acc`: int64 accumulator (N, O, Ho, Wo) or (O, Ho, Wo)."""
    y, squeeze = _conv(x, w, b, padding, 0, RoundingMode.HALF_EVEN)
    out = y.to(torch.int64).numpy()
    return out[0] if squeeze else out


def _conv_requant(x: Any, w: np.ndarray, b: np.ndarray | None, shift: int,
                  mode: RoundingMode, out_dtype: Any, padding: int = 0
                  ) -> tuple[Ints, bool]:
    k = check_shift(shift, "requantize")
    _out_range(out_dtype)
    y, squeeze = _conv(x, w, b, padding, k, mode)
    return _round_clamp(y, k, mode, out_dtype), squeeze


def conv_requant(x: Any, w: np.ndarray, b: np.ndarray | None, shift: int,
                 rounding: Any = DEFAULT_ROUNDING, out_dtype: Any = np.uint8,
                 padding: int = 0) -> Ints:
    """As :func:`common.golden.conv_requant`: requantize(conv(x, w) + b, shift)."""
    r, squeeze = _conv_requant(x, w, b, shift, RoundingMode.parse(rounding), out_dtype,
                               padding)
    return _squeezed(r, squeeze)


def _add_requant(y3: Ints, s8: Ints, shift: int, mode: RoundingMode, squeeze: bool) -> Ints:
    """requantize(y3 + s8, shift, uint8 with ReLU) of two int8 Ints (y3 is consumed)."""
    t = y3.t.add_(s8.t)
    return _squeezed(_requant(t, 256, check_shift(shift, "requantize"), mode, np.uint8, True),
                     squeeze)


def conv_skip_add(y_in: Any, w3: np.ndarray, b3: np.ndarray | None, shift3: int,
                  skip: Any, skip_in_shift: int, skip_shift: int,
                  rounding: Any = DEFAULT_ROUNDING) -> Ints:
    """As :func:`common.golden.conv_skip_add` (bottleneck tail of blocks 1, 2)."""
    mode = RoundingMode.parse(rounding)
    y3, squeeze = _conv_requant(y_in, w3, b3, shift3, mode, np.int8)
    st, m = _operand(skip, "conv_skip_add")
    want = y3.shape[1:] if squeeze else y3.shape
    if tuple(st.shape) != want:
        raise ValueError(f"skip shape {tuple(st.shape)} != conv3 output shape {want}")
    s8 = _requant(st.reshape(y3.shape), m, check_shift(skip_in_shift, "requantize"), mode,
                  np.int8, False)
    return _add_requant(y3, s8, skip_shift, mode, squeeze)


def conv_skip_proj_add(y_in: Any, w3: np.ndarray, b3: np.ndarray | None,
                       shift3: int, skip_in: Any, w_skip: np.ndarray,
                       b_skip: np.ndarray | None, skip_conv_shift: int, skip_shift: int,
                       rounding: Any = DEFAULT_ROUNDING) -> Ints:
    """As :func:`common.golden.conv_skip_proj_add` (block-0 tail, 1x1 projection skip)."""
    mode = RoundingMode.parse(rounding)
    s, _ = _conv_requant(skip_in, w_skip, b_skip, skip_conv_shift, mode, np.int8)
    y3, squeeze = _conv_requant(y_in, w3, b3, shift3, mode, np.int8)
    if s.shape != y3.shape:
        raise ValueError(f"skip projection shape {s.shape} != conv3 shape {y3.shape}")
    return _add_requant(y3, s, skip_shift, mode, squeeze)


def maxpool2x2(x: Any) -> Any:
    """As :func:`common.golden.maxpool2x2`: 2x2 max pool, stride 2, on (..., H, W);
    Ints in, Ints out, otherwise a numpy array of the input's dtype."""
    x = x if isinstance(x, (Ints, torch.Tensor)) else np.asarray(x)
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError("maxpool2x2: need at least (H, W)")
    h, w = shape[-2] // 2, shape[-1] // 2
    if h == 0 or w == 0:
        raise ValueError(f"maxpool2x2: input {shape} too small")
    t = x.t if isinstance(x, Ints) else _operand(x, "maxpool2x2")[0]
    with torch.no_grad():
        out = F.max_pool2d(t.reshape(-1 if t.numel() else 0, 1, *shape[-2:]), 2)
    out = out.reshape(*shape[:-2], h, w)
    if isinstance(x, Ints):
        return Ints(out, x.dtype)
    return out.numpy().astype(np.dtype(str(x.dtype).removeprefix('torch.')), copy=False)


def _fc(x: Any, w: np.ndarray, b: np.ndarray | None, shift: int,
        mode: RoundingMode) -> tuple[torch.Tensor, int, bool]:
    """(x @ w.T + b + half) * 2**-shift exactly as a float tensor, or, beyond float64,
    x @ w.T + b as int64 (half not added, not scaled); |x @ w.T + b| bound; whether x
    was (I,)."""
    xt, m = _operand(x, "fc_acc")
    squeeze = xt.dim() == 1
    xt = xt[None] if squeeze else xt
    wa, bb = check_fc(tuple(xt.shape), w, b)
    w64 = wa.astype(np.int64)
    half = _half(shift, mode)
    b64 = _check_bias(bb, w64.shape[0], half, "fc_acc")
    m = m if w64.any() else 0      # python ints: no limit on x here
    acc_bound = max((m * int(s) + abs(int(c) - half)
                     for s, c in zip(np.abs(w64).sum(1), b64)), default=0)
    dt = _exact_dtype(acc_bound + half)
    with torch.no_grad():
        if dt is None:           # beyond float64: int64 (wraps like common.golden's numpy)
            y = xt.to(torch.int64) @ torch.from_numpy(w64).T + torch.from_numpy(b64 - half)
            if y.numel() and (y.min() < _INT32[0] or y.max() > _INT32[1]):
                raise ValueError("fc_acc: accumulator exceeds int32 (kernel contract)")
        else:
            y = torch.addmm(_scaled(b64, shift, dt), xt.to(dt), _scaled(w64, shift, dt).T)
            _check_int32(y, acc_bound + half, shift, half, "fc_acc")
    return y, acc_bound, squeeze


def fc_acc(x: Any, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """As :func:`common.golden.fc_acc`: int64 accumulator (N, O) or (O,)."""
    y, _, squeeze = _fc(x, w, b, 0, RoundingMode.HALF_EVEN)
    out = y.to(torch.int64).numpy()
    return out[0] if squeeze else out


def fc_requant(x: Any, w: np.ndarray, b: np.ndarray | None, shift: int,
               rounding: Any = DEFAULT_ROUNDING, out_dtype: Any = np.uint8) -> Ints:
    """As :func:`common.golden.fc_requant`: requantize(x @ w.T + b, shift)."""
    k = check_shift(shift, "requantize")
    mode = RoundingMode.parse(rounding)
    _out_range(out_dtype)
    y, bound, squeeze = _fc(x, w, b, k, mode)
    r = (_requant(y, bound, k, mode, out_dtype, True) if y.dtype == torch.int64
         else _round_clamp(y, k, mode, out_dtype))
    return _squeezed(r, squeeze)


__all__ = ["Ints", "conv2d_acc", "conv_requant", "conv_skip_add", "conv_skip_proj_add",
           "fc_acc", "fc_requant", "maxpool2x2", "RoundingMode"]
