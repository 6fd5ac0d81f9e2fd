"""The host kernel library as a shared object: both build variants loaded in one process
keep their own state, only the C API is exported, and the Python bindings never swallow
an exception (no Python callbacks run where a Ctrl-C could be lost)."""
import subprocess

import numpy as np
import pytest

from common import golden, layouts
from common.kernels import build, host

VARIANTS = sorted(build.VARIANTS)


def _conv1x1_call(rng):
    """One conv2dk1_ui8_ui8 row call: (args, golden output (OC/8, W, 8))."""
    w_px, ic, oc, shift = 13, 32, 48, 9
    x = rng.integers(0, 256, size=(ic, 1, w_px)).astype(np.uint8)
    wt = rng.integers(-128, 128, size=(oc, ic, 1, 1)).astype(np.int8)
    b = rng.integers(-5000, 5000, size=oc).astype(np.int32)
    want = golden.conv_requant(x, wt, b, shift, "half_up", np.uint8)
    args = [layouts.to_yc8x(x).reshape(-1), layouts.pack_conv_params(wt, b),
            np.zeros(w_px * oc, np.uint8), w_px, ic, oc, shift, 1]
    return args, layouts.to_yc8x(want).reshape(-1)


def _conv3x3_call(rng):
    """One conv2dk3_ui8 middle-row call (border 1) and its golden output row."""
    w_px, ic, oc, shift = 10, 16, 32, 11
    x = rng.integers(0, 256, size=(ic, 3, w_px)).astype(np.uint8)
    wt = rng.integers(-128, 128, size=(oc, ic, 3, 3)).astype(np.int8)
    b = rng.integers(-5000, 5000, size=oc).astype(np.int32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))                              # zero columns
    want = golden.conv_requant(xp, wt, b, shift, "half_up", np.uint8)     # (oc, 1, w)
    rows = layouts.to_yc8x(x)                                             # (3, ic/8, w, 8)
    args = [rows[0].reshape(-1).copy(), rows[1].reshape(-1).copy(), rows[2].reshape(-1).copy(),
            layouts.pack_conv_params(wt, b), np.zeros(w_px * oc, np.uint8), w_px, ic, oc, oc,
            1, shift, 1, 0]
    return args, layouts.to_yc8x(want).reshape(-1)


@pytest.mark.parametrize("name,make,out", [("conv2dk1_ui8_ui8", _conv1x1_call, 2),
                                           ("conv2dk3_ui8", _conv3x3_call, 4)])
def test_variants_in_one_process_keep_their_own_weight_caches(name, make, out):
    """The same argument arrays (same addresses, no copies) through each variant in turn:
    each call matches the golden model, so neither variant sees the other's packed
    weights or scratch memory."""
    tables = {v: host.host_kernel_table(v) for v in VARIANTS}
    assert {host.engine_name(v) for v in VARIANTS} >= {"portable"}
    args, want = make(np.random.default_rng(3))
    calls = 0
    for v in VARIANTS + VARIANTS[::-1] + VARIANTS:
        args[out][:] = 0
        tables[v][name](*args)
        bad = np.count_nonzero(args[out] != want)
        assert bad == 0, f"{name} on the {v} library: {bad} of {want.size} elements wrong"
        calls += 1
    assert calls == 3 * len(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_only_the_c_api_is_exported(variant):
    """No STB_GNU_UNIQUE ('u') symbol, no C++ engine symbol: the dynamic symbol table
    holds exactly the kernels and npu_host_engine."""
    lib = build.build(variant=variant)
    res = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True,
                         text=True, check=True)
    syms = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = parts[1]
    assert syms, f"nm listed no symbols of {lib}"
    unique = [s for s, kind in syms.items() if kind == "u"]
    assert not unique, f"{lib} exports process-wide unique symbols: {unique}"
    api = set(host.SIGNATURES) | {"npu_host_engine"}
    assert set(syms) == api, f"exported beyond/short of the C API: {sorted(set(syms) ^ api)}"


def test_address_cache_runs_no_python_callback():
    """The array-address cache of the bindings holds plain weak references: a Python
    callback run at an arbitrary point (array deallocation) would swallow a Ctrl-C."""
    a = np.zeros(8, np.uint8)
    addr = host._address(a)
    assert addr == a.ctypes.data
    ref = host._addr_cache[id(a)][0]
    assert ref.__callback__ is None
    del a
    b = [np.zeros(8, np.uint8) for _ in range(3 * host._ADDR_CACHE_MAX)]
    for x in b:
        host._address(x)
    assert len(host._addr_cache) <= 2 * host._ADDR_CACHE_MAX + 1
    assert all(host._address(x) == x.ctypes.data for x in b)
