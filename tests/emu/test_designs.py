import numpy as np

from common.emu import load_design, run_design
from conftest import design_path


def test_passthrough_through_memtile_forward():
    d = load_design(design_path("passthrough_fwd.py"), ["2048"])
    assert "emulated IRON program" in d.printed
    a = np.arange(2048, dtype=np.int32)
    out, = d.run(a)
    assert np.array_equal(out, a + 1)


def test_many_runs_are_cheap_and_repeatable():
    d = load_design(design_path("passthrough_fwd.py"), ["1024"])
    rng = np.random.default_rng(1)
    for _ in range(100):
        a = rng.integers(-100, 100, 1024).astype(np.int32)
        assert np.array_equal(d.run(a)[0], a + 1)
    assert d.runs == 100


def test_v1_api_vector_add_with_kernel_rtp_barrier(kernels):
    a = np.arange(1024, dtype=np.int32)
    b = np.full(1024, 7, np.int32)
    outs, summary = run_design(design_path("vector_add_v1.py"), [], [a, b])
    assert np.array_equal(outs[0], 3 * a + b)
    assert summary.workers[0].kernel_calls == {"vadd_scaled_i32": 4}


def test_split_join():
    d = load_design(design_path("split_join.py"))
    a = np.arange(512, dtype=np.int16)
    out, = d.run(a)
    exp = a.reshape(-1, 2, 64) * np.array([2, 3], np.int16)[None, :, None]
    assert np.array_equal(out, exp.reshape(-1))


def test_broadcast_two_consumers_different_depths():
    d = load_design(design_path("broadcast.py"))
    a = np.arange(256, dtype=np.int32)
    o1, o2 = d.run(a)
    assert np.array_equal(o1, -a)
    pairs = a.reshape(-1, 2, 32)
    exp = np.stack([pairs[:, 0] + pairs[:, 1], pairs[:, 1] - pairs[:, 0]], 1).reshape(-1)
    assert np.array_equal(o2, exp)


def test_sliding_window_line_buffer():
    d = load_design(design_path("line_buffer.py"), ["8", "16"])
    a = np.arange(128, dtype=np.int32).reshape(8, 16)
    out, = d.run(a)
    p = np.pad(a, ((1, 1), (0, 0)))
    assert np.array_equal(out, p[:-2] + p[1:-1] + p[2:])


def test_rtp_buffer_and_barrier_new_form(kernels):
    d = load_design(design_path("rtp_barrier.py"))
    a = np.arange(64, dtype=np.int32)
    assert np.array_equal(d.run(a, None, 5)[0], a * 5)
    assert np.array_equal(d.run(a, None, -2)[0], a * -2)


def test_tile_walk_fill_and_padded_to_stream():
    d = load_design(design_path("tiles_pad.py"))
    a = np.arange(256, dtype=np.int32).reshape(16, 16)
    out, = d.run(a)
    tiles = out.reshape(16, 6, 6)
    for k in range(16):
        r, c = divmod(k, 4)
        exp = np.full((6, 6), -1, np.int32)
        exp[1:5, 1:5] = a[4 * r:4 * r + 4, 4 * c:4 * c + 4]
        assert np.array_equal(tiles[k], exp)


def test_outputs_written_in_place_into_given_arrays():
    d = load_design(design_path("passthrough_fwd.py"), ["1024"])
    a = np.arange(1024, dtype=np.int32)
    c = np.zeros(1024, np.int32)
    out, = d.run(a, c)
    assert out is not None and np.array_equal(c, a + 1)
