"""Posit<n, es> conversion written from the Posit Standard (2022), as lookup tables.

A posit<n, es> code is an n-bit two's-complement word: 0 is zero, 1 << (n-1) is NaR
(not a real). Otherwise take the absolute code; after the sign bit comes the regime (a run
of r identical bits ended by the opposite bit or the word's end: k = r - 1 for a run of
ones, -r for zeros), then up to ``es`` exponent bits (missing bits read as 0), then the
fraction f; the value is (1 + f) * 2^(k * 2^es + e).

Rounding from a real x (``encode_scalar``): write |x| as the unbounded bit string
regime | exponent | fraction and round it to n - 1 bits to nearest, ties to the even
code; |x| above maxpos becomes maxpos and 0 < |x| below minpos becomes minpos (never 0
or NaR); 0 -> 0; NaN and +-inf -> NaR. ``decode`` maps NaR to NaN.

posit8 with es = 0 is the older draft's format (SoftPosit, maxpos 64, minpos 1/64);
es = 2 is the 2022 Standard's (maxpos 2^24, minpos 2^-24).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

N_BITS = 8
ES_VALUES = (0, 2)


def decode_code(code: int, n: int = N_BITS, es: int = 0) -> float:
    """Value of the n-bit posit ``code`` (an unsigned int in [0, 2^n)); NaR -> NaN."""
    mask = (1 << n) - 1
    code &= mask
    if code == 0:
        return 0.0
    if code == 1 << (n - 1):
        return math.nan
    neg = bool(code >> (n - 1))
    if neg:
        code = (-code) & mask
    bits = [(code >> i) & 1 for i in range(n - 2, -1, -1)]   # the n-1 bits after the sign
    first = bits[0]
    run = 1
    while run < len(bits) and bits[run] == first:
        run += 1
    k = run - 1 if first == 1 else -run
    rest = bits[run + 1:]                                  # skip the terminating bit
    e = 0
    for i in range(es):
        e = (e << 1) | (rest[i] if i < len(rest) else 0)
    frac_bits = rest[es:]
    f = sum(b / 2 ** (i + 1) for i, b in enumerate(frac_bits))
    v = (1.0 + f) * 2.0 ** (k * (1 << es) + e)
    return -v if neg else v


def encode_scalar(x: float, n: int = N_BITS, es: int = 0) -> int:
    """n-bit posit code of the real ``x`` (round to nearest, ties to even; saturating)."""
    nar = 1 << (n - 1)
    if math.isnan(x) or math.isinf(x):
        return nar
    if x == 0:
        return 0
    mag = abs(x)
    maxpos_code = nar - 1
    maxpos, minpos = decode_code(maxpos_code, n, es), decode_code(1, n, es)
    if mag >= maxpos:
        p = maxpos_code
    elif mag <= minpos:
        p = 1
    else:
        m, ex = math.frexp(mag)               # mag = m * 2^ex, m in [0.5, 1)
        mant = int(m * (1 << 53))            # exact 53-bit integer significand
        scale = ex - 1                       # mag = (mant / 2^52) * 2^scale
        k, e = scale >> es, scale & ((1 << es) - 1)
        if k >= 0:
            regime, rlen = ((1 << (k + 1)) - 1) << 1, k + 2
        else:
            regime, rlen = 1, -k + 1
        frac = mant - (1 << 52)               # 52 fraction bits
        body = (((regime << es) | e) << 52) | frac
        blen = rlen + es + 52
        keep = n - 1
        if blen <= keep:
            p = body << (keep - blen)
        else:
            cut = blen - keep
            p = body >> cut
            guard = (body >> (cut - 1)) & 1
            sticky = (body & ((1 << (cut - 1)) - 1)) != 0
            if guard and (sticky or (p & 1)):
                p += 1
        p = min(max(p, 1), maxpos_code)
    return ((-p) & ((1 << n) - 1)) if x < 0 else p


@lru_cache(maxsize=None)
def decode_table(es: int) -> np.ndarray:
    """float64 value of each of the 256 posit8 codes (index = code; NaR is NaN)."""
    _check_es(es)
    return np.array([decode_code(c, N_BITS, es) for c in range(256)], dtype=np.float64)


@lru_cache(maxsize=None)
def _positive_grid(es: int) -> tuple[np.ndarray, np.ndarray]:
    """(values of codes 1..127, rounding boundaries between codes p and p+1, p = 1..126).

    The boundary between consecutive n-bit codes p, p+1 is the (n+1)-bit posit 2p+1: the
    point where the guard bit is set and nothing follows it.
    """
    vals = decode_table(es)[1:128]
    bounds = np.array([decode_code(2 * p + 1, N_BITS + 1, es) for p in range(1, 127)])
    return vals, bounds


def encode(x: np.ndarray, es: int) -> np.ndarray:
    """Vectorised ``encode_scalar`` for posit8: float array -> uint8 codes."""
    _check_es(es)
    x = np.asarray(x, dtype=np.float64)
    vals, bounds = _positive_grid(es)
    mag = np.abs(x)
    idx = np.searchsorted(bounds, mag, side="left")        # codes 1 + idx, boundary ties low
    tie = (idx < len(bounds)) & (bounds[np.minimum(idx, len(bounds) - 1)] == mag)
    p = idx + 1
    p = np.where(tie & (p % 2 == 1), p + 1, p)              # tie: take the even code
    p = np.clip(p, 1, 127)
    code = np.where(x < 0, (256 - p) % 256, p)
    code = np.where(x == 0, 0, code)
    code = np.where(np.isnan(x) | np.isinf(x), 0x80, code)
    return code.astype(np.uint8)


def decode(codes: np.ndarray, es: int) -> np.ndarray:
    """uint8 posit8 codes -> float64 values (NaR -> NaN)."""
    return decode_table(es)[np.asarray(codes, dtype=np.uint8)]


def quantize_posit8(x, es: int):
    """Round-trip ``x`` (numpy array or torch tensor) through posit8; same type, dtype kept
    (numpy) or float32 (torch, on x's device)."""
    if isinstance(x, torch.Tensor):
        q = decode(encode(x.detach().double().cpu().numpy(), es), es)
        return torch.from_numpy(q).to(device=x.device, dtype=torch.float32)
    a = np.asarray(x)
    return decode(encode(a, es), es).astype(a.dtype if a.dtype.kind == "f" else np.float64)


def maxpos(es: int) -> float:
    """Largest posit8 value (code 0x7F)."""
    return float(decode_table(es)[0x7F])


def minpos(es: int) -> float:
    """Smallest positive posit8 value (code 0x01)."""
    return float(decode_table(es)[0x01])


def _check_es(es: int) -> None:
    if es not in ES_VALUES:
        raise ValueError(f"posit8 exponent size es must be one of {ES_VALUES}, got {es}")
