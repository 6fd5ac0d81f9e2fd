"""Run the host kernels row by row over whole images (CHW in, CHW out).

Reference drivers for tests and benchmarks: they feed rows the way the NPU design
does (3-row / 5-row windows with border flags, channel halves for the skip core) and
convert with :mod:`common.layouts`. Arrays are plain (C, H, W); weights OIHW int8;
biases int32 (O,).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import layouts, quant
from . import host


def _rows(x_chw: np.ndarray) -> np.ndarray:
    return layouts.to_yc8x(x_chw)  # (H, C/8, W, 8)


def conv1x1_image(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, shift: int,
                  rounding: Any = quant.DEFAULT_ROUNDING, out_dtype: Any = np.uint8) -> np.ndarray:
    """1x1 conv + requant over an image (conv2dk1_*)."""
    rows, p, o = _rows(x), layouts.pack_conv_params(w, b), w.shape[0]
    oc = layouts.pad8(o)
    out = np.stack([host.conv2dk1(r, p, oc, shift, rounding, out_dtype) for r in rows])
    return layouts.from_yc8x(out, o)


def conv3x3_image(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, shift: int,
                  rounding: Any = quant.DEFAULT_ROUNDING, oc_split: int = 1) -> np.ndarray:
    """3x3 conv (padding 1) + ReLU requant, uint8; output channels computed in
    ``oc_split`` equal parts with oc_offset (as the two 3x3 cores do)."""
    rows, p, o = _rows(x), layouts.pack_conv_params(w, b), w.shape[0]
    oc_total = layouts.pad8(o)
    part = oc_total // oc_split
    h = rows.shape[0]
    out = []
    for y in range(h):
        win = [rows[y - 1] if y > 0 else None, rows[y], rows[y + 1] if y + 1 < h else None]
        if h == 1:
            raise ValueError("conv3x3_image: need at least 2 rows")
        out.append(np.concatenate([host.conv2dk3(win, p, part, oc_total, shift, rounding,
                                                 k * part) for k in range(oc_split)]))
    return layouts.from_yc8x(np.stack(out), o)


def conv5x5_image(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int, shift: int,
                  rounding: Any = quant.DEFAULT_ROUNDING) -> np.ndarray:
    """5x5 conv (zero padding ``pad``) + ReLU requant, uint8 (conv2dk5_*)."""
    rows, p, o = _rows(x), layouts.pack_conv_params(w, b), w.shape[0]
    oc, h = layouts.pad8(o), rows.shape[0]
    out = []
    for yo in range(h + 2 * pad - 4):
        win = [rows[y] if 0 <= y < h else None for y in range(yo - pad, yo - pad + 5)]
        out.append(host.conv2dk5(win, p, oc, pad, shift, rounding))
    return layouts.from_yc8x(np.stack(out), o)


def skip_image(y_in: np.ndarray, w3: np.ndarray, b3: np.ndarray | None, shift3: int,
               skip: np.ndarray, skip_in_shift: int, skip_shift: int,
               rounding: Any = quant.DEFAULT_ROUNDING) -> np.ndarray:
    """conv2dk1_skip_ui8 over an image; y_in uint8 (IC, H, W), skip uint8 (OC, H, W)."""
    ic = y_in.shape[0]
    lo, hi = _rows(y_in[: ic // 2]), _rows(y_in[ic // 2:])
    sk, p = _rows(skip), layouts.pack_conv_params(w3, b3)
    out = np.stack([host.conv2dk1_skip(lo[y], hi[y], p, sk[y], shift3, skip_in_shift,
                                        skip_shift, rounding)
                    for y in range(lo.shape[0])])
    return layouts.from_yc8x(out, w3.shape[0])


def skip_init_image(y_in: np.ndarray, w3: np.ndarray, b3: np.ndarray | None, shift3: int,
                    skip_in: np.ndarray, w_skip: np.ndarray, b_skip: np.ndarray | None,
                    skip_conv_shift: int, skip_shift: int,
                    rounding: Any = quant.DEFAULT_ROUNDING) -> np.ndarray:
    """conv2dk1_skip_init_ui8 over an image; skip_in int8 (IC_skip, H, W)."""
    ic = y_in.shape[0]
    lo, hi = _rows(y_in[: ic // 2]), _rows(y_in[ic // 2:])
    sk = _rows(skip_in)
    p = np.concatenate([layouts.pack_conv_params(w3, b3),
                        layouts.pack_conv_params(w_skip, b_skip)])
    oc = layouts.pad8(w3.shape[0])
    out = np.stack([host.conv2dk1_skip_init(lo[y], hi[y], p, sk[y], oc, shift3, skip_shift,
                                            skip_conv_shift, rounding)
                    for y in range(lo.shape[0])])
    return layouts.from_yc8x(out, w3.shape[0])


def maxpool_image(x: np.ndarray) -> np.ndarray:
    """2x2/2 max pool of a (C, H, W) int8/uint8 image (H, W even)."""
    rows = _rows(x)
    out = np.stack([host.maxpool2x2(rows[2 * y], rows[2 * y + 1])
                    for y in range(rows.shape[0] // 2)])
    return layouts.from_yc8x(out, x.shape[0])
