"""Host build of the C++ kernels vs the independent golden model: zero mismatches."""
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import int_data

from common import golden, layouts, quant
from common.kernels import build, host, images

SETTINGS = dict(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
ROUND = st.sampled_from(["half_even", "half_up"])
CHANNELS = st.sampled_from([1, 6, 8, 16, 24, 32, 64])
FILL = st.sampled_from(["uniform", "uniform", "small", "max", "min"])
SHIFT = st.one_of(st.just("auto"), st.just("auto"),
                  st.sampled_from([quant.SHIFT_MIN, -1, 0, quant.SHIFT_MAX]),
                  st.integers(1, 20))


@pytest.fixture(scope="module", autouse=True)
def _lib():
    host.load_library()


data = int_data


def weights(rng, shape, fill):
    # extreme activations are paired with extreme weights to hit saturation
    return data(rng, shape, np.int8, fill)


def bias(rng, o, big, terms=0, amax=255):
    """Random int32 bias; ``big`` spans int32 minus the largest possible conv sum of
    ``terms`` products (the kernels accumulate in int32; overflow is out of contract)."""
    hi = 2**31 - 1 - terms * amax * 128 if big else 5000
    return rng.integers(-hi, hi + 1, size=o).astype(np.int32)


def pick_shift(shift, acc):
    if shift != "auto":
        return shift
    m = int(np.abs(acc).max(initial=0))
    return int(np.clip(m.bit_length() - 7, quant.SHIFT_MIN, quant.SHIFT_MAX))


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    bad = np.count_nonzero(got != want)
    assert bad == 0, f"{bad} mismatches of {want.size}"


# ------------------------------------------------------------------ conv 1x1
@settings(**SETTINGS)
@given(w=st.integers(1, 40), ic=CHANNELS, oc=CHANNELS, h=st.integers(1, 3),
       ti=st.sampled_from([np.int8, np.uint8]), to=st.sampled_from([np.int8, np.uint8]),
       fill=FILL, shift=SHIFT, rounding=ROUND, big_bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_conv2dk1_vs_golden(w, ic, oc, h, ti, to, fill, shift, rounding, big_bias, seed):
    rng = np.random.default_rng(seed)
    x = data(rng, (ic, h, w), ti, fill)
    wt, b = weights(rng, (oc, ic, 1, 1), fill), bias(rng, oc, big_bias, ic)
    k = pick_shift(shift, golden.conv2d_acc(x, wt, b))
    want = golden.conv_requant(x, wt, b, k, rounding, to)
    assert_same(images.conv1x1_image(x, wt, b, k, rounding, to), want)


@settings(max_examples=150, deadline=None)
@given(b=st.lists(st.integers(-2**31, 2**31 - 1), min_size=8, max_size=8),
       shift=st.integers(quant.SHIFT_MIN, quant.SHIFT_MAX), rounding=ROUND,
       to=st.sampled_from([np.int8, np.uint8]))
def test_c_requant_matches_python_on_full_int32_range(b, shift, rounding, to):
    """Zero weights: the output is requantize(bias), exercising the C SRS on any int32."""
    bb = np.array(b, np.int32)
    bb[:2] = [2**31 - 1, -2**31]
    x = np.zeros((8, 1, 4), np.int8)
    got = images.conv1x1_image(x, np.zeros((8, 8, 1, 1), np.int8), bb, shift, rounding, to)
    want = quant.requantize(np.broadcast_to(bb[:, None, None], got.shape), shift,
                            rounding, to)
    assert_same(got, want)


# ------------------------------------------------------------------ conv 3x3
@settings(**SETTINGS)
@given(w=st.integers(1, 34), h=st.integers(2, 5), ic=st.sampled_from([8, 16, 32, 64, 6]),
       oc_blocks=st.integers(1, 6), split=st.sampled_from([1, 2, 0]), fill=FILL,
       shift=SHIFT, rounding=ROUND, big_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_conv2dk3_vs_golden(w, h, ic, oc_blocks, split, fill, shift, rounding, big_bias, seed):
    rng = np.random.default_rng(seed)
    oc = 8 * oc_blocks
    split = split or oc_blocks  # 0 -> one call per 8-channel block
    if oc_blocks % split:
        split = 1
    x = data(rng, (ic, h, w), np.uint8, fill)
    wt, b = weights(rng, (oc, ic, 3, 3), fill), bias(rng, oc, big_bias, 9 * ic)
    k = pick_shift(shift, golden.conv2d_acc(x, wt, b, padding=1))
    want = golden.conv_requant(x, wt, b, k, rounding, np.uint8, padding=1)
    assert_same(images.conv3x3_image(x, wt, b, k, rounding, oc_split=split), want)


# ------------------------------------------------------------------ skip kernels
@settings(**SETTINGS)
@given(w=st.integers(1, 34), h=st.integers(1, 3), ic=st.sampled_from([16, 32, 64]),
       oc=st.sampled_from([8, 16, 64, 256]), fill=FILL, shift=SHIFT,
       skip_shift=st.integers(quant.SHIFT_MIN, 4), skip_in_shift=st.integers(-2, 3),
       rounding=ROUND, big_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_conv2dk1_skip_vs_golden(w, h, ic, oc, fill, shift, skip_shift, skip_in_shift,
                                 rounding, big_bias, seed):
    rng = np.random.default_rng(seed)
    y = data(rng, (ic, h, w), np.uint8, fill)
    skip = data(rng, (oc, h, w), np.uint8, "uniform" if fill == "small" else fill)
    wt, b = weights(rng, (oc, ic, 1, 1), fill), bias(rng, oc, big_bias, ic)
    k = pick_shift(shift, golden.conv2d_acc(y, wt, b))
    want = golden.conv_skip_add(y, wt, b, k, skip, skip_in_shift, skip_shift, rounding)
    assert_same(images.skip_image(y, wt, b, k, skip, skip_in_shift, skip_shift, rounding),
                want)


@settings(**SETTINGS)
@given(w=st.integers(1, 34), ic=st.sampled_from([8, 64]), oc=st.sampled_from([8, 64]),
       oc_proj=st.sampled_from([8, 256]), ti=st.sampled_from([np.int8, np.uint8]), fill=FILL,
       shift=SHIFT, proj_shift=SHIFT, rounding=ROUND, seed=st.integers(0, 2**32 - 1))
def test_conv2dk1_proj_vs_golden(w, ic, oc, oc_proj, ti, fill, shift, proj_shift, rounding,
                                 seed):
    """conv2dk1_proj_i8 / _ui8 (int8 / uint8 row in): conv1 (uint8 + ReLU) and the skip
    projection (int8) of one row."""
    rng = np.random.default_rng(seed)
    x = data(rng, (ic, 1, w), ti, fill)
    w1, b1 = weights(rng, (oc, ic, 1, 1), fill), bias(rng, oc, False, ic)
    wp, bp = weights(rng, (oc_proj, ic, 1, 1), fill), bias(rng, oc_proj, False, ic)
    k1 = pick_shift(shift, golden.conv2d_acc(x, w1, b1))
    kp = pick_shift(proj_shift, golden.conv2d_acc(x, wp, bp))
    out = np.zeros((oc // 8, w, 8), np.uint8)
    proj = np.zeros((oc_proj // 8, w, 8), np.int8)
    params = np.concatenate([layouts.pack_conv_params(w1, b1), layouts.pack_conv_params(wp, bp)])
    host.host_kernel_table()[f"conv2dk1_proj_{'i8' if ti is np.int8 else 'ui8'}"](
        layouts.to_yc8x(x)[0], params, out, proj, w, ic, oc, oc_proj, k1, kp,
        quant.RoundingMode.parse(rounding).code)
    assert_same(layouts.from_yc8x(out[None], oc),
                golden.conv_requant(x, w1, b1, k1, rounding, np.uint8))
    assert_same(layouts.from_yc8x(proj[None], oc_proj),
                golden.conv_requant(x, wp, bp, kp, rounding, np.int8))


@settings(**SETTINGS)
@given(w=st.integers(1, 34), ic=st.sampled_from([16, 64]), oc=st.sampled_from([8, 256]),
       fill=FILL, shift=SHIFT, skip_shift=st.integers(quant.SHIFT_MIN, 4),
       skip_in_shift=st.integers(-1, 2), rounding=ROUND, seed=st.integers(0, 2**32 - 1))
def test_conv2dk1_skip_int8_skip_vs_golden(w, ic, oc, fill, shift, skip_shift, skip_in_shift,
                                           rounding, seed):
    """conv2dk1_skip_i8skip_ui8: int8 skip (a projection made on another core)."""
    rng = np.random.default_rng(seed)
    y = data(rng, (ic, 1, w), np.uint8, fill)
    skip = data(rng, (oc, 1, w), np.int8, fill)
    wt, b = weights(rng, (oc, ic, 1, 1), fill), bias(rng, oc, False, ic)
    k = pick_shift(shift, golden.conv2d_acc(y, wt, b))
    want = golden.conv_skip_add(y, wt, b, k, skip, skip_in_shift, skip_shift, rounding)
    rows = layouts.to_yc8x(y)[0]
    out = np.zeros((oc // 8, w, 8), np.uint8)
    host.host_kernel_table()["conv2dk1_skip_i8skip_ui8"](
        np.ascontiguousarray(rows[: ic // 16]), np.ascontiguousarray(rows[ic // 16:]),
        layouts.pack_conv_params(wt, b), out, layouts.to_yc8x(skip)[0], w, ic, oc, k,
        skip_shift, skip_in_shift, quant.RoundingMode.parse(rounding).code)
    assert_same(layouts.from_yc8x(out[None], oc), want)


@settings(**SETTINGS)
@given(w=st.integers(1, 34), h=st.integers(1, 3), ic=st.sampled_from([16, 64]),
       oc=st.sampled_from([8, 32, 256]), ic_skip=st.sampled_from([8, 16, 64]), fill=FILL,
       shift=SHIFT, skip_conv_shift=SHIFT, skip_shift=st.integers(quant.SHIFT_MIN, 4),
       rounding=ROUND, big_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_conv2dk1_skip_init_vs_golden(w, h, ic, oc, ic_skip, fill, shift, skip_conv_shift,
                                      skip_shift, rounding, big_bias, seed):
    rng = np.random.default_rng(seed)
    y = data(rng, (ic, h, w), np.uint8, fill)
    xs = data(rng, (ic_skip, h, w), np.int8, fill)
    w3, b3 = weights(rng, (oc, ic, 1, 1), fill), bias(rng, oc, big_bias, ic)
    ws, bs = weights(rng, (oc, ic_skip, 1, 1), fill), bias(rng, oc, big_bias, ic_skip)
    k3 = pick_shift(shift, golden.conv2d_acc(y, w3, b3))
    ks = pick_shift(skip_conv_shift, golden.conv2d_acc(xs, ws, bs))
    want = golden.conv_skip_proj_add(y, w3, b3, k3, xs, ws, bs, ks, skip_shift, rounding)
    got = images.skip_init_image(y, w3, b3, k3, xs, ws, bs, ks, skip_shift, rounding)
    assert_same(got, want)


# ------------------------------------------------------------------ LeNet 5x5 + pool
@settings(**SETTINGS)
@given(w=st.integers(5, 32), h=st.integers(5, 8), pad=st.sampled_from([0, 1, 2]),
       ic=st.sampled_from([1, 6, 16]), oc=st.sampled_from([6, 16]),
       ti=st.sampled_from([np.int8, np.uint8]), fill=FILL, shift=SHIFT, rounding=ROUND,
       big_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_conv2dk5_vs_golden(w, h, pad, ic, oc, ti, fill, shift, rounding, big_bias, seed):
    rng = np.random.default_rng(seed)
    x = data(rng, (ic, h, w), ti, fill)
    wt, b = weights(rng, (oc, ic, 5, 5), fill), bias(rng, oc, big_bias, 25 * ic)
    k = pick_shift(shift, golden.conv2d_acc(x, wt, b, padding=pad))
    want = golden.conv_requant(x, wt, b, k, rounding, np.uint8, padding=pad)
    assert_same(images.conv5x5_image(x, wt, b, pad, k, rounding), want)


@settings(**SETTINGS)
@given(c=st.sampled_from([6, 8, 16]), h=st.integers(1, 4), w=st.integers(1, 16),
       dt=st.sampled_from([np.int8, np.uint8]), fill=FILL, seed=st.integers(0, 2**32 - 1))
def test_maxpool_vs_golden(c, h, w, dt, fill, seed):
    x = data(np.random.default_rng(seed), (c, 2 * h, 2 * w), dt, fill)
    assert_same(images.maxpool_image(x), golden.maxpool2x2(x))


def test_golden_conv_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(2, 16, 7, 9)).astype(np.int8)
    w = rng.integers(-128, 128, size=(8, 16, 3, 3)).astype(np.int8)
    b = rng.integers(-10**6, 10**6, size=8).astype(np.int32)
    want = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64),
                                      torch.tensor(w, dtype=torch.float64),
                                      torch.tensor(b, dtype=torch.float64), padding=1)
    np.testing.assert_array_equal(golden.conv2d_acc(x, w, b, padding=1), want.numpy())


# ------------------------------------------------------------------ table / errors
def test_table_has_all_symbols_and_writes_in_place():
    t = host.host_kernel_table()
    assert set(t) == set(host.SIGNATURES)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(64, 1, 32)).astype(np.int8)
    wt = rng.integers(-128, 128, size=(64, 64, 1, 1)).astype(np.int8)
    b = rng.integers(-1000, 1000, size=64).astype(np.int32)
    p = layouts.pack_conv_params(wt, b)
    inp = layouts.to_yc8x(x).reshape(-1)                     # flat buffers, any shape
    out = np.zeros(64 * 32, np.uint8)
    before = out.ctypes.data
    t["conv2dk1_i8_ui8"](inp, p, out, 32, 64, 64, 9, 0)
    assert out.ctypes.data == before
    want = golden.conv_requant(x, wt, b, 9, "half_even", np.uint8)
    assert_same(layouts.from_yc8x(out.reshape(1, 8, 32, 8), 64), want)
    # params reinterpreted as raw bytes: a uint8 view works the same
    out2 = np.zeros_like(out)
    t["conv2dk1_i8_ui8"](inp, p.view(np.uint8), out2, 32, 64, 64, 9, 0)
    assert_same(out2, out)


def test_conv2dk3_padding_rows_not_read():
    t = host.host_kernel_table()
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(8, 2, 8)).astype(np.uint8)
    wt = rng.integers(-128, 128, size=(8, 8, 3, 3)).astype(np.int8)
    rows, p = layouts.to_yc8x(x), layouts.pack_conv_params(wt, None)
    out = np.zeros((1, 8, 8), np.uint8)
    t["conv2dk3_ui8"](None, rows[0], rows[1], p, out, 8, 8, 8, 8, 0, 8, 1, 0)
    want = golden.conv_requant(x, wt, None, 8, "half_up", np.uint8, padding=1)
    assert_same(layouts.from_yc8x(out[None], 8)[:, 0], want[:, 0])


def test_table_argument_errors():
    t = host.host_kernel_table()
    k1 = t["conv2dk1_i8_ui8"]
    inp, p, out = np.zeros(8 * 8, np.int8), np.zeros(8 * 8 + 32, np.int8), np.zeros(64, np.uint8)
    k1(inp, p, out, 8, 8, 8, 0, 0)
    E = host.KernelArgError
    with pytest.raises(E, match="arguments"):
        k1(inp, p, out, 8, 8, 8, 0)
    with pytest.raises(E, match="bytes"):
        k1(inp[:-1], p, out, 8, 8, 8, 0, 0)
    with pytest.raises(E, match="bytes"):
        k1(inp, p[:-4], out, 8, 8, 8, 0, 0)
    with pytest.raises(E, match="multiple of 8"):
        k1(inp, p, out, 8, 8, 6, 0, 0)
    with pytest.raises(E, match="shift"):
        k1(inp, p, out, 8, 8, 8, 32, 0)
    with pytest.raises(E, match="shift"):
        k1(inp, p, out, 8, 8, 8, -9, 0)
    with pytest.raises(E, match="rounding"):
        k1(inp, p, out, 8, 8, 8, 0, 2)
    with pytest.raises(E, match="contiguous"):
        k1(np.zeros(128, np.int8)[::2], p, out, 8, 8, 8, 0, 0)
    ro = out.copy()
    ro.flags.writeable = False
    with pytest.raises(E, match="read-only"):
        k1(inp, p, ro, 8, 8, 8, 0, 0)
    with pytest.raises(E, match="numpy"):
        k1(list(inp), p, out, 8, 8, 8, 0, 0)
    with pytest.raises(E, match="None"):
        k1(None, p, out, 8, 8, 8, 0, 0)
    k3 = t["conv2dk3_ui8"]
    row = np.zeros(64, np.uint8)
    p3 = np.zeros(16 * 8 * 9 + 64, np.int8)
    with pytest.raises(E, match="oc_offset"):
        k3(row, row, row, p3, row, 8, 8, 8, 16, 1, 0, 0, 16)
    with pytest.raises(E, match="border"):
        k3(row, row, row, p3, row, 8, 8, 8, 16, 3, 0, 0, 0)
    with pytest.raises(E, match="IC"):
        t["conv2dk1_skip_ui8"](row, row, p3, row, row, 8, 8, 8, 0, 0, 0, 0)
    with pytest.raises(E, match="pad"):
        t["conv2dk5_i8_ui8"](*[row] * 5, p3, row, 8, 8, 8, 3, 31, 0, 0)
    with pytest.raises(E, match="even"):
        t["maxpool2x2_ui8"](row, row, row, 7, 8)


def test_typed_wrapper_errors():
    E = host.KernelArgError
    p = layouts.pack_conv_params(np.zeros((8, 8, 1, 1), np.int8), None)
    with pytest.raises(E, match="dtype"):
        host.conv2dk1(np.zeros((1, 4, 8), np.int16), p, 8, 0)
    with pytest.raises(E, match="shape"):
        host.conv2dk1(np.zeros((4, 8), np.int8), p, 8, 0)
    with pytest.raises(E, match="out_dtype"):
        host.conv2dk1(np.zeros((1, 4, 8), np.int8), p, 8, 0, out_dtype=np.int16)
    with pytest.raises(E, match="params"):
        host.conv2dk1(np.zeros((1, 4, 8), np.int8), p.astype(np.int16), 8, 0)
    with pytest.raises(quant.QuantError):
        host.conv2dk1(np.zeros((1, 4, 8), np.int8), p, 8, 0, rounding="nearest")
    with pytest.raises(E, match="dtype"):
        host.conv2dk3([np.zeros((1, 4, 8), np.int8)] * 3, p, 8, 8, 0)
    with pytest.raises(E, match="padding"):
        host.conv2dk3([None, np.zeros((1, 4, 8), np.uint8), None], p, 8, 8, 0)


def test_concurrent_calls_from_threads():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(64, 4, 32)).astype(np.uint8)
    wt = rng.integers(-128, 128, size=(32, 64, 3, 3)).astype(np.int8)
    want = golden.conv_requant(x, wt, None, 12, "half_even", np.uint8, padding=1)
    errors = []

    def work():
        for _ in range(3):
            if not np.array_equal(images.conv3x3_image(x, wt, None, 12, oc_split=2), want):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_build_is_fresh_and_compile_error_raises(monkeypatch):
    assert build.is_fresh()
    monkeypatch.setenv("CXX", "false")   # a "compiler" that always fails
    with pytest.raises(build.KernelBuildError, match="failed"):
        build.build()
    monkeypatch.delenv("CXX")
    assert build.is_fresh()


def _random_call(rng, name: str):
    """A valid random call of kernel ``name``: (args, indices of output arguments)."""
    sig = host.SIGNATURES[name]
    W = int(rng.choice([1, 5, 8, 13, 32]))
    sc = {"W": W, "IC": int(rng.choice([8, 16, 24, 64])), "OC": int(rng.choice([8, 16, 24, 48])),
          "OC_proj": int(rng.choice([8, 32])), "IC_skip": int(rng.choice([8, 24])),
          "pad": int(rng.integers(0, 3)), "row_mask": int(rng.integers(0, 32)),
          "border": int(rng.integers(0, 3)), "rounding": int(rng.integers(0, 2)), "C": 16,
          "IN": int(rng.choice([8, 88, 400])), "OUT": int(rng.choice([8, 16, 120]))}
    if name.startswith("conv2dk1_skip"):
        sc["IC"] = int(rng.choice([16, 32, 64]))
    if name.startswith("conv2dk5"):
        sc["W"] = W = max(W, 5)
    if name.startswith("maxpool"):
        sc["W"] = W = 2 * W
    sc["OC_total"] = sc["OC"] + 8 * int(rng.integers(0, 3))
    sc["oc_offset"] = 8 * int(rng.integers(0, (sc["OC_total"] - sc["OC"]) // 8 + 1))
    for k in sig:
        if "shift" in k and "*" not in k:
            sc[k] = int(rng.choice([quant.SHIFT_MIN, -1, 0, 3, 9, 14, quant.SHIFT_MAX]))
    scalars = [sc[a] for a in sig if "*" not in a]
    sizes = host._SIZES[name](name, *scalars)
    args, outs, j = [], [], 0
    for i, a in enumerate(sig):
        if "*" in a:
            n = sizes[j]
            j += 1
            if n is None:
                args.append(None)
            elif a.endswith("*o"):
                args.append(np.zeros(n, np.uint8))
                outs.append(i)
            else:
                args.append(rng.integers(0, 256, n, dtype=np.uint8))
        else:
            args.append(sc[a])
    return args, outs


def test_native_and_portable_engines_agree():
    """The two host conv engines (AVX-512 VNNI where compiled, generic vectors) give the
    same bytes on random calls of every kernel; the native one is checked against the
    golden model by the tests above. Both get the very same input arrays (same
    addresses: the weight caches are keyed by address, and must not be shared between
    the two libraries)."""
    native, portable = host.host_kernel_table(), host.host_kernel_table("portable")
    assert host.engine_name("portable") == "portable"
    rng = np.random.default_rng(11)
    for name in sorted(host.SIGNATURES):
        for _ in range(25):
            args, outs = _random_call(rng, name)
            native[name](*args)
            got = {i: args[i].copy() for i in outs}
            for i in outs:
                args[i][:] = 0
            portable[name](*args)
            for i in outs:
                assert np.array_equal(args[i], got[i]), (name, args[5:])


def test_weight_cache_sees_changed_blob_at_same_address():
    """Packed weights are cached by blob address; rewriting the blob in place repacks."""
    t = host.host_kernel_table()
    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, size=(32, 1, 16)).astype(np.uint8)
    inp = layouts.to_yc8x(x).reshape(-1)
    p = np.empty(layouts.conv_params_nbytes(32, 32, 1, 1), np.int8)
    out = np.zeros(16 * 32, np.uint8)
    for seed in range(3):
        wt = np.random.default_rng(seed).integers(-128, 128, size=(32, 32, 1, 1)).astype(np.int8)
        b = np.arange(32, dtype=np.int32) * (seed - 1)
        p[:] = layouts.pack_conv_params(wt, b)
        t["conv2dk1_ui8_ui8"](inp, p, out, 16, 32, 32, 7, 1)
        want = golden.conv_requant(x, wt, b, 7, "half_up", np.uint8)
        assert_same(layouts.from_yc8x(out.reshape(1, 4, 16, 8), 32), want)
