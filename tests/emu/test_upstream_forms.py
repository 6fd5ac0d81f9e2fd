"""API forms found in published IRON designs: iron.jit with host tensors, intermediate
taplib calls, v1.x dims lists shorter than their object, Versal device names."""
import numpy as np
import pytest

from common.emu import DesignError, load_design
from common.emu.device import XCVC1902, XCVE2802, from_name
from common.emu.shim import emulated_aie
from common.emu.taplib import TensorAccessPattern as TAP, dims_to_tap
from conftest import design_path


def test_jit_design_runs_at_load_and_again(kernels):
    d = load_design(design_path("jit_scale.py"), ["-n", "64"])
    assert "PASS!" in d.printed
    x = np.arange(64, dtype=np.int32)
    y = np.full(64, 5, np.int32)
    out, = d.run(x, y)
    assert np.array_equal(out, 3 * x + y)


def test_jit_design_wrong_result_exits_nonzero(kernels):
    from common.emu import register_kernel
    register_kernel("scale_i32", lambda a, o, f, n: np.multiply(a, f + 1, out=o))
    with pytest.raises(DesignError, match="exited with -1"):
        load_design(design_path("jit_scale.py"), ["-n", "32"])


def test_jit_tensors_and_cache():
    with emulated_aie():
        import aie.iron as iron
        t = iron.randint(0, 10, (4, 8), dtype=np.int16)
        assert t.numel() == 32 and t.numpy().dtype == np.int16 and t.shape == (4, 8)
        assert iron.zeros(8, dtype=np.int32).sum() == 0 and iron.ceildiv(7, 2) == 4
        calls = []

        @iron.jit
        def gen(a, b):
            calls.append(1)
            return None

        with pytest.raises(DesignError, match="did not resolve"):
            gen(t, t)


def test_legacy_taplib_forms_and_extended_dims():
    d = load_design(design_path("legacy_taps.py"))
    a = np.arange(32, dtype=np.int32).reshape(8, 4)
    b = np.arange(100, 132, dtype=np.int32)
    t, lin = d.run(a, np.zeros((8, 4), np.int32), b)
    assert np.array_equal(t.reshape(-1), a.T.reshape(-1))
    blocks = b.reshape(4, 2, 4).transpose(0, 2, 1).reshape(-1)
    assert np.array_equal(lin, blocks)


def test_tap_defaults_and_tile_sequence():
    t = TAP((3, 4))
    assert (t.offset, t.sizes, t.strides) == (0, [3, 4], [4, 1])
    assert TAP((12,), 2, [5]).strides == [1]
    seq = TAP((4, 6)).tile_sequence((2, 3), tile_dim_order=[1, 0])
    assert len(seq) == 4
    x = np.arange(24).reshape(4, 6)
    assert np.array_equal(seq[1].to_stream(x), x[0:2, 3:6].T.reshape(-1))
    g = TAP((4, 8)).tile_sequence((2, 2), repeat_dims=(1, 2), step_dims=(1, 2), pattern_repeat=2)
    assert g[0].sizes == [2, 2, 2, 2] and g[0].strides == [0, 4, 8, 1]


def test_short_dims_list_extends_outermost_dimension():
    assert list(dims_to_tap([(1, 2), (1, 1)], 4).walk()) == [0, 1, 2, 3]
    assert list(dims_to_tap([(2, 2), (2, 1)], 8).walk()) == list(range(8))
    w = dims_to_tap([(1, 6), (3, 1), (2, 3)], 12).walk()    # 2x3 blocks, column-major
    assert list(w) == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]
    with pytest.raises(DesignError):
        dims_to_tap([(2, 4), (3, 1)], 8)                   # 8 not a multiple of 3
    with pytest.raises(DesignError):
        dims_to_tap([(2, 4), (2, 1)], 16)                 # extension leaves the object


def test_versal_devices():
    assert XCVE2802().get_tile_type(0, 2).name == "MemTile"
    assert XCVE2802().get_compute_tiles()[0].row == 3
    assert XCVC1902().get_tile_type(3, 1).name == "CoreTile"
    assert from_name("xcvc1902").name == "XCVC1902"
