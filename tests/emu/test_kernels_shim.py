import subprocess
import sys
import threading

import numpy as np
import pytest

from common.emu import (emulated_aie, load_design, lookup_kernel, register_kernel,
                        unregister_kernel)
from common.emu.errors import KernelError
from conftest import design_path

T16 = np.ndarray[(16,), np.dtype[np.int32]]
T8 = np.ndarray[(16,), np.dtype[np.int8]]


def test_lookup_prefers_exact_arg_types():
    register_kernel("sym_x", lambda *a: "generic")
    register_kernel("sym_x", lambda *a: "int8", arg_types=[T8, np.int32])
    try:
        assert lookup_kernel("sym_x", [T8, np.int32]).fn() == "int8"
        assert lookup_kernel("sym_x", [T16, np.int32]).fn() == "generic"
    finally:
        unregister_kernel("sym_x")
        unregister_kernel("sym_x", [T8, np.int32])
    with pytest.raises(KernelError, match="sym_x.*register_kernel"):
        lookup_kernel("sym_x")


def test_scalar_wrap_and_macs_summary(kernels):
    seen = []
    register_kernel("scale_i32", lambda a, o, f, n: (seen.append(type(f)), np.multiply(a, f, out=o)),
                    macs=lambda args: 1000)
    d = load_design(design_path("rtp_barrier.py"))
    d.run(np.arange(64, dtype=np.int32), None, 2)
    assert seen[0] is np.int32
    s = d.summary()
    assert s.tile_macs[(0, 2)] == 4000
    assert s.npu_time_s == pytest.approx(4000 / 512 / 1e9)   # NPU2: 512 MACs/cycle
    text = str(s)
    for word in ("tiles used", "fifos", "memory per tile", "kernel calls per worker",
                 "estimated NPU time lower bound"):
        assert word in text


def test_shim_only_installed_during_load():
    assert "aie" not in sys.modules
    load_design(design_path("split_join.py"))
    assert "aie" not in sys.modules and "aie.iron" not in sys.modules
    sentinel = object()
    sys.modules["aie"] = sentinel
    try:
        with emulated_aie():
            import aie.iron
            assert hasattr(aie.iron, "ObjectFifo")
        assert sys.modules["aie"] is sentinel
    finally:
        del sys.modules["aie"]
    with pytest.raises(ImportError):
        import aie  # noqa: F401


def test_no_thread_survives_success_or_failure():
    base = set(threading.enumerate())
    d = load_design(design_path("broken.py"), ["deadlock"])
    with pytest.raises(Exception):
        d.run(np.arange(48, dtype=np.int32))
    d = load_design(design_path("passthrough_fwd.py"), ["1024"])
    d.run(np.arange(1024, dtype=np.int32))
    assert set(threading.enumerate()) == base


def test_cli_prints_summary():
    r = subprocess.run([sys.executable, "-m", "common.emu", design_path("passthrough_fwd.py"),
                        "2048"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "tiles used" in r.stdout and "memtile" in r.stdout and "fifos (3)" in r.stdout


def test_cli_reports_design_error():
    r = subprocess.run([sys.executable, "-m", "common.emu", design_path("broken.py"), "memory"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "ResourceError" in r.stderr


def test_ctypes_kernel_and_v1_stream_dims(tmp_path):
    import shutil
    from common.emu import register_ctypes_kernel
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "add1.c"
    src.write_text("#include <stdint.h>\nvoid emu_test_add1(int32_t *a, int32_t n)"
                   "{ for (int i = 0; i < n; i++) a[i] += 1; }\n")
    lib = tmp_path / "libadd1.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", str(src), "-o", str(lib)], check=True)
    register_ctypes_kernel("emu_test_add1", str(lib))
    try:
        d = load_design(design_path("misc_v1.py"))
        a = np.arange(16, dtype=np.int32)
        out, = d.run(a)
        assert np.array_equal(out, (a.reshape(4, 4).T + 1).reshape(-1))
        assert d.summary().workers[0].kernel_calls == {"emu_test_add1": 1}
    finally:
        unregister_kernel("emu_test_add1")
