"""common.layouts: activation/weight layouts, parameter blob, exact inverses."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from common import layouts


def rand(rng, shape, dtype=np.int8):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


@settings(max_examples=80, deadline=None)
@given(c=st.integers(1, 40), h=st.integers(1, 6), w=st.integers(1, 12),
       seed=st.integers(0, 2**32 - 1), unsigned=st.booleans())
def test_yc8x_flat_index_and_round_trip(c, h, w, seed, unsigned):
    rng = np.random.default_rng(seed)
    img = rand(rng, (c, h, w), np.uint8 if unsigned else np.int8)
    y = layouts.to_yc8x(img)
    cp = layouts.pad8(c)
    assert y.shape == (h, cp // 8, w, 8) and y.dtype == img.dtype and y.flags.c_contiguous
    flat = y.ravel()
    for (ci, yi, xi) in [(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, w // 3)]:
        assert flat[yi * cp * w + (ci // 8) * w * 8 + xi * 8 + ci % 8] == img[ci, yi, xi]
    pad_mask = np.ones(cp, bool)
    pad_mask[:c] = False
    assert not y.transpose(0, 1, 3, 2).reshape(h, cp, w)[:, pad_mask].any()
    np.testing.assert_array_equal(layouts.from_yc8x(y, c), img)


def test_yc8x_batched_and_rows():
    rng = np.random.default_rng(1)
    x = rand(rng, (2, 6, 3, 5))
    y = layouts.to_yc8x(x)
    assert y.shape == (2, 3, 1, 5, 8)
    np.testing.assert_array_equal(layouts.from_yc8x(y, 6), x)
    np.testing.assert_array_equal(y[1], layouts.to_yc8x(x[1]))
    row = rand(rng, (16, 7), np.uint8)
    r = layouts.to_c8x(row)
    assert r.shape == (2, 7, 8)
    np.testing.assert_array_equal(layouts.from_c8x(r, 16), row)
    np.testing.assert_array_equal(layouts.to_yc8x(row[:, None, :])[0], r)


@settings(max_examples=80, deadline=None)
@given(o=st.integers(1, 20), i=st.integers(1, 20), k=st.sampled_from([1, 3, 5]),
       seed=st.integers(0, 2**32 - 1))
def test_oiyxi8o8_index_and_round_trip(o, i, k, seed):
    rng = np.random.default_rng(seed)
    w = rand(rng, (o, i, k, k))
    p = layouts.to_oiyxi8o8(w)
    assert p.shape == (layouts.pad8(o) // 8, layouts.pad8(i) // 8, k, k, 8, 8)
    oo, ii, ky, kx = o - 1, i - 1, k - 1, 0
    assert p[oo // 8, ii // 8, ky, kx, ii % 8, oo % 8] == w[oo, ii, ky, kx]
    assert p.sum(dtype=np.int64) == w.sum(dtype=np.int64)  # padding is zero
    np.testing.assert_array_equal(layouts.from_oiyxi8o8(p, o, i), w)


@settings(max_examples=80, deadline=None)
@given(o=st.integers(1, 20), i=st.integers(1, 20), k=st.sampled_from([1, 3, 5]),
       seed=st.integers(0, 2**32 - 1), with_bias=st.booleans())
def test_blob_round_trip_and_layout(o, i, k, seed, with_bias):
    rng = np.random.default_rng(seed)
    w = rand(rng, (o, i, k, k))
    b = rng.integers(-2**31, 2**31, size=o, dtype=np.int64).astype(np.int32) if with_bias else None
    blob = layouts.pack_conv_params(w, b)
    op, ip = layouts.pad8(o), layouts.pad8(i)
    assert blob.dtype == np.int8 and blob.ndim == 1
    assert blob.nbytes == layouts.conv_params_nbytes(o, i, k, k) == op * ip * k * k + 4 * op
    assert blob.nbytes % 4 == 0
    nw = op * ip * k * k
    np.testing.assert_array_equal(blob[:nw], layouts.to_oiyxi8o8(w).ravel())
    bias = blob[nw:].tobytes()
    want_b = np.zeros(op, np.int32) if b is None else np.pad(b, (0, op - o))
    assert bias == want_b.astype("<i4").tobytes()       # little-endian int32
    w2, b2 = layouts.unpack_conv_params(blob, o, i, k, k)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(b2, want_b[:o])
    assert b2.dtype == np.int32


def test_layout_errors():
    with pytest.raises(ValueError, match="to_yc8x"):
        layouts.to_yc8x(np.zeros((3, 4), np.int8))
    with pytest.raises(ValueError, match="channels"):
        layouts.from_yc8x(np.zeros((2, 1, 4, 8), np.int8), 9)
    with pytest.raises(ValueError, match="channels"):
        layouts.from_yc8x(np.zeros((2, 2, 4, 8), np.int8), 8)
    with pytest.raises(ValueError):
        layouts.from_yc8x(np.zeros((2, 2, 4, 4), np.int8), 8)
    with pytest.raises(ValueError, match="to_oiyxi8o8"):
        layouts.to_oiyxi8o8(np.zeros((8, 8, 3), np.int8))
    with pytest.raises(ValueError, match="from_oiyxi8o8"):
        layouts.from_oiyxi8o8(np.zeros((1, 1, 3, 3, 8, 8), np.int8), 9, 8)
    with pytest.raises(ValueError, match="int8"):
        layouts.pack_conv_params(np.zeros((8, 8, 1, 1), np.int16), None)
    with pytest.raises(ValueError, match="bias shape"):
        layouts.pack_conv_params(np.zeros((8, 8, 1, 1), np.int8), np.zeros(7, np.int32))
    with pytest.raises(ValueError, match="int32"):
        layouts.pack_conv_params(np.zeros((8, 8, 1, 1), np.int8), np.full(8, 2**31))
    with pytest.raises(ValueError, match="integer"):
        layouts.pack_conv_params(np.zeros((8, 8, 1, 1), np.int8), np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="bytes"):
        layouts.unpack_conv_params(np.zeros(100, np.int8), 8, 8, 1, 1)
