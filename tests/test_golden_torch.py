"""common.golden_torch (fast golden model) == common.golden (reference formulas), element
for element: every op fuzzed on random shapes, values, both rounding modes, shifts
SHIFT_MIN..SHIFT_MAX (0 and negative included) and saturation extremes, in float32 and
(forced) float64; the whole conv2_x and LeNet golden stages on random integer stages."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import int_data

from common import golden, golden_torch as fast, quant
from common.golden_torch import Ints
from common.quant import RoundingMode
from lenet_npu.stage import golden_stage as lenet_golden, random_stage
from common.intlayer import IntLayer
from ptq_conv2x.stage import IN_DTYPE, IntBlock, IntStage, golden_stage

SETTINGS = dict(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
ROUND = st.sampled_from(["half_even", "half_up"])
SHIFT = st.one_of(st.sampled_from([quant.SHIFT_MIN, -1, 0, 1, quant.SHIFT_MAX]),
                  st.integers(quant.SHIFT_MIN, quant.SHIFT_MAX))
DTYPE8 = st.sampled_from([np.int8, np.uint8])
FILL = st.sampled_from(["uniform", "uniform", "small", "max", "min"])


@pytest.fixture(params=["float32", "float64"])
def precision(request, monkeypatch):
    """Run each test as is (float32 where provably exact) and with float64 forced."""
    if request.param == "float64":
        monkeypatch.setattr(fast, "_ieee_float32", lambda: False)
    return request.param


data = int_data


def same(ref_fn, fast_fn):
    """Both raise ValueError, or both return the same array (dtype, shape, elements)."""
    try:
        want = ref_fn()
    except ValueError:
        with pytest.raises(ValueError):
            fast_fn()
        return None
    got = np.asarray(fast_fn())
    assert got.dtype == want.dtype and got.shape == want.shape
    bad = np.count_nonzero(got != want)
    assert bad == 0, f"{bad} mismatches of {want.size}"
    return got


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 3), c=st.integers(1, 40),
       o=st.integers(1, 12), hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       k=st.sampled_from([1, 3, 5]), pad=st.integers(0, 2), x_dt=DTYPE8,
       out_dt=DTYPE8, shift=SHIFT, rounding=ROUND, fill=FILL,
       big_bias=st.booleans(), chw=st.booleans())
def test_conv_requant(precision, seed, n, c, o, hw, k, pad, x_dt, out_dt, shift, rounding,
                      fill, big_bias, chw):
    rng = np.random.default_rng(seed)
    shape = (c, *hw) if chw else (n, c, *hw)
    x = data(rng, shape, x_dt, fill)
    w = data(rng, (o, c, k, k), np.int8, fill)
    hi = 2**31 - 1 if big_bias else 5000
    b = rng.integers(-hi, hi + 1, size=o).astype(np.int32)
    same(lambda: golden.conv_requant(x, w, b, shift, rounding, out_dt, pad),
         lambda: fast.conv_requant(x, w, b, shift, rounding, out_dt, pad))
    same(lambda: golden.conv2d_acc(x, w, None, pad), lambda: fast.conv2d_acc(x, w, None, pad))


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**31), c=st.integers(1, 24), o=st.integers(1, 16),
       shift3=SHIFT, skip_in_shift=SHIFT, skip_shift=SHIFT, rounding=ROUND, fill=FILL,
       skip_dt=st.sampled_from([np.uint8, np.int8, np.int32, np.int64]))
def test_conv_skip_add(precision, seed, c, o, shift3, skip_in_shift, skip_shift, rounding,
                       fill, skip_dt):
    rng = np.random.default_rng(seed)
    y = data(rng, (2, c, 5, 4), np.uint8, fill)
    w = data(rng, (o, c, 1, 1), np.int8, fill)
    b = rng.integers(-5000, 5001, size=o).astype(np.int32)
    skip = data(rng, (2, o, 5, 4), skip_dt, fill)
    if skip_dt == np.int64:                       # beyond float64: clamped first
        skip = skip // 3
    same(lambda: golden.conv_skip_add(y, w, b, shift3, skip, skip_in_shift, skip_shift,
                                      rounding),
         lambda: fast.conv_skip_add(y, w, b, shift3, skip, skip_in_shift, skip_shift,
                                    rounding))


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**31), c=st.integers(1, 24), o=st.integers(1, 16),
       shift3=SHIFT, proj_shift=SHIFT, skip_shift=SHIFT, rounding=ROUND, fill=FILL,
       chw=st.booleans(), x_dt=DTYPE8)
def test_conv_skip_proj_add(precision, seed, c, o, shift3, proj_shift, skip_shift, rounding,
                            fill, chw, x_dt):
    rng = np.random.default_rng(seed)
    lead = () if chw else (2,)
    y = data(rng, (*lead, c, 3, 6), np.uint8, fill)
    x = data(rng, (*lead, c + 1, 3, 6), x_dt, fill)
    w3 = data(rng, (o, c, 1, 1), np.int8, fill)
    wp = data(rng, (o, c + 1, 1, 1), np.int8, fill)
    b3, bp = (rng.integers(-9000, 9001, size=o).astype(np.int32) for _ in range(2))
    same(lambda: golden.conv_skip_proj_add(y, w3, b3, shift3, x, wp, bp, proj_shift,
                                           skip_shift, rounding),
         lambda: fast.conv_skip_proj_add(y, w3, b3, shift3, x, wp, bp, proj_shift,
                                         skip_shift, rounding))


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 4), i=st.integers(1, 500),
       o=st.integers(1, 20), shift=SHIFT, rounding=ROUND, fill=FILL, out_dt=DTYPE8,
       x_dt=st.sampled_from([np.uint8, np.int8, np.int32, np.int64]), vec=st.booleans())
def test_fc(precision, seed, n, i, o, shift, rounding, fill, out_dt, x_dt, vec):
    rng = np.random.default_rng(seed)
    x = data(rng, (i,) if vec else (n, i), x_dt, fill)
    if x_dt == np.int64:                          # beyond float64: the int64 path
        x = x // 4
    w = data(rng, (o, i), np.int8, fill)
    b = rng.integers(-30000, 30001, size=o).astype(np.int32)
    same(lambda: golden.fc_requant(x, w, b, shift, rounding, out_dt),
         lambda: fast.fc_requant(x, w, b, shift, rounding, out_dt))
    same(lambda: golden.fc_acc(x, w, b), lambda: fast.fc_acc(x, w, b))


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**31), shape=st.lists(st.integers(1, 7), min_size=2, max_size=4),
       dt=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16]))
def test_maxpool2x2(seed, shape, dt):
    x = data(np.random.default_rng(seed), tuple(shape), dt, "uniform")
    same(lambda: golden.maxpool2x2(x), lambda: fast.maxpool2x2(x))


@pytest.mark.parametrize("n,hw", [(1, 6), (4, 32)])
def test_float32_path_at_its_bound_is_exact(n, hw):
    """Sums just under 2**24 (the float32 proof's limit; conv2_x's 3x3 shape) stay exact;
    the half-up term pushes the bound over, to float64, exact too."""
    c = 64
    sign = np.where(np.arange(c) % 2 == 0, 1, -1).astype(np.int8)[:, None, None, None]
    w = np.full((c, c, 3, 3), 113, np.int8) * sign     # 255 * 113 * 576 = 16_597_440
    x = np.random.default_rng(n).integers(200, 256, (n, c, hw, hw), dtype=np.uint8)
    x[:, :, 1:-1, 1:-1] = 255
    b = (sign.reshape(c).astype(np.int64) * (2**24 - 1 - 16_597_440)).astype(np.int32)
    for rounding in ("half_even", "half_up"):
        for shift in (0, 1, 7, 23, 24, 31, -1):
            same(lambda: golden.conv_requant(x, w, b, shift, rounding, np.int8, 1),
                 lambda: fast.conv_requant(x, w, b, shift, rounding, np.int8, 1))
    same(lambda: golden.conv2d_acc(x, w, b, 1), lambda: fast.conv2d_acc(x, w, b, 1))
    assert fast._exact_dtype(2**24 - 1) == torch.float32
    assert fast._exact_dtype(2**24) == torch.float64


def test_contract_errors():
    x = np.full((1, 4, 3, 3), 255, np.uint8)
    w = np.full((2, 4, 1, 1), 127, np.int8)
    huge = np.array([2**31 - 1, 0], np.int32)
    with pytest.raises(ValueError, match="int32"):
        golden.conv2d_acc(x, w, huge)
    with pytest.raises(ValueError, match="int32"):
        fast.conv2d_acc(x, w, huge)
    with pytest.raises(ValueError, match="bias exceeds int32"):
        fast.conv_requant(x, w, np.array([2**31, 0], np.int64), 3)
    with pytest.raises(ValueError, match="integer"):
        fast.conv_requant(x.astype(np.float32), w, None, 3)
    with pytest.raises(quant.QuantError):
        fast.conv_requant(x, w, None, quant.SHIFT_MAX + 1)
    with pytest.raises(quant.QuantError):
        fast.fc_requant(x.reshape(1, -1), np.ones((2, 36), np.int8), None, 3, "half_even",
                        np.int16)


def test_ints_chain_and_conversion():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 8, 6, 6), dtype=np.int8)
    w1, w2 = (rng.integers(-128, 128, (8, 8, 3, 3), dtype=np.int8) for _ in range(2))
    h = fast.conv_requant(x, w1, None, 9, "half_up", np.uint8, 1)
    assert isinstance(h, Ints) and h.dtype == np.uint8 and h.shape == (2, 8, 6, 6)
    want = golden.conv_requant(golden.conv_requant(x, w1, None, 9, "half_up", np.uint8, 1),
                               w2, None, 10, "half_up", np.int8)
    got = np.asarray(fast.conv_requant(h, w2, None, 10, "half_up", np.int8))
    assert got.dtype == np.int8 and np.array_equal(got, want)
    p = fast.maxpool2x2(h)
    assert isinstance(p, Ints) and np.array_equal(np.asarray(p), golden.maxpool2x2(
        np.asarray(h)))


def random_conv2x_stage(rng, rounding, shifts) -> IntStage:
    """Random IntStage of the deploy shapes; ``shifts(name)`` gives each shift."""
    def conv(o, c, k, name):
        return IntLayer(rng.integers(-128, 128, (o, c, k, k), dtype=np.int8),
                       rng.integers(-20000, 20001, o).astype(np.int32), shifts(name))
    blocks = []
    for i in range(3):
        c_in = 64 if i == 0 else 256
        proj = conv(256, 64, 1, "proj") if i == 0 else None
        blocks.append(IntBlock(conv(64, c_in, 1, "conv1"), conv(64, 64, 3, "conv2"),
                               conv(256, 64, 1, "conv3"), proj,
                               0 if proj else shifts("skip"), shifts("out")))
    return IntStage(blocks, RoundingMode.parse(rounding))


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), rounding=ROUND, extreme=st.booleans(),
       hw=st.sampled_from([4, 8, 32]))
def test_conv2x_golden_stage(precision, seed, rounding, extreme, hw):
    """Random stages with shifts that keep activations busy, or any shift in range."""
    rng = np.random.default_rng(seed)
    busy = {"conv1": (10, 13), "conv2": (8, 11), "conv3": (10, 13), "proj": (10, 13),
            "skip": (-1, 3), "out": (-2, 2)}

    def shifts(name):
        lo, hi = (quant.SHIFT_MIN, quant.SHIFT_MAX) if extreme else busy[name]
        return int(rng.integers(lo, hi + 1))
    p = random_conv2x_stage(rng, rounding, shifts)
    x = rng.integers(0, 256, (2 if hw < 32 else 1, 64, hw, hw), dtype=IN_DTYPE)
    want = golden_stage(p, x, golden)
    got = golden_stage(p, x)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    if not extreme:
        assert 0.05 < np.count_nonzero(want) / want.size < 0.95   # not vacuous


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("rounding", ["half_even", "half_up"])
def test_lenet_golden_stage(precision, in_channels, rounding):
    p = random_stage(in_channels, rounding, seed=in_channels)
    hw = 28 if in_channels == 1 else 32
    x = np.random.default_rng(5).integers(0, 256, (6, in_channels, hw, hw), dtype=np.uint8)
    want = lenet_golden(p, x, golden)
    got = lenet_golden(p, x)
    assert got.dtype == np.int32 and np.array_equal(got, want)
