"""Requantization arithmetic shared by every part of the pipeline.

All post-training-quantized scales in this project are exact powers of two, so a
layer's float rescale ``s_in * s_w / s_out`` becomes an integer *shift* ``k``:
``y = acc * 2**-k``, rounded and saturated to 8 bits ("SRS": shift-round-saturate,
as on the AIE2 accumulators).

Conventions
-----------
* ``shift > 0``: divide by ``2**shift`` and round with the chosen :class:`RoundingMode`.
* ``shift == 0``: the value is already an integer; no rounding term at all
  (upstream scalar code computes ``1 << (s-1)`` there, which is undefined for s=0).
* ``shift < 0``: multiply by ``2**-shift`` (exact, in int64) before saturating; the
  AIE SRS unit cannot shift left, so the kernels multiply before SRS.
* Saturation: int8 -> [-128, 127]; uint8 -> [0, 255], i.e. ReLU fused.

Shift range :data:`SHIFT_MIN`..:data:`SHIFT_MAX` = -8..31:
  * 31 is the largest right shift that keeps information from an int32 accumulator
    (``acc >> 31`` is already 0 or -1 before rounding); larger shifts from PTQ would mean
    a layer whose output is constant, almost surely a calibration bug.
  * -8: a left shift by 8 already saturates every non-zero int8/uint8 product sum
    (|v| >= 1 -> |v| * 256 >= 256); the AIE path multiplies a clamped int16 value by
    ``2**-shift`` in a 32-bit accumulator, which stays exact up to 2**8. Measured PTQ
    shifts reach -1 (add -> ReLU requant), so -8 leaves a wide margin.
"""
from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np

SHIFT_MIN: int = -8
SHIFT_MAX: int = 31

INT8_RANGE = (-128, 127)
UINT8_RANGE = (0, 255)


class QuantError(ValueError):
    """Raised for scales or shifts the integer pipeline cannot represent."""


class RoundingMode(str, enum.Enum):
    """Rounding of the right shift in requantization.

    HALF_EVEN: round half to even (AIE ``conv_even``, ``torch.round``, ONNX); default.
    HALF_UP:   round half toward +inf, ``floor(x + 0.5)`` (AIE ``positive_inf``,
               the upstream scalar kernels ``(acc + (1 << (s-1))) >> s``).
    """

    HALF_EVEN = "half_even"
    HALF_UP = "half_up"

    @property
    def code(self) -> int:
        """Integer passed to the C kernels: half_even=0, half_up=1."""
        return _CODES[self]

    @classmethod
    def parse(cls, value: "RoundingMode | str | int | None") -> "RoundingMode":
        """Accept an enum member, its string value (case-insensitive, '-' or '_'),
        its kernel code (0/1) or None (the default, half_even)."""
        if value is None:
            return cls.HALF_EVEN
        if isinstance(value, cls):
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            for member, code in _CODES.items():
                if code == int(value):
                    return member
            raise QuantError(f"unknown rounding code {value!r} (expected 0 or 1)")
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            for member in cls:
                if member.value == key:
                    return member
        raise QuantError(
            f"unknown rounding mode {value!r} (expected one of "
            f"{[m.value for m in cls]})")


_CODES = {RoundingMode.HALF_EVEN: 0, RoundingMode.HALF_UP: 1}
DEFAULT_ROUNDING = RoundingMode.HALF_EVEN


def parse_rounding(value: "RoundingMode | str | int | None") -> RoundingMode:
    """Module-level alias of :meth:`RoundingMode.parse`."""
    return RoundingMode.parse(value)


def _as_float(scale: Any, what: str) -> float:
    if scale is None:
        raise QuantError(f"{what}: scale is missing (None)")
    if hasattr(scale, "detach") and hasattr(scale, "numel"):  # torch tensor
        if scale.numel() != 1:
            raise QuantError(f"{what}: scale must be a scalar, got shape "
                             f"{tuple(scale.shape)}")
        return float(scale.detach().cpu().reshape(()).item())
    if isinstance(scale, np.ndarray):
        if scale.size != 1:
            raise QuantError(f"{what}: scale must be a scalar, got shape {scale.shape}")
        return float(scale.reshape(()))
    try:
        return float(scale)
    except (TypeError, ValueError) as exc:
        raise QuantError(f"{what}: scale {scale!r} is not a number") from exc


def po2_exponent(scale: Any, what: str) -> int:
    """Return e such that ``scale == 2**e`` exactly.

    Accepts a python float/int, numpy scalar or 1-element array, or a 1-element torch
    tensor. Raises :class:`QuantError` naming ``what`` when the scale is missing,
    non-finite, non-positive or not an exact power of two.
    """
    s = _as_float(scale, what)
    if not math.isfinite(s):
        raise QuantError(f"{what}: scale {s!r} is not finite")
    if s <= 0.0:
        raise QuantError(f"{what}: scale {s!r} is not positive")
    mant, exp = math.frexp(s)
    if mant != 0.5:
        raise QuantError(f"{what}: scale {s!r} is not an exact power of two "
                         f"(mantissa {mant * 2:.17g} x 2^{exp - 1})")
    return exp - 1


def check_shift(shift: Any, what: str = "shift") -> int:
    """Validate a shift (python/numpy int in SHIFT_MIN..SHIFT_MAX); return it as int."""
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)):
        raise QuantError(f"{what}: shift must be an integer, got {shift!r}")
    k = int(shift)
    if not SHIFT_MIN <= k <= SHIFT_MAX:
        raise QuantError(f"{what}: shift {k} outside the supported range "
                         f"[{SHIFT_MIN}, {SHIFT_MAX}]")
    return k


def combined_shift(s_in: Any, s_w: Any, s_out: Any, layer: str) -> int:
    """Shift k of a conv/linear layer: ``k = log2(s_out) - log2(s_in) - log2(s_w)``,
    so that ``y_int = acc_int * 2**-k`` with ``acc`` at scale ``s_in * s_w``."""
    k = (po2_exponent(s_out, f"{layer}: output scale")
         - po2_exponent(s_in, f"{layer}: input scale")
         - po2_exponent(s_w, f"{layer}: weight scale"))
    return check_shift(k, layer)


def add_shift(s_add_in: Any, s_out: Any, layer: str) -> int:
    """Shift of the requant after a residual add: ``k = log2(s_out) - log2(s_add_in)``
    (both add operands already at ``s_add_in``). 0 and negative values occur."""
    k = (po2_exponent(s_out, f"{layer}: output scale")
         - po2_exponent(s_add_in, f"{layer}: add input scale"))
    return check_shift(k, layer)


def _out_range(out_dtype: Any) -> tuple[int, int, np.dtype]:
    dt = np.dtype(out_dtype)
    if dt == np.int8:
        return (*INT8_RANGE, dt)
    if dt == np.uint8:
        return (*UINT8_RANGE, dt)
    raise QuantError(f"requantize: out_dtype must be int8 or uint8, got {dt}")


def requantize(acc: np.ndarray, shift: int,
               rounding: "RoundingMode | str | int | None" = DEFAULT_ROUNDING,
               out_dtype: Any = np.int8) -> np.ndarray:
    """Shift-round-saturate an integer accumulator array to 8 bits.

    acc: integer array (int32/int64 or any signed/unsigned integer dtype up to 64 bit).
    shift: SHIFT_MIN..SHIFT_MAX, meaning ``acc * 2**-shift``.
    out_dtype: np.int8 -> [-128,127]; np.uint8 -> [0,255] (ReLU fused).
    Returns a new array of ``out_dtype``, same shape.
    """
    k = check_shift(shift, "requantize")
    mode = RoundingMode.parse(rounding)
    lo, hi, dt = _out_range(out_dtype)
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise QuantError(f"requantize: accumulator must be an integer array, "
                         f"got {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise QuantError("requantize: uint64 accumulator exceeds int64")
    v = a.astype(np.int64)
    if k > 0:
        q = v >> k                                 # floor division by 2**k
        r = v - (q << k)                           # remainder in [0, 2**k)
        half = np.int64(1) << (k - 1)
        if mode is RoundingMode.HALF_UP:
            q = q + (r >= half)
        else:
            q = q + ((r > half) | ((r == half) & ((q & 1) == 1)))
        v = q
    elif k < 0:
        # |acc| beyond 2**40 saturates anyway; clip first so the multiply cannot overflow.
        v = np.clip(v, -(1 << 40), 1 << 40) * (np.int64(1) << (-k))
    return np.clip(v, lo, hi).astype(dt)
