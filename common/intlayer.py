"""One quantized layer in integers, as every network's integer stage holds it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class IntLayer:
    """A conv (weights OIHW) or fully connected layer (weights OI): int8 weights,
    int32 bias in units of s_in * s_w, and the requantization shift
    ``log2(s_out) - log2(s_in) - log2(s_w)`` (common.quant.combined_shift); the shift is
    unused (0) for a layer whose int32 accumulators are the output."""

    weight: np.ndarray
    bias: np.ndarray
    shift: int
