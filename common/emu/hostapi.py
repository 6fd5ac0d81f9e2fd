"""Host-side helpers that design files' ``__main__`` blocks import: ``aie.utils.hostruntime``
(argparse groups, ``run_design_cli``), ``aie.utils.verify``, ``aie.utils.trace`` (accepted,
no hardware trace), and ``aie.extras`` as far as designs use it for scalar values
(``types``, ``arith``). Shapes follow mlir-aie ``python/utils``; the code is the emulator's."""
from __future__ import annotations

import argparse
import sys
import types

import numpy as np

from .errors import DesignError
from .util import wrap_scalar

_CURRENT_DEVICE = [None]


def set_current_device(dev) -> None:
    """Select the device designs get from ``get_current_device`` (None clears it)."""
    _CURRENT_DEVICE[0] = dev() if isinstance(dev, type) else dev


def get_current_device(*args, **kwargs):
    """The selected device; ``NPU1()`` when none was selected (the emulated NPU)."""
    from .device import NPU1
    return _CURRENT_DEVICE[0] if _CURRENT_DEVICE[0] is not None else NPU1()


# ---- aie.utils.hostruntime.argparse ------------------------------------------------------
def add_compile_args(parser: argparse.ArgumentParser, *, with_dev: bool = True,
                     dev_choices=("npu", "npu2"), default_dev: str | None = None,
                     short_dev: str | None = "-d", with_elf: bool = False,
                     with_full_elf: bool = False, with_pdi: bool = False,
                     with_emit_mlir: bool = False) -> None:
    """``-d/--dev`` and the compile-only output paths."""
    if with_dev:
        names = ("--dev",) if short_dev is None else (short_dev, "--dev")
        parser.add_argument(*names, type=str, choices=list(dev_choices), default=default_dev)
    if with_emit_mlir:
        parser.add_argument("--emit-mlir", action="store_true")
    parser.add_argument("--xclbin-path", type=str, default=None)
    parser.add_argument("--insts-path", type=str, default=None)
    for flag, on in (("--elf-path", with_elf), ("--full-elf-path", with_full_elf),
                     ("--pdi-path", with_pdi)):
        if on:
            parser.add_argument(flag, type=str, default=None)


def add_benchmark_args(parser: argparse.ArgumentParser, *, default_warmup: int = 2,
                       default_iters: int = 5) -> None:
    parser.add_argument("-w", "--warmup", type=int, default=default_warmup)
    parser.add_argument("-i", "--iters", type=int, default=default_iters)


def add_trace_arg(parser: argparse.ArgumentParser, *, with_short: bool = True,
                  default: int = 0) -> None:
    names = ("-t", "--trace_size") if with_short else ("--trace_size",)
    parser.add_argument(*names, type=int, default=default)


def add_runtime_args(parser: argparse.ArgumentParser, *, with_io_sizes: bool = False,
                     with_benchmark: bool = False) -> None:
    """The flags of test harnesses that load a compiled xclbin."""
    parser.add_argument("--xclbin", type=str, required=True)
    parser.add_argument("--instr", type=str, default="instr.txt")
    parser.add_argument("-k", "--kernel", type=str, default="MLIR_AIE")
    parser.add_argument("-v", "--verbosity", type=int, default=0)
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True)
    add_trace_arg(parser)
    parser.add_argument("--trace-file", type=str, default="trace.txt")
    parser.add_argument("--ddr-id", type=int, default=4)
    parser.add_argument("--enable-ctrl-pkts", action="store_true")
    if with_io_sizes:
        for flag in ("--in1-size", "--in2-size", "--out-size"):
            parser.add_argument(flag, type=int, default=0)
    if with_benchmark:
        add_benchmark_args(parser)


def device_from_args(args, *, dev_attr: str = "dev", n_cols="auto"):
    """The device named by ``args.<dev_attr>`` (one column unless ``n_cols`` says else)."""
    from .device import from_name
    name = getattr(args, dev_attr)
    if name is None:
        return None
    if n_cols == "auto":
        n_cols = getattr(args, "n_cols", None) or 1
    elif isinstance(n_cols, str):
        raise DesignError(f"n_cols must be an int, None or 'auto', got {n_cols!r}")
    return from_name(name, n_cols=n_cols)


# ---- aie.utils.hostruntime.cli -----------------------------------------------------------
def run_design_cli(design, opts, *, compile_kwargs, run_and_verify=None, device=None,
                   emit_mlir=None, validate=None) -> None:
    """Emulated dispatcher: selects the device (``npu`` when none is named), then runs
    ``run_and_verify(opts)``; ``--emit-mlir`` and compile-only modes resolve the design
    (the emulator's stand-in for compiling) without running it."""
    from .device import Device, from_name
    if getattr(opts, "xclbin_path", None) is not None and not getattr(opts, "insts_path", None):
        sys.exit("--xclbin-path requires --insts-path (must be set together)")
    if hasattr(opts, "dev") and opts.dev is None:
        opts.dev = "npu"
    if isinstance(device, Device):
        dev = device
    elif callable(device):
        dev = device(opts)
    elif hasattr(opts, "dev"):
        dev = from_name(opts.dev)
    else:
        raise DesignError("run_design_cli: no device given and opts has no 'dev'")
    if dev is None:
        raise DesignError("run_design_cli: the device selector returned None")
    set_current_device(dev)
    if validate is not None:
        validate(opts)
    kw = compile_kwargs(opts) if callable(compile_kwargs) else dict(compile_kwargs)
    if getattr(opts, "emit_mlir", False):
        if emit_mlir is not None:
            emit_mlir(opts)
        else:
            print(design.specialize(**kw))
        return
    if getattr(opts, "xclbin_path", None) is not None or \
            getattr(opts, "full_elf_path", None) is not None:
        design.specialize(**kw)
        return
    if run_and_verify is None:          # verified by a C++ harness upstream: build it here
        design.specialize(**kw)         # so that the emulator can run it on random inputs
        return
    run_and_verify(opts)


def bfloat16_safe_allclose(dtype, arr1, arr2) -> bool:
    return bool(np.allclose(np.asarray(arr1, np.float32), np.asarray(arr2, np.float32)))


# ---- aie.utils.verify ---------------------------------------------------------------------
DEFAULT_RTOL = 0.128      # upstream default relative tolerance of the bf16 comparator


def nearly_equal(a, b, *, rtol: float = DEFAULT_RTOL, atol: float | None = None) -> np.ndarray:
    """Elementwise: equal, or within ``max(atol, rtol * (|a| + |b|))`` (float32)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    atol = float(np.finfo(np.float32).tiny) if atol is None else atol
    with np.errstate(over="ignore", invalid="ignore"):
        lim = np.maximum(atol, rtol * np.minimum(np.abs(a) + np.abs(b),
                                                 np.finfo(np.float32).max))
        return (a == b) | (np.abs(a - b) < lim)


def count_mismatches(actual, ref, *, rtol: float = DEFAULT_RTOL, atol: float | None = None,
                     stop_at_nonfinite: bool = True) -> tuple[int, int]:
    """(mismatches, elements compared); comparison stops at the first non-finite value."""
    a = np.asarray(actual, np.float32).ravel()
    r = np.asarray(ref, np.float32).ravel()
    if a.shape != r.shape:
        raise ValueError(f"actual and ref differ in shape: {a.shape} vs {r.shape}")
    stop = a.size
    if stop_at_nonfinite:
        bad = ~(np.isfinite(a) & np.isfinite(r))
        if bad.any():
            stop = int(np.argmax(bad))
    ok = nearly_equal(a[:stop], r[:stop], rtol=rtol, atol=atol)
    return int(ok.size - np.count_nonzero(ok)), stop


def assert_pass(actual, expected, *, rtol: float | None = None, atol: float | None = None,
                fail_msg: str | None = None, print_pass: bool = True) -> None:
    """Exact comparison (or the tolerance comparator when a tolerance is given): prints
    ``PASS!``, or exits with ``FAIL! ...``."""
    if rtol is None and atol is None:
        ok = bool(np.array_equal(actual, expected))
    else:
        ok = count_mismatches(actual, expected, rtol=DEFAULT_RTOL if rtol is None else rtol,
                              atol=atol)[0] == 0
    if not ok:
        sys.exit("FAIL!" + ("" if fail_msg is None else f" {fail_msg}"))
    if print_pass:
        print("PASS!")


def assert_close_with_benchmark(actual, expected, *, bench=None, ops=None, gflops_fmt=".2f",
                                float_rtol: float = 0.05, float_atol: float = 0.5,
                                fail_msg: str | None = None, mismatch_indices: bool = False):
    """Integer outputs exactly, float outputs within tolerance; then ``PASS!`` (no NPU
    timing in the emulator)."""
    if np.issubdtype(np.asarray(expected).dtype, np.integer):
        if mismatch_indices and not np.array_equal(actual, expected):
            where = np.argwhere(np.asarray(actual) != np.asarray(expected))[:5].tolist()
            sys.exit(f"FAIL! {fail_msg or 'output mismatch'} (first mismatches: {where})")
        assert_pass(actual, expected, fail_msg=fail_msg, print_pass=False)
    else:
        assert_pass(actual, expected, rtol=float_rtol, atol=float_atol, fail_msg=fail_msg,
                    print_pass=False)
    print("PASS!")


# ---- aie.utils.benchmark -----------------------------------------------------------------
class BenchStats:
    """avg/min/max of one timing series, microseconds."""

    def __init__(self, samples_us: list):
        self.avg_us = sum(samples_us) / len(samples_us)
        self.min_us, self.max_us = min(samples_us), max(samples_us)


class BenchResult:
    """End-to-end (emulated) timings; ``npu``: modelled NPU times, None if not known."""

    def __init__(self, e2e: BenchStats):
        self.e2e, self.npu = e2e, None


_NPU_TIME = [False]


def npu_time_wanted() -> bool:
    """True inside ``run_iters``: jit calls then trace their run and return its modelled
    NPU time."""
    return _NPU_TIME[0]


def run_iters(fn, *args, warmup: int = 0, iters: int = 1, **kwargs) -> BenchResult:
    """Call ``fn(*args, **kwargs)`` ``warmup + iters`` times; time the last ``iters``
    (emulated wall time; ``npu`` holds the modelled NPU times of jit designs)."""
    import time
    if iters < 1 or warmup < 0:
        raise ValueError(f"run_iters: need iters >= 1 and warmup >= 0 ({iters}, {warmup})")
    samples, npu = [], []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        _NPU_TIME[0] = True
        try:
            ret = fn(*args, **kwargs)
        finally:
            _NPU_TIME[0] = False
        if i >= warmup:
            samples.append((time.perf_counter() - t0) * 1e6)
            t = getattr(ret[1] if isinstance(ret, tuple) and len(ret) > 1 else ret,
                        "npu_time", None)
            if t is not None:
                npu.append(t / 1e3)
    r = BenchResult(BenchStats(samples))
    r.npu = BenchStats(npu) if npu else None
    return r


def print_benchmark(result: BenchResult) -> None:
    if result.npu is not None:
        n = result.npu
        print(f"Modelled NPU time (avg/min/max us): {n.avg_us:.1f} / {n.min_us:.1f} / "
              f"{n.max_us:.1f}")
    s = result.e2e
    print(f"Emulated end-to-end (avg/min/max us): {s.avg_us:.1f} / {s.min_us:.1f} / "
          f"{s.max_us:.1f}")


# ---- aie.utils.trace -------------------------------------------------------------------------
class TraceConfig:
    """Hardware trace configuration: accepted, nothing is traced on the NPU (the emulator's
    own timeline is ``python -m common.emu DESIGN.py --trace out.json``)."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.trace_size = kwargs.get("trace_size", args[0] if args else 0)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: None


class _Events:
    """An event enum stand-in: any member name is accepted."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, item: str):
        if item.startswith("__"):
            raise AttributeError(item)
        return f"{self._name}.{item}"


def _noop(*args, **kwargs) -> None:
    return None


# ---- aie.extras (types, arith: scalar runtime values) ---------------------------------------
_EXTRA_TYPES = {"i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32,
                "i64": np.int64, "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32,
                "f16": np.float16, "f32": np.float32, "f64": np.float64, "index": np.int64}


def _extras_types() -> dict:
    d = {k: (lambda t=t: t) for k, t in _EXTRA_TYPES.items()}
    d["bf16"] = lambda: __import__("ml_dtypes").bfloat16
    return d


def _cast(value, to):
    dt = np.dtype(to)
    v = value.item() if isinstance(value, np.generic) else value
    return wrap_scalar(int(v), dt) if dt.kind in "iub" else dt.type(v)


def _arith_ops() -> dict:
    def constant(value, type=None, index=None, **kw):
        return _cast(value, np.int64 if index else (type or np.int32))

    def conv(out_type, value, **kw):
        return _cast(value, out_type)

    def index_cast(value, to=None, **kw):
        return _cast(value, to or np.int64)

    def binop(f):
        return lambda a, b, **kw: f(a, b)
    d = dict(constant=constant, trunci=conv, extsi=conv, extui=conv, sitofp=conv,
             fptosi=conv, bitcast=conv, index_cast=index_cast,
             addi=binop(lambda a, b: a + b), subi=binop(lambda a, b: a - b),
             muli=binop(lambda a, b: a * b), divsi=binop(lambda a, b: a // b),
             remsi=binop(lambda a, b: a % b), andi=binop(lambda a, b: a & b),
             ori=binop(lambda a, b: a | b), xori=binop(lambda a, b: a ^ b),
             shli=binop(lambda a, b: a << b), shrsi=binop(lambda a, b: a >> b),
             maxsi=binop(max), minsi=binop(min), addf=binop(lambda a, b: a + b),
             mulf=binop(lambda a, b: a * b))
    return d


def _emu_dir() -> str:
    """Stand-in for mlir-aie's install paths (kernel sources are never compiled here)."""
    import os
    return os.path.dirname(os.path.abspath(__file__))


def _low_level(module: str) -> dict:
    """Attributes of a low-level MLIR module: only ``T`` (scalar types, as v1.x designs
    import it); anything else, a star import included, is one clear error."""
    def __getattr__(name: str):
        if name.startswith("__") and name != "__all__":
            raise AttributeError(name)
        raise DesignError(f"{module}{'' if name == '__all__' else '.' + name} is the low-level "
                          f"MLIR API (hand-written devices, tiles, flows, DMAs); the emulator "
                          f"runs IRON designs (aie.iron) only")
    return dict(T=types.SimpleNamespace(**_extras_types()), __getattr__=__getattr__)


def np_dtype_to_mlir_type(dt):
    """The emulator's 'MLIR type' of a numpy dtype is the numpy scalar type itself."""
    return np.dtype(dt).type


def module_specs(jit_names: dict) -> dict[str, dict]:
    """Attributes of each emulated ``aie.utils`` / ``aie.extras`` module, by module name."""
    dev = dict(set_current_device=set_current_device, get_current_device=get_current_device)
    argp = dict(add_compile_args=add_compile_args, add_benchmark_args=add_benchmark_args,
                add_trace_arg=add_trace_arg, add_runtime_args=add_runtime_args,
                device_from_args=device_from_args, DEFAULT_DEV_CHOICES=("npu", "npu2"))
    verify = dict(nearly_equal=nearly_equal, count_mismatches=count_mismatches,
                  assert_pass=assert_pass, assert_close_with_benchmark=assert_close_with_benchmark)
    events = {k: _Events(k) for k in ("CoreEvent", "MemEvent", "MemTileEvent", "ShimTileEvent",
                                      "PortEvent", "GenericEvent")}
    trace = dict(TraceConfig=TraceConfig, **events)
    hostrt = dict(**dev, bfloat16_safe_allclose=bfloat16_safe_allclose,
                  Tensor=jit_names["Tensor"], NpuTensor=jit_names["Tensor"],
                  run_design_cli=run_design_cli, **argp)
    return {
        "aie.utils": dict(**jit_names, **dev, TraceConfig=TraceConfig),
        "aie.utils.compile": dict(resolve_target_arch=lambda d=None: (
            d or get_current_device()).arch),
        "aie.utils.hostruntime": hostrt,
        "aie.utils.hostruntime.argparse": argp,
        "aie.utils.hostruntime.cli": dict(run_design_cli=run_design_cli),
        "aie.utils.verify": verify,
        "aie.utils.config": dict(cxx_header_path=_emu_dir, root_path=_emu_dir),
        "aie.utils.benchmark": dict(run_iters=run_iters, print_benchmark=print_benchmark),
        "aie.utils.trace": trace,
        "aie.utils.trace.config": dict(TraceConfig=TraceConfig),
        "aie.utils.trace.events": events,
        "aie.utils.trace.utils": dict(print_cycles_summary=_noop, parse_trace=_noop),
        "aie.extras": {},
        "aie.extras.types": _extras_types(),
        "aie.extras.dialects": {},
        "aie.extras.dialects.arith": _arith_ops(),
        "aie.extras.dialects.ext": {},
        "aie.extras.dialects.ext.arith": _arith_ops(),
        "aie.dialects": {},
        "aie.dialects.aie": _low_level("aie.dialects.aie"),
    }


__all__ = ["module_specs", "set_current_device", "get_current_device", "run_iters",
           "npu_time_wanted", "np_dtype_to_mlir_type"]
