"""NPU memory layouts and their exact inverses.

Activations (8 channels innermost, zero-padded to a multiple of 8 channels):
  * one row ``[C/8][W][8]`` ("C8XC8"): element (c, x) at ``(c//8)*W*8 + x*8 + c%8``;
  * a whole image ``[H][C/8][W][8]`` ("YCXC8"): element (y, c, x) at
    ``y*C*W + (c//8)*W*8 + x*8 + c%8`` (C = padded channel count).
Weights ``OIYXI8O8``: ``[O/8][I/8][KY][KX][8 in][8 out]``, I and O zero-padded to 8.

Parameter blob (the contract with the kernels and the deploy bundle), int8 bytes:
  ``[OIYXI8O8 int8 weights: Op*Ip*KY*KX bytes][int32 little-endian bias: Op*4 bytes]``
with Op, Ip the padded channel counts; padded bias entries are 0. Total size is a
multiple of 4 bytes (Op*Ip is a multiple of 64).
"""
from __future__ import annotations

import numpy as np

LANES = 8


def pad8(n: int) -> int:
    """Round a channel count up to a multiple of 8."""
    return -(-int(n) // LANES) * LANES


def _check_int8ish(a: np.ndarray, name: str) -> None:
    if a.dtype not in (np.int8, np.uint8):
        raise ValueError(f"{name}: expected int8 or uint8 data, got {a.dtype}")


# ---------------------------------------------------------------- activations
def to_c8x(row_cw: np.ndarray) -> np.ndarray:
    """One row (C, W) -> (ceil(C/8), W, 8), channels zero-padded to a multiple of 8."""
    a = np.asarray(row_cw)
    if a.ndim != 2:
        raise ValueError(f"to_c8x: expected a (C, W) row, got shape {a.shape}")
    return to_yc8x(a[:, None, :])[0]


def from_c8x(row: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of :func:`to_c8x`: (Cp/8, W, 8) -> (channels, W), padding dropped."""
    a = np.asarray(row)
    if a.ndim != 3:
        raise ValueError(f"from_c8x: expected (C/8, W, 8), got shape {a.shape}")
    return from_yc8x(a[None], channels)[:, 0, :]


def to_yc8x(image: np.ndarray) -> np.ndarray:
    """Image (C, H, W) -> YCXC8 array of shape (H, ceil(C/8), W, 8), C zero-padded.

    A leading batch dimension is allowed: (N, C, H, W) -> (N, H, C/8, W, 8).
    The result is C-contiguous, so ``.ravel()`` gives the flat NPU buffer.
    """
    a = np.asarray(image)
    if a.ndim not in (3, 4):
        raise ValueError(f"to_yc8x: expected (C, H, W) or (N, C, H, W), got {a.shape}")
    *lead, c, h, w = a.shape
    if c < 1 or h < 1 or w < 1:
        raise ValueError(f"to_yc8x: empty dimension in shape {a.shape}")
    cp = pad8(c)
    padded = np.zeros((*lead, cp, h, w), dtype=a.dtype)
    padded[..., :c, :, :] = a
    g = padded.reshape(*lead, cp // LANES, LANES, h, w)
    # (..., C8, 8, H, W) -> (..., H, C8, W, 8)
    perm = tuple(range(len(lead))) + tuple(len(lead) + i for i in (2, 0, 3, 1))
    return np.ascontiguousarray(g.transpose(perm))


def from_yc8x(data: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of :func:`to_yc8x`: (H, Cp/8, W, 8) -> (channels, H, W) (or batched)."""
    a = np.asarray(data)
    if a.ndim not in (4, 5) or a.shape[-1] != LANES:
        raise ValueError(f"from_yc8x: expected (H, C/8, W, 8) or (N, H, C/8, W, 8), "
                         f"got {a.shape}")
    *lead, h, c8, w, _ = a.shape
    channels = int(channels)
    if not 1 <= channels <= c8 * LANES or pad8(channels) != c8 * LANES:
        raise ValueError(f"from_yc8x: {channels} channels do not match padded "
                         f"count {c8 * LANES}")
    n = len(lead)
    perm = tuple(range(n)) + tuple(n + i for i in (1, 3, 0, 2))  # -> (..., C8, 8, H, W)
    g = a.transpose(perm).reshape(*lead, c8 * LANES, h, w)
    return np.ascontiguousarray(g[..., :channels, :, :])


# ---------------------------------------------------------------- weights
def to_oiyxi8o8(w_oihw: np.ndarray) -> np.ndarray:
    """OIHW (O, I, KY, KX) -> (Op/8, Ip/8, KY, KX, 8 in, 8 out), O and I zero-padded."""
    w = np.asarray(w_oihw)
    if w.ndim != 4:
        raise ValueError(f"to_oiyxi8o8: expected (O, I, KY, KX), got shape {w.shape}")
    o, i, ky, kx = w.shape
    if min(w.shape) < 1:
        raise ValueError(f"to_oiyxi8o8: empty dimension in shape {w.shape}")
    op, ip = pad8(o), pad8(i)
    p = np.zeros((op, ip, ky, kx), dtype=w.dtype)
    p[:o, :i] = w
    g = p.reshape(op // LANES, LANES, ip // LANES, LANES, ky, kx)
    # (O8, o, I8, i, KY, KX) -> (O8, I8, KY, KX, i, o)
    return np.ascontiguousarray(g.transpose(0, 2, 4, 5, 3, 1))


def from_oiyxi8o8(w: np.ndarray, out_channels: int, in_channels: int) -> np.ndarray:
    """Inverse of :func:`to_oiyxi8o8`; padding dropped, returns (O, I, KY, KX)."""
    a = np.asarray(w)
    if a.ndim != 6 or a.shape[4:] != (LANES, LANES):
        raise ValueError(f"from_oiyxi8o8: expected (O/8, I/8, KY, KX, 8, 8), got {a.shape}")
    o8, i8, ky, kx = a.shape[:4]
    o, i = int(out_channels), int(in_channels)
    if pad8(o) != o8 * LANES or o < 1 or pad8(i) != i8 * LANES or i < 1:
        raise ValueError(f"from_oiyxi8o8: ({o}, {i}) channels do not match padded "
                         f"({o8 * LANES}, {i8 * LANES})")
    g = a.transpose(0, 5, 1, 4, 2, 3).reshape(o8 * LANES, i8 * LANES, ky, kx)
    return np.ascontiguousarray(g[:o, :i])


# ---------------------------------------------------------------- parameter blob
def conv_params_nbytes(out_channels: int, in_channels: int, ky: int, kx: int) -> int:
    """Size in bytes of the blob of one conv (padded weights + padded int32 bias)."""
    op, ip = pad8(out_channels), pad8(in_channels)
    return op * ip * int(ky) * int(kx) + 4 * op


def pack_conv_params(w_oihw: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Blob read by the kernels: OIYXI8O8 int8 weights then int32 LE bias (Op entries).

    w_oihw: int8 (O, I, KY, KX); b: int32-representable (O,) or None (zeros).
    Returns a 1-D int8 array of :func:`conv_params_nbytes` bytes.
    """
    w = np.asarray(w_oihw)
    if w.dtype != np.int8:
        raise ValueError(f"pack_conv_params: weights must be int8, got {w.dtype}")
    if w.ndim != 4:
        raise ValueError(f"pack_conv_params: weights must be (O, I, KY, KX), got {w.shape}")
    o = w.shape[0]
    op = pad8(o)
    bias = np.zeros(op, dtype="<i4")
    if b is not None:
        bb = np.asarray(b)
        if bb.shape != (o,):
            raise ValueError(f"pack_conv_params: bias shape {bb.shape} != ({o},)")
        if bb.dtype.kind not in "iu":
            raise ValueError(f"pack_conv_params: bias must be integer, got {bb.dtype}")
        if bb.size and (bb.min() < -2**31 or bb.max() > 2**31 - 1):
            raise ValueError("pack_conv_params: bias does not fit int32")
        bias[:o] = bb
    blob = np.concatenate([to_oiyxi8o8(w).ravel(), bias.view(np.int8)])
    assert blob.nbytes % 4 == 0
    return blob


def unpack_conv_params(blob: np.ndarray, out_channels: int, in_channels: int,
                       ky: int, kx: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_conv_params`: returns (w int8 (O,I,KY,KX), b int32 (O,))."""
    a = np.asarray(blob)
    _check_int8ish(a, "unpack_conv_params")
    a = np.ascontiguousarray(a.reshape(-1)).view(np.int8)
    o, i = int(out_channels), int(in_channels)
    n = conv_params_nbytes(o, i, ky, kx)
    if a.size != n:
        raise ValueError(f"unpack_conv_params: blob has {a.size} bytes, expected {n} "
                         f"for O={o} I={i} {ky}x{kx}")
    op, ip = pad8(o), pad8(i)
    nw = op * ip * ky * kx
    w = from_oiyxi8o8(a[:nw].reshape(op // 8, ip // 8, ky, kx, 8, 8), o, i)
    b = a[nw:].copy().view("<i4").astype(np.int32)[:o]
    return w, b
