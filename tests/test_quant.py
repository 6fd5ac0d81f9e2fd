"""common.quant: requantization arithmetic, po2 scales, shifts."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from common import quant
from common.quant import QuantError, RoundingMode, requantize


def ref_requant(acc: int, k: int, mode: str, lo: int, hi: int) -> int:
    """Exact rational reference: acc * 2**-k rounded, clamped."""
    x = Fraction(acc) / Fraction(2) ** k
    if mode == "half_even":
        v = round(x)  # Fraction rounds half to even
    else:
        v = math.floor(x + Fraction(1, 2))
    return min(max(v, lo), hi)


@pytest.mark.parametrize("acc,shift,even,up", [
    (1, 1, 0, 1),       # 0.5
    (3, 1, 2, 2),       # 1.5
    (5, 1, 2, 3),       # 2.5
    (-1, 1, 0, 0),      # -0.5 -> half_up gives floor(0) = 0
    (-3, 1, -2, -1),    # -1.5
    (-5, 1, -2, -2),    # -2.5
    (6, 2, 2, 2),       # 1.5
    (10, 2, 2, 3),      # 2.5
    (-10, 2, -2, -2),   # -2.5
    (7, 2, 2, 2),       # 1.75
    (-7, 2, -2, -2),    # -1.75
    (9, 2, 2, 2),       # 2.25
    (255, 0, 127, 127),  # shift 0 saturates int8
    (-3, -1, -6, -6),   # left shift
    (100, -1, 127, 127),
    (2**31 - 1, 31, 1, 1),
    (-2**31, 31, -1, -1),
])
def test_requantize_hand_values_int8(acc, shift, even, up):
    a = np.array([acc], dtype=np.int64)
    assert requantize(a, shift, "half_even", np.int8)[0] == even
    assert requantize(a, shift, "half_up", np.int8)[0] == up


def test_requantize_uint8_relu_and_saturation():
    a = np.array([-1000, -1, 0, 1, 254, 255, 256, 10**6], dtype=np.int32)
    assert requantize(a, 0, "half_even", np.uint8).tolist() == [0, 0, 0, 1, 254, 255, 255, 255]
    assert requantize(a, 0, "half_even", np.int8).tolist() == [-128, -1, 0, 1, 127, 127, 127, 127]
    assert requantize(np.array([511, 509]), 1, "half_up", np.uint8).tolist() == [255, 255]
    assert requantize(np.array([509, 507]), 1, "half_even", np.uint8).tolist() == [254, 254]


def test_requantize_keeps_shape_and_dtype():
    a = np.arange(-40, 40, dtype=np.int32).reshape(2, 4, 10)
    r = requantize(a, 2, RoundingMode.HALF_UP, np.uint8)
    assert r.shape == a.shape and r.dtype == np.uint8
    assert requantize(a, 2, None, "int8").dtype == np.int8


@settings(max_examples=150, deadline=None)
@given(acc=st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=20),
       shift=st.integers(quant.SHIFT_MIN, quant.SHIFT_MAX),
       mode=st.sampled_from(["half_even", "half_up"]),
       unsigned=st.booleans())
def test_requantize_matches_rational_reference(acc, shift, mode, unsigned):
    dt, (lo, hi) = (np.uint8, (0, 255)) if unsigned else (np.int8, (-128, 127))
    got = requantize(np.array(acc, dtype=np.int32), shift, mode, dt)
    assert got.tolist() == [ref_requant(a, shift, mode, lo, hi) for a in acc]


@settings(max_examples=100, deadline=None)
@given(acc=st.integers(-2**20, 2**20), shift=st.integers(1, 12))
def test_half_even_matches_numpy_round(acc, shift):
    want = int(np.round(acc / 2.0 ** shift))  # numpy rounds half to even, exact here
    assert requantize(np.array([acc]), shift, "half_even", np.int8)[0] \
        == min(max(want, -128), 127)


def test_requantize_rejects_bad_args():
    a = np.zeros(3, np.int32)
    for bad in (quant.SHIFT_MIN - 1, quant.SHIFT_MAX + 1, 1.5, True, "3"):
        with pytest.raises(QuantError):
            requantize(a, bad, "half_even", np.int8)
    with pytest.raises(QuantError, match="out_dtype"):
        requantize(a, 1, "half_even", np.int16)
    with pytest.raises(QuantError, match="integer"):
        requantize(a.astype(np.float32), 1, "half_even", np.int8)
    with pytest.raises(QuantError, match="rounding"):
        requantize(a, 1, "nearest", np.int8)


def test_rounding_parse_and_codes():
    assert RoundingMode.parse(None) is RoundingMode.HALF_EVEN
    assert RoundingMode.parse("HALF-UP") is RoundingMode.HALF_UP
    assert quant.parse_rounding("half_even") is RoundingMode.HALF_EVEN
    assert RoundingMode.parse(1) is RoundingMode.HALF_UP
    assert RoundingMode.HALF_EVEN.code == 0 and RoundingMode.HALF_UP.code == 1
    with pytest.raises(QuantError):
        RoundingMode.parse(2)
    with pytest.raises(QuantError):
        RoundingMode.parse(True)


@pytest.mark.parametrize("scale,exp", [
    (1.0, 0), (0.5, -1), (2.0**-7, -7), (8, 3), (np.float32(2.0**-10), -10),
    (np.array([0.25]), -2), (torch.tensor(0.125), -3), (torch.tensor([2.0**-20]), -20),
    (np.float64(2.0**-1074), -1074),
])
def test_po2_exponent_accepts(scale, exp):
    assert quant.po2_exponent(scale, "x") == exp


@pytest.mark.parametrize("scale", [
    None, 0.0, -0.5, 0.3, 0.75, 3.0, float("inf"), float("nan"), np.array([0.5, 0.25]),
    torch.tensor([0.5, 0.5]), "abc", torch.tensor(0.1),
])
def test_po2_exponent_rejects_naming_what(scale):
    with pytest.raises(QuantError, match="layer1.conv2"):
        quant.po2_exponent(scale, "layer1.conv2")
    assert issubclass(QuantError, ValueError)


def test_combined_and_add_shift():
    assert quant.combined_shift(2**-4, 2**-7, 2**-3, "c") == 8
    assert quant.combined_shift(torch.tensor(2.0**-5), np.float32(2**-6), 2**-2, "c") == 9
    assert quant.add_shift(2**-4, 2**-4, "add") == 0
    assert quant.add_shift(2**-4, 2**-5, "add") == -1
    assert quant.add_shift(2**-5, 2**-3, "add") == 2
    with pytest.raises(QuantError, match="blk0.conv1"):
        quant.combined_shift(2**-4, 2**-7, 2**30, "blk0.conv1")   # shift 41
    with pytest.raises(QuantError, match="blk0.add"):
        quant.add_shift(1.0, 2**-9, "blk0.add")                   # shift -9
    with pytest.raises(QuantError, match="weight scale"):
        quant.combined_shift(2**-4, 0.3, 2**-3, "c")


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 64 * 5000, 300_001])
@pytest.mark.parametrize("q", [99.999, 99.0, 50.0, 100.0])
def test_topk_percentile_equals_brevitas_kthvalue(n, q):
    """The calibration statistic is Brevitas's AbsPercentile value exactly (ties included)."""
    from brevitas.core.stats.stats_op import AbsPercentile

    from common.ptq import AbsPercentileTopK

    x = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 3
    x[: n // 3] = x[0]                                   # ties anywhere
    relu = torch.relu(x)                                 # half zeros, as after a ReLU
    top = torch.clamp(x, -2.0, 2.0)                      # ties at the largest values
    for t in (x, relu, top):
        assert torch.equal(AbsPercentileTopK(q)(t), AbsPercentile(q, None)(t))
