"""The API surface current upstream designs import: aie.iron.kernels factories,
aie.iron.algorithms, aie.utils.hostruntime / verify / benchmark / trace, StreamDims,
aie.extras scalars, @iron.jit(...) with the CLI dispatcher."""
import numpy as np
import pytest

from common.emu import DesignError, ResourceError, load_design, register_kernel
from common.emu.shim import emulated_aie
from conftest import design_path


@pytest.fixture
def lib_kernels():
    register_kernel("vector_scalar_mul_vector", lambda a, c, f, n: np.multiply(a, f[0], out=c))
    register_kernel("passThroughLine", lambda a, c, n: np.copyto(c, a))
    yield
    from common.emu import clear_kernels
    clear_kernels()


def test_kernel_factories_declare_upstream_symbols_and_types():
    with emulated_aie():
        from aie.iron import kernels
        k = kernels.filter2d(line_width=64)
        assert k.symbol == "filter2dLine" and len(k.arg_types()) == 6
        assert kernels.rgba2gray(line_width=8).arg_shape(0) == (32,)
        assert kernels.threshold(line_width=8, dtype=np.int16).arg_types()[3] is np.int16
        assert kernels.add_weighted(line_width=8).arg_types()[-1] is np.int8
        assert kernels.conv2dk1(8, 16, 32, act_dtype=np.uint8).symbol == "conv2dk1_ui8"
        assert kernels.reduce_max(dtype=np.int32, vectorized=False).symbol == "reduce_max_scalar"
        mm = kernels.mm(16, 8, 4, np.int16, np.int32)
        assert mm.symbol == "matmul_i16_i32" and mm.zero.symbol == "zero_i32"
        with pytest.raises(DesignError, match="tile_size must be 1024"):
            kernels.relu(tile_size=512)
        with pytest.raises(DesignError, match="not emulated"):
            kernels.no_such_factory


def test_kernel_factory_runs_registered_kernel_by_symbol_and_types(lib_kernels):
    register_kernel("vector_scalar_mul_vector", lambda a, c, f, n: np.multiply(a, 5, out=c),
                    arg_types=[np.ndarray[(64,), np.dtype[np.int32]]] * 2 +
                    [np.ndarray[(1,), np.dtype[np.int32]], np.int32])
    with pytest.raises(DesignError, match="FAIL! scale mismatch"):
        load_design(design_path("kernels_cli.py"), ["-n", "128"])   # the typed one wins


def test_jit_design_with_cli_helpers_runs_and_reruns(lib_kernels):
    d = load_design(design_path("kernels_cli.py"), ["-n", "128", "-t", "8192"])
    assert d.printed.strip().endswith("PASS!")
    a = np.arange(128, dtype=np.int32)
    out, = d.run(a, None, np.array([7], np.int32))
    assert np.array_equal(out, 7 * a)
    assert d.program.device.name == "NPU1Col1"              # device_from_args: one column


def test_cli_compile_only_mode_resolves_without_running(lib_kernels):
    d = load_design(design_path("kernels_cli.py"), ["-d", "npu2", "--xclbin-path", "x.xclbin",
                                                    "--insts-path", "i.bin", "-n", "64"])
    assert d.printed == "" and d.program.device.name == "NPU2Col1"
    with pytest.raises(DesignError, match="requires --insts-path"):
        load_design(design_path("kernels_cli.py"), ["--xclbin-path", "x.xclbin"])


def test_algorithms_transform_and_parallel(lib_kernels):
    d = load_design(design_path("algorithms_demo.py"), ["256"])
    assert d.printed.count("PASS!") == 2
    a = np.arange(256, dtype=np.int32)
    out, = d.run(a)                                         # the last program: copy_cols
    assert np.array_equal(out, a)
    assert sorted(w.tile[0] for w in d.last_stats.workers) == [0, 1, 2, 3]   # per column


def test_verify_and_benchmark_helpers(capsys):
    with emulated_aie():
        from aie.utils.benchmark import run_iters
        from aie.utils.verify import assert_pass, count_mismatches
        assert_pass(np.arange(4), np.arange(4))
        assert capsys.readouterr().out == "PASS!\n"
        with pytest.raises(SystemExit, match="FAIL! off by one"):
            assert_pass(np.arange(4), np.arange(4) + 1, fail_msg="off by one")
        assert_pass(np.float32([1.0, 2.0]), np.float32([1.01, 2.0]), rtol=0.05)
        assert count_mismatches([1.0, 5.0, np.inf, 1.0], [1.0, 1.0, 1.0, 9.0]) == (1, 2)
        calls = []
        r = run_iters(lambda: calls.append(1), warmup=1, iters=3)
        assert len(calls) == 4 and r.npu is None and r.e2e.min_us <= r.e2e.max_us


def test_extras_scalars_stream_dims_and_trace_are_accepted():
    with emulated_aie():
        from aie.extras import types as T
        from aie.extras.dialects import arith
        from aie.iron import StreamDims
        from aie.utils.trace import TraceConfig
        from aie.utils.trace.events import CoreEvent
        assert arith.trunci(T.i8(), 300) == np.int8(44) and arith.trunci(T.i8(), 300).dtype == np.int8
        assert arith.index_cast(np.int32(7), to=T.index()) == 7
        dims: StreamDims | None = [(4, 1)]
        assert dims == [(4, 1)]
        TraceConfig(trace_size=4096, coretile_events=[CoreEvent.INSTR_EVENT_0]).write_trace()


def test_line_pipeline_fits_as_the_compiler_counts():
    # The shape of vision/edge_detect at 1920 pixels: 43264 B on the last tile by the
    # compiler's rules (the per-declared-depth count was 89344 B, more than 64 KiB).
    d = load_design(design_path("line_pipeline.py"), ["1920", "2"])
    assert sum(b for _, b in d.program.plan.mem[(0, 5)]) == 43264
    x = np.random.default_rng(0).integers(0, 255, 1920 * 2 * 4, dtype=np.uint8)
    out, = d.run(x)
    g = np.repeat(x.reshape(-1, 4)[:, 0], 4)
    assert np.array_equal(out, g // 2 + x // 2)
    with pytest.raises(ResourceError, match=r"compute tile \(0, 5\) needs 91136 bytes.*"
                                            r"fifo 'in_L2L1' cons 2x16384 B"):
        load_design(design_path("line_pipeline.py"), ["4096", "2"])


def test_sequence_closure_counter_restarts_each_run():
    # Upstream runs a Runtime body once; designs may count in its closure (nonlocal).
    # The emulator runs the body per run and restores such values before each run.
    from common.emu.device import NPU1Col1
    from common.emu.fifo import ObjectFifo
    from common.emu.program import Program
    from common.emu.runtime import Runtime
    from common.emu.taplib import TensorAccessPattern as TAP
    from common.emu.worker import Worker
    t = np.ndarray[(16,), np.dtype[np.int32]]
    v = np.ndarray[(32,), np.dtype[np.int32]]
    of_in, of_out = ObjectFifo(t, name="in"), ObjectFifo(t, name="out")

    def core(ci, co):
        a, b = ci.acquire(1), co.acquire(1)
        b[:] = a
        ci.release(1)
        co.release(1)
    half = 0

    def seq(a, c, hi, ho):
        nonlocal half
        hi.fill(a, tap=TAP((32,), 16 * half, [16], [1]))
        ho.drain(c, tap=TAP((32,), 16 * half, [16], [1]), wait=True)
        half += 1
    rp = Program(NPU1Col1(), Runtime(seq, [v, v, of_in.prod(), of_out.cons()]),
                 workers=[Worker(core, [of_in.cons(), of_out.prod()])]).resolve_program()
    x = np.arange(32, dtype=np.int32)
    for _ in range(3):
        out, = rp.run(x)
        assert np.array_equal(out[:16], x[:16]) and not out[16:].any()


def test_run_iters_reports_modelled_npu_time_of_jit_designs():
    with emulated_aie():
        import aie.iron as iron
        from aie.iron.algorithms import transform
        from aie.utils.benchmark import run_iters

        @iron.jit
        def inc(a, b, *, n):
            return transform(lambda x: x + 1, np.ndarray[(n,), np.dtype[np.int32]],
                             tile_size=16)
        a = iron.arange(64, shape=(4, 16), dtype=np.int32)
        assert a.shape == (4, 16)
        b = iron.zeros(64, dtype=np.int32)
        assert inc(a, b, n=64) is None and np.array_equal(b, a.reshape(-1) + 1)
        r = run_iters(inc, a, b, n=64, warmup=1, iters=2)
        assert r.npu is not None and 0 < r.npu.min_us <= r.npu.max_us
        # 4 objects of 64 B in and out at 4 B/cycle, nothing else modelled: well under 1 us
        assert r.npu.max_us < 1.0


def test_library_kernels_count_their_macs():
    from common.emu.kernel_lib import conv2dk1, conv2dk3, mm
    with emulated_aie():
        assert mm(16, 8, 4).macs_per_call == 16 * 8 * 4
        assert conv2dk1(32, 64, 64).macs_per_call == 32 * 64 * 64
        assert conv2dk3(32, 16, 8).macs_per_call == 9 * 32 * 16 * 8


def test_low_level_dialects_give_types_and_one_clear_error():
    with emulated_aie():
        from aie.dialects.aie import T               # v1.x designs take scalar types here
        assert T.i16() is np.int16
        with pytest.raises(DesignError, match="low-level MLIR API"):
            exec("from aie.dialects.aie import *", {})
        with pytest.raises(DesignError, match="aie.dialects.aie.object_fifo is the low-level"):
            exec("from aie.dialects.aie import object_fifo", {})
