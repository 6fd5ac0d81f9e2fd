"""``aie.iron.kernels``: the upstream kernel-library factories as emulator kernels.

Each factory takes the upstream factory's parameters and returns an
:class:`~common.emu.kernel.ExternalFunction` with the C symbol and argument types the
upstream factory declares (facts from mlir-aie ``python/iron/kernels``). Calling it in a
core runs the host implementation found for that symbol and those types: a kernel
registered with :func:`common.emu.register_kernel` (with or without ``arg_types``) or the
project's own (``common.kernels.host``). No kernel source is compiled.
"""
from __future__ import annotations

import numpy as np

from .errors import DesignError
from .kernel import ExternalFunction, Kernel

I32 = np.int32


def _bf16():
    import ml_dtypes
    return ml_dtypes.bfloat16


def _vec(n: int, dt) -> type:
    return np.ndarray[(int(n),), np.dtype[dt]]


def _ext(symbol: str, arg_types: list, macs: int = 0) -> ExternalFunction:
    """The kernel ``symbol`` with ``arg_types``; ``macs``: multiply-accumulates of one call
    (used by the NPU time estimates when the host implementation declares none)."""
    k = ExternalFunction(symbol, f"{symbol}.o", arg_types=arg_types)
    k.macs_per_call = int(macs)
    return k


def _bits(dtype, factory: str) -> int:
    b = {np.dtype(np.uint8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32}.get(
        np.dtype(dtype))
    if b is None:
        raise DesignError(f"kernels.{factory}: dtype {np.dtype(dtype)} is not uint8, int16 "
                          f"or int32")
    return b


def _fixed(factory: str, tile_size: int, expected: int = 1024) -> None:
    if tile_size != expected:
        raise DesignError(f"kernels.{factory}: tile_size must be {expected}, got {tile_size}")


def _act(base: str, act_dtype, factory: str) -> str:
    if np.dtype(act_dtype) == np.int8:
        return f"{base}_i8"
    if np.dtype(act_dtype) == np.uint8:
        return f"{base}_ui8"
    raise DesignError(f"kernels.{factory}: act_dtype must be int8 or uint8")


# ---- eltwise ---------------------------------------------------------------------------
def passthrough(tile_size: int = 4096, dtype=np.int32) -> ExternalFunction:
    _bits(dtype, "passthrough")
    t = _vec(tile_size, dtype)
    return _ext("passThroughLine", [t, t, I32])


def scale(tile_size: int = 1024, dtype=np.int32, vectorized: bool = True,
          use_chess: bool = False) -> ExternalFunction:
    if np.dtype(dtype) not in (np.dtype(np.int16), np.dtype(np.int32)):
        raise DesignError(f"kernels.scale: dtype must be int16 or int32, got {dtype}")
    t = _vec(tile_size, dtype)
    return _ext(f"vector_scalar_mul_{'vector' if vectorized else 'scalar'}",
                [t, t, _vec(1, np.int32), I32])


def _eltwise_bf16(op: str, tile_size: int, dtype, vectorized: bool) -> ExternalFunction:
    _fixed(op, tile_size)
    if np.dtype(dtype) != np.dtype(_bf16()):
        raise DesignError(f"kernels.{op}: dtype must be bfloat16")
    t = _vec(tile_size, _bf16())
    return _ext(f"eltwise_{op}_bf16_{'vector' if vectorized else 'scalar'}", [t, t, t])


def add(tile_size: int = 1024, dtype=None, vectorized: bool = True) -> ExternalFunction:
    return _eltwise_bf16("add", tile_size, dtype or _bf16(), vectorized)


def mul(tile_size: int = 1024, dtype=None, vectorized: bool = True) -> ExternalFunction:
    return _eltwise_bf16("mul", tile_size, dtype or _bf16(), vectorized)


def relu(tile_size: int = 1024) -> ExternalFunction:
    _fixed("relu", tile_size)
    t = _vec(tile_size, _bf16())
    return _ext("bf16_relu", [t, t])


# ---- reduce ----------------------------------------------------------------------------
def _out_elems(dt) -> int:
    """Smallest element count whose bytes are a whole 32-bit word (DMA alignment)."""
    return max(1, -(-4 // np.dtype(dt).itemsize))


def _reduce(op: str, tile_size: int, dtype, vectorized: bool) -> ExternalFunction:
    if np.dtype(dtype) != np.dtype(np.int32):
        raise DesignError(f"kernels.reduce_{op}: dtype must be int32")
    return _ext(f"reduce_{op}_{'vector' if vectorized else 'scalar'}",
                [_vec(tile_size, np.int32), _vec(1, np.int32), I32])


def reduce_add(tile_size: int = 1024, dtype=np.int32, vectorized: bool = True):
    return _reduce("add", tile_size, dtype, vectorized)


def reduce_min(tile_size: int = 1024, dtype=np.int32, vectorized: bool = True):
    return _reduce("min", tile_size, dtype, vectorized)


def _max_dtype(dtype, factory: str):
    if np.dtype(dtype) == np.dtype(np.int32):
        return np.int32, ""
    if np.dtype(dtype) == np.dtype(_bf16()):
        return _bf16(), "_bfloat16"
    raise DesignError(f"kernels.{factory}: dtype must be int32 or bfloat16")


def reduce_max(tile_size: int = 1024, dtype=np.int32, vectorized: bool = True):
    dt, suffix = _max_dtype(dtype, "reduce_max")
    return _ext(f"reduce_max_{'vector' if vectorized else 'scalar'}{suffix}",
                [_vec(tile_size, dt), _vec(_out_elems(dt), dt), I32])


def compute_max(dtype=np.int32):
    dt, suffix = _max_dtype(dtype, "compute_max")
    o = _vec(_out_elems(dt), dt)
    return _ext(f"compute_max{suffix}", [o, o, o])


# ---- vision ----------------------------------------------------------------------------
def _convert(symbol: str, n_in: int, n_out: int) -> ExternalFunction:
    return _ext(symbol, [_vec(n_in, np.uint8), _vec(n_out, np.uint8), I32])


def rgba2hue(line_width: int = 1920, use_chess: bool = False):
    return _convert("rgba2hueLine", line_width * 4, line_width)


def rgba2gray(line_width: int = 1920, use_chess: bool = False):
    return _convert("rgba2grayLine", line_width * 4, line_width)


def gray2rgba(line_width: int = 1920, use_chess: bool = False):
    return _convert("gray2rgbaLine", line_width, line_width * 4)


def threshold(line_width: int = 1920, dtype=np.uint8, use_chess: bool = False):
    s = np.int32 if _bits(dtype, "threshold") == 32 else np.int16
    t = _vec(line_width, dtype)
    return _ext("thresholdLine", [t, t, I32, s, s, np.int8])


def _bitwise(op: str, line_width: int, dtype):
    _bits(dtype, f"bitwise_{op.lower()}")
    t = _vec(line_width, dtype)
    return _ext(f"bitwise{op}Line", [t, t, t, I32])


def bitwise_or(line_width: int = 1920, dtype=np.uint8, use_chess: bool = False):
    return _bitwise("OR", line_width, dtype)


def bitwise_and(line_width: int = 1920, dtype=np.uint8, use_chess: bool = False):
    return _bitwise("AND", line_width, dtype)


def filter2d(line_width: int = 1920, use_chess: bool = False):
    t = _vec(line_width, np.uint8)
    return _ext("filter2dLine", [t, t, t, t, I32, np.ndarray[(3, 3), np.dtype[np.int16]]])


def add_weighted(line_width: int = 1920, dtype=np.uint8, use_chess: bool = False):
    g = {8: np.int8, 16: np.int16, 32: np.int32}[_bits(dtype, "add_weighted")]
    t = _vec(line_width, dtype)
    return _ext("addWeightedLine", [t, t, t, I32, np.int16, np.int16, g])


# ---- activation (bf16 look-up-table kernels, 1024-element tiles) -------------------------
def _lut(factory: str, symbol: str, tile_size: int, arity: int) -> ExternalFunction:
    _fixed(factory, tile_size)
    return _ext(symbol, [_vec(tile_size, _bf16())] * arity)


def softmax(tile_size: int = 1024):
    _fixed("softmax", tile_size)
    t = _vec(tile_size, _bf16())
    return _ext("softmax_bf16", [t, t, I32])


def gelu(tile_size: int = 1024):
    return _lut("gelu", "gelu_bf16", tile_size, 2)


def silu(tile_size: int = 1024):
    return _lut("silu", "silu_bf16", tile_size, 2)


def swiglu(tile_size: int = 1024):
    return _lut("swiglu", "swiglu_bf16", tile_size, 4)


def bf16_exp(tile_size: int = 1024):
    return _lut("bf16_exp", "exp_bf16_1024", tile_size, 2)


# ---- linalg ----------------------------------------------------------------------------
def _mm_suffix(i, o, factory: str) -> str:
    names = {np.dtype(np.int8): "i8", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32",
             np.dtype(np.float32): "f32", np.dtype(_bf16()): "bf16"}
    try:
        return names[np.dtype(i)], names[np.dtype(o)]
    except KeyError:
        raise DesignError(f"kernels.{factory}: unsupported dtypes ({i}, {o})") from None


def mm(dim_m: int = 64, dim_k: int = 64, dim_n: int = 64, input_dtype=np.int16,
       output_dtype=np.int16, vectorized: bool = True, b_col_maj: bool = False,
       c_col_maj: bool = False, use_chess: bool = False,
       emulate_bf16_mmul_with_bfp16: bool = False) -> ExternalFunction:
    """``C += A @ B`` on ``dim_m x dim_k`` and ``dim_k x dim_n`` tiles; ``.zero`` clears C."""
    si, so = _mm_suffix(input_dtype, output_dtype, "mm")
    a, b = _vec(dim_m * dim_k, input_dtype), _vec(dim_k * dim_n, input_dtype)
    c = _vec(dim_m * dim_n, output_dtype)
    k = _ext(f"{'matmul' if vectorized else 'matmul_scalar'}_{si}_{so}", [a, b, c],
             dim_m * dim_k * dim_n)
    k.zero = Kernel(f"{'zero' if vectorized else 'zero_scalar'}_{so}", k.object_file_name, [c])
    k.mac_dims = _mac_dims(si, emulate_bf16_mmul_with_bfp16)
    return k


def _mac_dims(si: str, bfp16: bool) -> tuple:
    """(r, s, t) of one AIE matmul instruction for the input type on the current device."""
    from .hostapi import get_current_device
    aie2p = get_current_device().arch == "aie2p"
    if aie2p:
        return {"i8": (8, 8, 8), "i16": (4, 4, 8), "bf16": (8, 8, 8) if bfp16 else (4, 8, 8)}[si]
    return {"i8": (4, 8, 8), "i16": (4, 4, 4), "bf16": (4, 8, 4)}[si]


def mv(dim_m: int = 32, dim_k: int = 32, input_dtype=np.int16, output_dtype=np.int32,
       vectorized: bool = True, use_chess: bool = False) -> ExternalFunction:
    if np.dtype(input_dtype) != np.int16 or np.dtype(output_dtype) != np.int32:
        raise DesignError("kernels.mv: only (int16, int32) is supported")
    c = _vec(dim_m, np.int32)
    k = _ext(f"{'matvec_vectorized' if vectorized else 'matvec_scalar'}_i16_i32",
             [_vec(dim_m * dim_k, np.int16), _vec(dim_k, np.int16), c], dim_m * dim_k)
    k.zero = Kernel(f"{'zero_vectorized' if vectorized else 'zero_scalar'}_i32",
                    k.object_file_name, [c])
    return k


def cascade_mm(dim_m: int = 64, dim_k: int = 64, dim_n: int = 64, input_dtype=np.int16,
               output_dtype=np.int16, use_chess: bool = False) -> ExternalFunction:
    si, so = _mm_suffix(input_dtype, output_dtype, "cascade_mm")
    ts = [_vec(dim_m * dim_k, input_dtype), _vec(dim_k * dim_n, input_dtype),
          _vec(dim_m * dim_n, output_dtype)]
    k = _ext(f"matmul_scalar_cascade_get_only_{si}_{so}", ts, dim_m * dim_k * dim_n)
    k.get_only = k
    k.put_only = Kernel(f"matmul_scalar_cascade_put_only_{si}_{so}", k.object_file_name, ts)
    k.put_get = Kernel(f"matmul_scalar_cascade_put_get_{si}_{so}", k.object_file_name, ts)
    k.zero = Kernel(f"zero_scalar_{so}", k.object_file_name, ts[2:])
    k.mac_dims = (1, 1, 1)               # the cascade kernels are scalar
    return k


# ---- conv ------------------------------------------------------------------------------
def conv2dk1(input_width: int = 32, input_channels: int = 64, output_channels: int = 64,
             act_dtype=np.int8):
    return _ext(_act("conv2dk1", act_dtype, "conv2dk1"),
                [_vec(input_width * input_channels, act_dtype),
                 _vec(input_channels * output_channels, np.int8),
                 _vec(input_width * output_channels, np.uint8)] + [I32] * 4,
                input_width * input_channels * output_channels)


def conv2dk3(input_width: int = 32, input_channels: int = 64, output_channels: int = 64,
             act_dtype=np.int8, weight_output_channels: int | None = None):
    wo = output_channels if weight_output_channels is None else weight_output_channels
    line = _vec(input_width * input_channels, act_dtype)
    return _ext(_act("conv2dk3", act_dtype, "conv2dk3"),
                [line, line, line, _vec(9 * input_channels * wo, np.int8),
                 _vec(input_width * output_channels, np.uint8)] + [I32] * 8,
                9 * input_width * input_channels * output_channels)


def conv2dk1_skip(input_width: int = 32, input_channels: int = 64,
                  output_channels: int = 64, act_dtype=np.int8):
    half = _vec(input_width * (input_channels // 2), np.uint8)
    return _ext(_act("conv2dk1_skip", act_dtype, "conv2dk1_skip"),
                [half, half, _vec(input_channels * output_channels, np.int8),
                 _vec(input_width * output_channels, np.uint8),
                 _vec(input_width * output_channels, act_dtype)] + [I32] * 5,
                input_width * input_channels * output_channels)


def conv2dk1_skip_init(input_width: int = 32, input_channels: int = 64,
                       output_channels: int = 64, act_dtype=np.int8,
                       skip_input_channels: int | None = None):
    sk = input_channels if skip_input_channels is None else skip_input_channels
    half = _vec(input_width * (input_channels // 2), np.uint8)
    return _ext(_act("conv2dk1_skip_init", act_dtype, "conv2dk1_skip_init"),
                [half, half, _vec((input_channels + sk) * output_channels, np.int8),
                 _vec(input_width * output_channels, np.uint8),
                 _vec(input_width * sk, act_dtype)] + [I32] * 7,
                input_width * (input_channels + sk) * output_channels)


def conv2dk1_i8(input_width: int = 32, input_channels: int = 64, output_channels: int = 64):
    return _ext("conv2dk1_i8", [_vec(input_width * input_channels, np.int8),
                                _vec(input_channels * output_channels, np.int8),
                                _vec(input_width * output_channels, np.int8)] + [I32] * 4,
                input_width * input_channels * output_channels)


def conv2dk14(input_width: int = 224, input_channels: int = 16, output_channels: int = 16,
              kernel_width: int = 14):
    tiles, px = input_width // kernel_width, kernel_width * kernel_width
    return _ext("conv2dk14_i8", [_vec(tiles * px * 4, np.uint8),
                                 _vec(output_channels * px * 4, np.int8),
                                 _vec(output_channels * tiles * 8, np.int8)] + [I32] * 5,
                tiles * px * 4 * output_channels)


# ---- numpy references exported next to the factories ------------------------------------
def relu_ref(x):
    return np.maximum(np.asarray(x, np.float32), 0).astype(np.asarray(x).dtype)


def silu_ref(x):
    f = np.asarray(x, np.float32)
    return (f / (1 + np.exp(-f))).astype(np.asarray(x).dtype)


def gelu_ref(x):
    f = np.asarray(x, np.float32)
    inner = np.sqrt(2 / np.pi) * (f + 0.044715 * f ** 3)
    return (0.5 * f * (1 + np.tanh(inner))).astype(np.asarray(x).dtype)


def bf16_exp_ref(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(np.asarray(x, np.float32)).astype(np.asarray(x).dtype)


def softmax_ref(x, *, tile_size: int = 1024):
    f = np.asarray(x, np.float32)
    if f.size % tile_size:
        raise ValueError(f"softmax_ref: {f.size} elements are not a multiple of {tile_size}")
    rows = f.reshape(-1, tile_size)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(f.shape).astype(np.asarray(x).dtype)


REFERENCES = [relu_ref, silu_ref, gelu_ref, bf16_exp_ref, softmax_ref]

FACTORIES = [passthrough, scale, add, mul, relu, reduce_add, reduce_min, reduce_max,
             compute_max, rgba2hue, rgba2gray, gray2rgba, threshold, bitwise_or, bitwise_and,
             filter2d, add_weighted, softmax, gelu, silu, swiglu, bf16_exp, mm, mv, cascade_mm,
             conv2dk1, conv2dk3, conv2dk1_skip, conv2dk1_skip_init, conv2dk1_i8, conv2dk14]


def module_attrs() -> dict:
    """Names of the emulated ``aie.iron.kernels`` module (unknown names raise one clear
    error at import time)."""
    d = {f.__name__: f for f in FACTORIES + REFERENCES}

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise DesignError(f"aie.iron.kernels.{name} is not emulated; declare the kernel with "
                          f"ExternalFunction(symbol, arg_types=[...]) and register its host "
                          f"implementation with common.emu.register_kernel")
    d["__getattr__"] = __getattr__
    return d
