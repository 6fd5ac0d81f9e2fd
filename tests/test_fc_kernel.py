"""Fully connected kernel (common/kernels/fc.cc, host build) vs the golden model, and the
fc parameter blob of common/layouts.py: zero mismatches."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from common import golden, layouts, quant
from common.kernels import host

SETTINGS = dict(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND = st.sampled_from(["half_even", "half_up"])
FEATURES = st.sampled_from([1, 7, 8, 10, 84, 120, 400, 513])
FILL = st.sampled_from(["uniform", "uniform", "small", "max", "min"])
SHIFT = st.one_of(st.just("auto"), st.just("auto"),
                  st.sampled_from([quant.SHIFT_MIN, -1, 0, quant.SHIFT_MAX]),
                  st.integers(1, 20))


def data(rng, shape, dtype, fill):
    info = np.iinfo(dtype)
    if fill in ("max", "min"):
        return np.full(shape, getattr(info, fill), dtype)
    if fill == "small":
        return rng.integers(max(info.min, -3), 4, size=shape).astype(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def run_fc(x, w, b, shift, rounding, out_dtype, in_order=None):
    """Pack, pad the input to the device length, run the kernel, drop output padding."""
    p = layouts.pack_fc_params(w, b, in_order)
    order = layouts._fc_in_order(in_order, w.shape[1])
    xd = np.where(order >= 0, x[np.maximum(order, 0)], 0).astype(x.dtype)
    out = host.fc(xd, p, layouts.pad8(w.shape[0]), shift, rounding, out_dtype)
    return out[:w.shape[0]]


@settings(**SETTINGS)
@given(i=FEATURES, o=FEATURES, ti=st.sampled_from([np.int8, np.uint8]),
       to=st.sampled_from([np.uint8, np.int32]), fill=FILL, shift=SHIFT, rounding=ROUND,
       big_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fc_vs_golden(i, o, ti, to, fill, shift, rounding, big_bias, seed):
    rng = np.random.default_rng(seed)
    x, w = data(rng, (i,), ti, fill), data(rng, (o, i), np.int8, fill)
    hi = 2**31 - 1 - i * 255 * 128 if big_bias else 5000
    b = rng.integers(-hi, hi + 1, size=o).astype(np.int32)
    acc = golden.fc_acc(x, w, b)
    if to is np.int32:
        want = acc.astype(np.int32)
        k = 0
    else:
        m = int(np.abs(acc).max(initial=0))
        k = shift if shift != "auto" else int(np.clip(m.bit_length() - 7, quant.SHIFT_MIN,
                                                      quant.SHIFT_MAX))
        want = golden.fc_requant(x, w, b, k, rounding, np.uint8)
    got = run_fc(x, w, b, k, rounding, to)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.count_nonzero(got != want) == 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rounding=ROUND)
def test_fc1_in_device_order(seed, rounding):
    """fc1 fed with the pool2 map as the device delivers it (YCXC8) equals the golden
    model on PyTorch's flatten order."""
    rng = np.random.default_rng(seed)
    fmap = rng.integers(0, 256, size=(16, 5, 5), dtype=np.uint8)
    w = rng.integers(-128, 128, size=(120, 400), dtype=np.int8)
    b = rng.integers(-5000, 5000, size=120).astype(np.int32)
    p = layouts.pack_fc_params(w, b, layouts.yc8x_flatten_order(16, 5, 5))
    got = host.fc(layouts.to_yc8x(fmap).ravel(), p, 120, 12, rounding)
    assert np.array_equal(got, golden.fc_requant(fmap.reshape(-1), w, b, 12, rounding))


@settings(max_examples=50, deadline=None)
@given(c=st.sampled_from([1, 6, 16]), h=st.integers(1, 6), w=st.integers(1, 6),
       o=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_fc_params_roundtrip(c, h, w, o, seed):
    rng = np.random.default_rng(seed)
    order = layouts.yc8x_flatten_order(c, h, w)
    wt = rng.integers(-128, 128, size=(o, c * h * w), dtype=np.int8)
    b = rng.integers(-2**31, 2**31, size=o).astype(np.int32)
    p = layouts.pack_fc_params(wt, b, order)
    assert p.dtype == np.int8 and p.size == layouts.fc_params_nbytes(o, order.size)
    w2, b2 = layouts.unpack_fc_params(p, o, c * h * w, order)
    assert np.array_equal(w2, wt) and np.array_equal(b2, b)
    # padded rows and columns are zero, so padded inputs never contribute
    dev = p[:layouts.pad8(o) * order.size].reshape(-1, order.size // 8, 8, 8)
    dev = dev.transpose(0, 2, 1, 3).reshape(layouts.pad8(o), order.size)
    assert not dev[o:].any() and not dev[:, order < 0].any()


def test_flatten_order_is_yc8x():
    x = np.arange(6 * 3 * 4).reshape(6, 3, 4)
    order = layouts.yc8x_flatten_order(6, 3, 4)
    dev = layouts.to_yc8x(x.astype(np.int16) + 1).ravel()     # +1: padding shows as 0
    assert np.array_equal(np.where(order >= 0, order + 1, 0), dev)


def test_fc_errors():
    E = host.KernelArgError
    t = host.host_kernel_table()
    p = np.zeros(layouts.fc_params_nbytes(8, 8), np.int8)
    x, out = np.zeros(8, np.uint8), np.zeros(8, np.uint8)
    with pytest.raises(E, match="IN"):
        t["fc_ui8_ui8"](np.zeros(12, np.uint8), p, out, 12, 8, 0, 0)
    with pytest.raises(E, match="OUT"):
        t["fc_ui8_ui8"](x, p, out, 8, 0, 0, 0)
    with pytest.raises(E, match="shift"):
        t["fc_ui8_ui8"](x, p, out, 8, 8, 32, 0)
    with pytest.raises(E, match="params"):
        t["fc_ui8_i32"](x, p[:-4], np.zeros(8, np.int32), 8, 8)
    with pytest.raises(E, match="out"):
        t["fc_ui8_i32"](x, p, out, 8, 8)                        # 8 bytes, not 8 int32
    assert t["fc_i8_i32"](x.view(np.int8), p, np.zeros(8, np.int32), 8, 8) == 64  # MACs
    with pytest.raises(E, match="out_dtype"):
        host.fc(x, p, 8, out_dtype=np.int8)
    with pytest.raises(ValueError, match="in_order"):
        layouts.pack_fc_params(np.zeros((8, 4), np.int8), None, np.array([0, 1, 2, 2, -1, -1,
                                                                          -1, -1]))
    with pytest.raises(ValueError, match="bytes"):
        layouts.unpack_fc_params(p[:-1], 8, 8)
