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

Fully connected layers (common/kernels/fc.cc) use the same blob shape with weights in
``O8I8`` tiles ``[O/8][I/8][8 out][8 in]`` (one 64-byte tile = 8 outputs x 8 inputs,
output-major): ``[O8I8 int8 weights: Op*Ip bytes][int32 LE bias: Op*4 bytes]``, O and I
zero-padded to multiples of 8 (LeNet: 84 -> 88, 10 -> 16). The input features are in the
order the device delivers them; a flattened feature map arrives as the YCXC8 image of
the previous layer (:func:`yc8x_flatten_order` maps device positions to PyTorch's
``c*H*W + y*W + x`` flatten order; give it to :func:`pack_fc_params` as ``in_order``).
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


# ---------------------------------------------------------------- fully connected
def yc8x_flatten_order(channels: int, height: int, width: int) -> np.ndarray:
    """For each byte of the flat YCXC8 image of a (C, H, W) map (C padded to 8), the
    PyTorch flatten index ``c*H*W + y*W + x`` of the feature it holds, or -1 for a
    padded channel. int64 array of H * pad8(C) * W entries."""
    c, h, w = int(channels), int(height), int(width)
    if min(c, h, w) < 1:
        raise ValueError(f"yc8x_flatten_order: empty shape ({c}, {h}, {w})")
    idx = np.arange(c * h * w, dtype=np.int64).reshape(c, h, w)
    cp = pad8(c)
    full = np.full((cp, h, w), -1, dtype=np.int64)
    full[:c] = idx
    # YCXC8 position of (c, y, x): y*Cp*W + (c//8)*W*8 + x*8 + c%8
    return np.ascontiguousarray(full.reshape(cp // LANES, LANES, h, w)
                                .transpose(2, 0, 3, 1)).reshape(-1)


def _fc_in_order(in_order: np.ndarray | None, in_features: int) -> np.ndarray:
    """Device input order (padded to 8 with -1): identity + padding when None."""
    if in_order is None:
        order = np.full(pad8(in_features), -1, dtype=np.int64)
        order[:in_features] = np.arange(in_features)
        return order
    order = np.asarray(in_order)
    if order.ndim != 1 or order.dtype.kind not in "iu" or order.size % LANES:
        raise ValueError(f"fc in_order: expected a 1-D integer array whose length is a "
                         f"multiple of 8, got {order.dtype} {order.shape}")
    used = np.sort(order[order >= 0])
    if not np.array_equal(used, np.arange(in_features)) or order.min(initial=0) < -1:
        raise ValueError(f"fc in_order: must hold each of the {in_features} input "
                         f"features once (and -1 for padding)")
    return order.astype(np.int64)


def fc_params_nbytes(out_features: int, in_features: int) -> int:
    """Size in bytes of one fully connected blob (padded O8I8 weights + int32 bias);
    ``in_features`` is the device input length (padded to 8 here)."""
    return pad8(out_features) * pad8(in_features) + 4 * pad8(out_features)


def pack_fc_params(w_oi: np.ndarray, b: np.ndarray | None,
                   in_order: np.ndarray | None = None) -> np.ndarray:
    """Blob read by the fc kernels: O8I8 int8 weights then int32 LE bias (Op entries).

    w_oi: int8 (O, I) in PyTorch's layout; b: int32-representable (O,) or None (zeros);
    in_order: device input position -> column of ``w_oi`` (-1 = padding, weight 0), e.g.
    :func:`yc8x_flatten_order`; default: the columns in order, padded to 8.
    Returns a 1-D int8 array of ``fc_params_nbytes(O, len(in_order))`` bytes.
    """
    w = np.asarray(w_oi)
    if w.dtype != np.int8 or w.ndim != 2 or min(w.shape) < 1:
        raise ValueError(f"pack_fc_params: weights must be non-empty int8 (O, I), got "
                         f"{w.dtype} {w.shape}")
    o, i = w.shape
    order = _fc_in_order(in_order, i)
    op, ip = pad8(o), order.size
    dev = np.zeros((op, ip), dtype=np.int8)
    dev[:o] = np.where(order >= 0, w[:, np.maximum(order, 0)], 0)
    tiles = dev.reshape(op // LANES, LANES, ip // LANES, LANES).transpose(0, 2, 1, 3)
    bias = np.zeros(op, dtype="<i4")
    if b is not None:
        bb = np.asarray(b)
        if bb.shape != (o,) or bb.dtype.kind not in "iu":
            raise ValueError(f"pack_fc_params: bias must be integer ({o},), got "
                             f"{bb.dtype} {bb.shape}")
        if bb.size and (bb.min() < -2**31 or bb.max() > 2**31 - 1):
            raise ValueError("pack_fc_params: bias does not fit int32")
        bias[:o] = bb
    return np.concatenate([np.ascontiguousarray(tiles).ravel(), bias.view(np.int8)])


def unpack_fc_params(blob: np.ndarray, out_features: int, in_features: int,
                     in_order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_fc_params`: (w int8 (O, I) PyTorch order, b int32 (O,))."""
    a = np.asarray(blob)
    _check_int8ish(a, "unpack_fc_params")
    a = np.ascontiguousarray(a.reshape(-1)).view(np.int8)
    o, i = int(out_features), int(in_features)
    if o < 1 or i < 1:
        raise ValueError(f"unpack_fc_params: empty shape ({o}, {i})")
    order = _fc_in_order(in_order, i)
    op, ip = pad8(o), order.size
    n = fc_params_nbytes(o, ip)
    if a.size != n:
        raise ValueError(f"unpack_fc_params: blob has {a.size} bytes, expected {n} for "
                         f"O={o} I={ip}")
    dev = a[:op * ip].reshape(op // LANES, ip // LANES, LANES, LANES).transpose(0, 2, 1, 3)
    dev = dev.reshape(op, ip)
    w = np.zeros((o, i), dtype=np.int8)
    keep = order >= 0
    w[:, order[keep]] = dev[:o, keep]
    b = a[op * ip:].copy().view("<i4").astype(np.int32)[:o]
    return w, b
