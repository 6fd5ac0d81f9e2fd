import numpy as np
import pytest

from common.emu.errors import DesignError
from common.emu.taplib import TensorAccessPattern as TAP, TensorTiler2D


def test_full_walk_is_row_major():
    t = TAP.full((3, 4))
    assert t.sizes == [3, 4] and t.strides == [4, 1] and t.offset == 0
    assert list(t.walk()) == list(range(12))


def test_slicing_matches_numpy():
    x = np.arange(48).reshape(6, 8)
    for key in [(slice(1, 5, 2), slice(None, None, 3)), 2, (Ellipsis, 3), (None, slice(2, 4))]:
        tap = TAP.full((6, 8))[key]
        assert np.array_equal(tap.to_stream(x), x[key].reshape(-1))


def test_tile_group_doc_example():
    g = TAP.full((16, 16)).tile((4, 4)).group((2, 2))
    assert len(g) == 4
    s0 = g[0]
    assert (s0.offset, s0.sizes, s0.strides) == (0, [2, 2, 4, 4], [64, 4, 16, 1])
    s3 = g[3]
    assert s3.offset == 8 * 16 + 8


def test_tile_grid_order_and_partition():
    g = TAP.full((8, 8)).tile((4, 4))
    assert [t.offset for t in g] == [0, 4, 32, 36]
    assert [t.offset for t in g.order("col")] == [0, 32, 4, 36]
    p = TAP.full((1, 1024)).partition(4)[2]
    assert p.offset == 512 and p.sizes == [1, 256]


def test_padding_stream_and_access_order():
    t = TAP.full((2, 2)).pad([(1, 0), (0, 1)])
    assert t.padded_sizes == [3, 3]
    s = t.to_stream(np.array([[1, 2], [3, 4]]), pad_value=9)
    assert list(s) == [9, 9, 9, 1, 2, 9, 3, 4, 9]
    assert np.array_equal(TAP.full((2, 3)).T.access_order(), [[0, 2, 4], [1, 3, 5]])


def test_repeat_split_merge_coalesce_inverse():
    t = TAP.full((4, 4))
    assert t.repeat(2).walk().size == 32
    assert t.split(1, 2).sizes == [4, 2, 2]
    assert t.split(1, 2).merge(1) == t
    assert t.coalesce().sizes == [16]
    x = np.arange(16).reshape(4, 4)
    s = t.T.to_stream(x)
    assert np.array_equal(t.T.inverse().to_stream(s), x.reshape(-1))


def test_out_of_bounds_walk_raises():
    with pytest.raises(DesignError, match="outside tensor"):
        TAP((4,), 2, [4], [1]).walk()


def test_tensor_tiler2d_migration():
    seq = TensorTiler2D.simple_tiler((8, 8), (4, 4))
    assert len(seq) == 4 and seq[1].offset == 4
    seq = TensorTiler2D.group_tiler((8, 8), (2, 2), (2, 2))
    assert seq[0].sizes == [2, 2, 2, 2]
