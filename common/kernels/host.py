"""ctypes bindings of the host build of the NPU kernels.

Two interfaces:

* :func:`host_kernel_table` - ``{C symbol: callable}`` for the emulator. Each callable
  takes the C arguments in C order: numpy arrays for pointers (any shape/dtype,
  C-contiguous, exactly the bytes the kernel touches; outputs writeable and written
  in place), ``None`` for a padding-row pointer the kernel does not read, and Python
  ints for int32 scalars. Scalars and buffer sizes are validated (ValueError) before
  the call so a wrong call cannot read or write out of bounds. A call returns the
  multiply-accumulate count of that call (the emulator's NPU time estimate).
* Typed wrappers (:func:`conv2dk1`, :func:`conv2dk3`, ...) on row arrays of shape
  ``(C/8, W, 8)`` with strict dtype checks; they allocate and return the output row.

ctypes releases the GIL during every call, so several threads can run kernels at once
(scratch memory in the library is thread-local).
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from .. import quant
from . import build

_P = ctypes.c_void_p
_I = ctypes.c_int32

# symbol -> argument names in C order; names ending in '*' are pointers ('*o' = output)
SIGNATURES: dict[str, tuple[str, ...]] = {}
for _ti in ("i8", "ui8"):
    for _to in ("i8", "ui8"):
        SIGNATURES[f"conv2dk1_{_ti}_{_to}"] = (
            "in*", "params*", "out*o", "W", "IC", "OC", "shift", "rounding")
    SIGNATURES[f"conv2dk1_proj_{_ti}"] = (
        "in*", "params*", "out*o", "proj*o", "W", "IC", "OC", "OC_proj", "shift",
        "proj_shift", "rounding")
SIGNATURES["conv2dk3_ui8"] = (
    "line0*", "line1*", "line2*", "params*", "out*o", "W", "IC", "OC", "OC_total",
    "border", "shift", "rounding", "oc_offset")
SIGNATURES["conv2dk1_skip_ui8"] = (
    "in0*", "in1*", "params*", "out*o", "skip*", "W", "IC", "OC", "shift", "skip_shift",
    "skip_in_shift", "rounding")
SIGNATURES["conv2dk1_skip_i8skip_ui8"] = SIGNATURES["conv2dk1_skip_ui8"]
SIGNATURES["conv2dk1_skip_init_ui8"] = (
    "in0*", "in1*", "params*", "out*o", "skip_in*", "W", "IC", "OC", "IC_skip", "shift",
    "skip_shift", "skip_conv_shift", "rounding")
for _ti in ("i8", "ui8"):
    SIGNATURES[f"conv2dk5_{_ti}_ui8"] = (
        "line0*", "line1*", "line2*", "line3*", "line4*", "params*", "out*o", "W", "IC",
        "OC", "pad", "row_mask", "shift", "rounding")
SIGNATURES["maxpool2x2_ui8"] = ("row0*", "row1*", "out*o", "W", "C")
SIGNATURES["maxpool2x2_i8"] = ("row0*", "row1*", "out*o", "W", "C")
for _ti in ("i8", "ui8"):
    SIGNATURES[f"fc_{_ti}_ui8"] = ("in*", "params*", "out*o", "IN", "OUT", "shift", "rounding")
    SIGNATURES[f"fc_{_ti}_i32"] = ("in*", "params*", "out*o", "IN", "OUT")


class KernelArgError(ValueError):
    """A kernel call with invalid scalars, buffers or dtypes."""


# ------------------------------------------------------------------ scalar checks
def _mult8(name: str, v: int, what: str, m: int = 8) -> None:
    if v <= 0 or v % m:
        raise KernelArgError(f"{name}: {what}={v} must be a positive multiple of {m}")


def _common(name: str, W: int, shifts: dict[str, int], rounding: int) -> None:
    if W <= 0:
        raise KernelArgError(f"{name}: W={W} must be positive")
    for k, v in shifts.items():
        if not quant.SHIFT_MIN <= v <= quant.SHIFT_MAX:
            raise KernelArgError(f"{name}: {k}={v} outside [{quant.SHIFT_MIN}, "
                                 f"{quant.SHIFT_MAX}]")
    if rounding not in (0, 1):
        raise KernelArgError(f"{name}: rounding={rounding} must be 0 (half_even) "
                             f"or 1 (half_up)")


def _blob(o: int, i: int, k: int) -> int:
    return o * i * k + 4 * o


# Each returns the byte size of every pointer argument, in pointer order (None = not read).
def _sizes_k1(n, W, IC, OC, shift, rounding):
    _common(n, W, {"shift": shift}, rounding)
    _mult8(n, IC, "IC"); _mult8(n, OC, "OC")
    return (W * IC, _blob(OC, IC, 1), W * OC)


def _sizes_k1_proj(n, W, IC, OC, OC_proj, shift, proj_shift, rounding):
    _common(n, W, {"shift": shift, "proj_shift": proj_shift}, rounding)
    _mult8(n, IC, "IC"); _mult8(n, OC, "OC"); _mult8(n, OC_proj, "OC_proj")
    return (W * IC, _blob(OC, IC, 1) + _blob(OC_proj, IC, 1), W * OC, W * OC_proj)


def _sizes_k3(n, W, IC, OC, OC_total, border, shift, rounding, oc_offset):
    _common(n, W, {"shift": shift}, rounding)
    _mult8(n, IC, "IC"); _mult8(n, OC, "OC"); _mult8(n, OC_total, "OC_total")
    if border not in (0, 1, 2):
        raise KernelArgError(f"{n}: border={border} must be 0 (top), 1 or 2 (bottom)")
    if oc_offset < 0 or oc_offset % 8 or oc_offset + OC > OC_total:
        raise KernelArgError(f"{n}: oc_offset={oc_offset} with OC={OC} exceeds "
                             f"OC_total={OC_total} or is not a multiple of 8")
    row = W * IC
    return (None if border == 0 else row, row, None if border == 2 else row,
            _blob(OC_total, IC, 9), W * OC)


def _sizes_skip(n, W, IC, OC, shift, skip_shift, skip_in_shift, rounding):
    _common(n, W, {"shift": shift, "skip_shift": skip_shift, "skip_in_shift": skip_in_shift},
            rounding)
    _mult8(n, IC, "IC", 16); _mult8(n, OC, "OC")
    return (W * IC // 2, W * IC // 2, _blob(OC, IC, 1), W * OC, W * OC)


def _sizes_skip_init(n, W, IC, OC, IC_skip, shift, skip_shift, skip_conv_shift, rounding):
    _common(n, W, {"shift": shift, "skip_shift": skip_shift,
                   "skip_conv_shift": skip_conv_shift}, rounding)
    _mult8(n, IC, "IC", 16); _mult8(n, OC, "OC"); _mult8(n, IC_skip, "IC_skip")
    return (W * IC // 2, W * IC // 2, _blob(OC, IC, 1) + _blob(OC, IC_skip, 1), W * OC,
            W * IC_skip)


def _sizes_k5(n, W, IC, OC, pad, row_mask, shift, rounding):
    _common(n, W, {"shift": shift}, rounding)
    _mult8(n, IC, "IC"); _mult8(n, OC, "OC")
    if not 0 <= pad <= 2:
        raise KernelArgError(f"{n}: pad={pad} must be 0..2")
    if not 0 <= row_mask <= 0b11111:
        raise KernelArgError(f"{n}: row_mask={row_mask:#x} must be a 5-bit mask")
    wout = W + 2 * pad - 4
    if wout < 1:
        raise KernelArgError(f"{n}: W={W} with pad={pad} gives no output column")
    lines = tuple(W * IC if (row_mask >> k) & 1 else None for k in range(5))
    return (*lines, _blob(OC, IC, 25), wout * OC)


def _sizes_pool(n, W, C):
    if W <= 0 or W % 2:
        raise KernelArgError(f"{n}: W={W} must be a positive even width")
    _mult8(n, C, "C")
    return (W * C, W * C, W // 2 * C)


def _sizes_fc(n, IN, OUT, shift=0, rounding=0):
    _common(n, 1, {"shift": shift}, rounding)
    _mult8(n, IN, "IN"); _mult8(n, OUT, "OUT")
    return (IN, OUT * IN + 4 * OUT, OUT * (4 if n.endswith("_i32") else 1))


_SIZES: dict[str, Callable[..., tuple]] = {}
for _n in SIGNATURES:
    if _n.startswith("conv2dk1_skip_init"):
        _SIZES[_n] = _sizes_skip_init
    elif _n.startswith("conv2dk1_skip"):
        _SIZES[_n] = _sizes_skip
    elif _n.startswith("conv2dk1_proj"):
        _SIZES[_n] = _sizes_k1_proj
    elif _n.startswith("conv2dk1_"):
        _SIZES[_n] = _sizes_k1
    elif _n.startswith("conv2dk3_"):
        _SIZES[_n] = _sizes_k3
    elif _n.startswith("conv2dk5_"):
        _SIZES[_n] = _sizes_k5
    elif _n.startswith("fc_"):
        _SIZES[_n] = _sizes_fc
    else:
        _SIZES[_n] = _sizes_pool


# ------------------------------------------------------------------ library
_libs: dict[str, ctypes.CDLL] = {}
_lib_lock = threading.Lock()


def load_library(variant: str = "native") -> ctypes.CDLL:
    """Build (if stale) and load a host kernel library variant once per process
    (``native``: the one everything uses; ``portable``: see common.kernels.build)."""
    with _lib_lock:
        if variant not in _libs:
            lib = ctypes.CDLL(str(build.build(variant=variant)))
            for name, args in SIGNATURES.items():
                f = getattr(lib, name)
                f.restype = None
                f.argtypes = [_P if a.split("*")[0] != a else _I for a in args]
            lib.npu_host_engine.restype = ctypes.c_char_p
            lib.npu_host_engine.argtypes = []
            _libs[variant] = lib
    return _libs[variant]


def engine_name(variant: str = "native") -> str:
    """The conv engine compiled into a library variant: 'avx512-vnni' or 'portable'."""
    return load_library(variant).npu_host_engine().decode()


_addr_cache: dict[int, tuple[weakref.ref, int]] = {}
_ADDR_CACHE_MAX = 4096     # entries before dead ones are swept
_CALL_CACHE_MAX = 1024     # checked calls kept per kernel (each pins its arrays)


def _address(a: np.ndarray) -> int:
    """Data address of an ndarray, cached per live array object (ctypes.data is slow).

    The weak references have no callback: a Python callback runs whenever an array is
    freed, and a KeyboardInterrupt raised inside it is printed and dropped. Entries of
    freed arrays are swept when the cache grows past ``_ADDR_CACHE_MAX``.
    """
    key = id(a)
    hit = _addr_cache.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    addr = a.ctypes.data
    if len(_addr_cache) >= _ADDR_CACHE_MAX:
        for k, (r, _) in list(_addr_cache.items()):     # list(): atomic snapshot
            if r() is None:
                _addr_cache.pop(k, None)
        if len(_addr_cache) >= _ADDR_CACHE_MAX:      # all alive: start over
            _addr_cache.clear()
    _addr_cache[key] = (weakref.ref(a), addr)
    return addr


class _Kernel:
    """Validated, in-place caller of one C symbol (arguments in C order)."""

    __slots__ = ("name", "cfunc", "raw", "nargs", "nptr", "ptr_idx", "out_flags", "out_idx",
                 "int_idx", "sizes", "ptr_names", "_arg_pos", "_need", "_calls")

    def __init__(self, name: str, cfunc: Any, raw: Any = None) -> None:
        args = SIGNATURES[name]
        self.name, self.cfunc, self.nargs = name, cfunc, len(args)
        self.ptr_idx = tuple(i for i, a in enumerate(args) if "*" in a)
        self.ptr_names = tuple(args[i].split("*")[0] for i in self.ptr_idx)
        self.out_flags = tuple(args[i].endswith("*o") for i in self.ptr_idx)
        self.out_idx = tuple(i for i, o in zip(self.ptr_idx, self.out_flags) if o)
        self.int_idx = tuple(i for i, a in enumerate(args) if "*" not in a)
        self.sizes = _SIZES[name]
        self._arg_pos = {a: i for i, a in enumerate(args)}
        self._need: dict[tuple, tuple] = {}   # scalars -> checked pointer sizes
        # Checked calls (see __call__): the same symbol without argtypes (arguments go
        # as prebuilt c_void_p objects and Python ints, about a third of the cost).
        self.nptr = len(self.ptr_idx)
        self.raw = raw if self.ptr_idx == tuple(range(self.nptr)) else None
        self._calls: dict[tuple, tuple] = {}

    def _plan(self, key: tuple, args: Sequence[Any]) -> tuple[tuple, int]:
        """(checked pointer sizes, MACs) for the scalar arguments ``key`` (cached)."""
        plan = self._need.get(key)
        if plan is None:
            plan = (self.sizes(self.name, *key), self._macs(args))
            if len(self._need) < 256:
                self._need[key] = plan
        return plan

    def _macs(self, args: Sequence[Any]) -> int:
        g = {k: args[i] for k, i in self._arg_pos.items() if "*" not in k}
        if self.name.startswith("fc_"):
            return int(g["IN"]) * int(g["OUT"])
        if "W" not in g or "OC" not in g:
            return 0                                    # max pool: no MACs
        n = self.name
        per_px = int(g["IC"]) * int(g["OC"])
        if n.startswith("conv2dk3"):
            per_px *= 9
        elif n.startswith("conv2dk5"):   # per output pixel: Wout = W + 2*pad - 4
            per_px *= 25 * bin(int(g["row_mask"]) & 31).count("1") / 5
            per_px = per_px * (int(g["W"]) + 2 * int(g["pad"]) - 4) / int(g["W"])
        elif n.startswith("conv2dk1_skip_init"):
            per_px += int(g["IC_skip"]) * int(g["OC"])
        elif n.startswith("conv2dk1_proj"):
            per_px += int(g["IC"]) * int(g["OC_proj"])
        return int(int(g["W"]) * per_px)

    def __call__(self, *args: Any) -> int:
        """Check the arguments, run the kernel in place; returns its MAC count.

        A call with the very array objects and the same scalar values as an earlier,
        checked call reuses that check: the entry keeps those arrays alive (so no other
        object can take their ids) with their C pointers (their size, contiguity and
        address cannot change while they live); outputs are checked writeable each time.
        """
        m = self.cached(args)
        return self._checked_call(args) if m is None else m

    def cached(self, args: tuple) -> int | None:
        """Run a call that repeats a checked one (see ``__call__``) and return its MAC
        count; None (nothing run) for any other call."""
        try:
            hit = self._calls.get((*map(id, args[:self.nptr]), *args[self.nptr:]))
        except TypeError:           # an unhashable scalar argument
            return None
        if hit is None:
            return None
        for i in self.out_idx:
            if not args[i].flags.writeable:
                return None
        self.raw(*hit[1])
        return hit[2]

    def _checked_call(self, args: tuple) -> int:
        if len(args) != self.nargs:
            raise KernelArgError(f"{self.name}: expected {self.nargs} arguments "
                                 f"{SIGNATURES[self.name]}, got {len(args)}")
        cargs = list(args)
        try:
            key = tuple([int(args[i]) for i in self.int_idx])
        except (TypeError, ValueError) as exc:
            raise KernelArgError(f"{self.name}: scalar arguments must be integers") from exc
        need, macs = self._plan(key, args)
        for j, i in enumerate(self.ptr_idx):
            a = args[i]
            if type(a) is np.ndarray and a.flags.c_contiguous and a.nbytes == need[j] \
                    and (a.flags.writeable or not self.out_flags[j]):
                cargs[i] = _address(a)      # the common, valid case
                continue
            if a is None:
                if need[j] is not None:
                    raise KernelArgError(f"{self.name}: {self.ptr_names[j]} is None but "
                                         f"is read")
                continue
            if not isinstance(a, np.ndarray):
                raise KernelArgError(f"{self.name}: {self.ptr_names[j]} must be a numpy "
                                     f"array, got {type(a).__name__}")
            if not a.flags.c_contiguous:
                raise KernelArgError(f"{self.name}: {self.ptr_names[j]} is not "
                                     f"C-contiguous")
            if need[j] is not None and a.nbytes != need[j]:
                raise KernelArgError(f"{self.name}: {self.ptr_names[j]} has {a.nbytes} "
                                     f"bytes, expected {need[j]}")
            if self.out_flags[j] and not a.flags.writeable:
                raise KernelArgError(f"{self.name}: {self.ptr_names[j]} is read-only")
            cargs[i] = _address(a)
        for i, v in zip(self.int_idx, key):
            cargs[i] = v
        self.cfunc(*cargs)
        if self.raw is not None:
            calls = self._calls
            if len(calls) >= _CALL_CACHE_MAX:
                calls.clear()
            ptrs = args[:self.nptr]
            raw = tuple(None if a is None else ctypes.c_void_p(cargs[i])
                        for i, a in enumerate(ptrs)) + key
            try:
                calls[(*map(id, ptrs), *args[self.nptr:])] = (ptrs, raw, macs)
            except TypeError:       # an unhashable scalar (a 0-d array): not kept
                pass
        return macs


_tables: dict[str, dict[str, _Kernel]] = {}


def host_kernel_table(variant: str = "native") -> dict[str, Callable[..., None]]:
    """``{C symbol: callable(*c_args)}`` for every host kernel (built on first use)."""
    if variant not in _tables:
        lib = load_library(variant)
        tab = {}
        for name in SIGNATURES:
            raw = lib[name]             # a second function object, without argtypes
            raw.restype = None
            tab[name] = _Kernel(name, getattr(lib, name), raw)
        _tables[variant] = tab
    return dict(_tables[variant])


# ------------------------------------------------------------------ typed wrappers
_TYPE_NAMES = {np.dtype(np.int8): "i8", np.dtype(np.uint8): "ui8"}


def _row(a: Any, what: str, dtypes: Sequence[Any] = (np.int8, np.uint8)) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype not in [np.dtype(d) for d in dtypes]:
        raise KernelArgError(f"{what}: dtype {arr.dtype} not in "
                             f"{[np.dtype(d).name for d in dtypes]}")
    if arr.ndim != 3 or arr.shape[2] != 8:
        raise KernelArgError(f"{what}: expected a row of shape (C/8, W, 8), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _params(p: Any) -> np.ndarray:
    arr = np.asarray(p)
    if arr.dtype != np.int8 or arr.ndim != 1:
        raise KernelArgError(f"params: expected a 1-D int8 blob, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def _rcode(rounding: Any) -> int:
    return quant.RoundingMode.parse(rounding).code


def conv2dk1(inp: np.ndarray, params: np.ndarray, oc: int, shift: int,
             rounding: Any = quant.DEFAULT_ROUNDING, out_dtype: Any = np.uint8) -> np.ndarray:
    """1x1 conv of one row (IC/8, W, 8) int8/uint8 -> (OC/8, W, 8) of out_dtype."""
    x = _row(inp, "conv2dk1 input")
    ti, to = _TYPE_NAMES[x.dtype], _TYPE_NAMES.get(np.dtype(out_dtype))
    if to is None:
        raise KernelArgError(f"conv2dk1: out_dtype must be int8 or uint8, got {out_dtype}")
    c8, w, _ = x.shape
    out = np.empty((int(oc) // 8, w, 8), dtype=out_dtype)
    host_kernel_table()[f"conv2dk1_{ti}_{to}"](x, _params(params), out, w, c8 * 8, oc,
                                               shift, _rcode(rounding))
    return out


def conv2dk3(lines: Sequence[np.ndarray | None], params: np.ndarray, oc: int,
             oc_total: int, shift: int, rounding: Any = quant.DEFAULT_ROUNDING,
             oc_offset: int = 0) -> np.ndarray:
    """3x3 conv (uint8 rows (IC/8, W, 8) for y-1, y, y+1; None for a padding row at the
    top or bottom) -> uint8 (OC/8, W, 8) for channels [oc_offset, oc_offset+oc)."""
    if len(lines) != 3:
        raise KernelArgError("conv2dk3: need 3 lines")
    if lines[1] is None or (lines[0] is None and lines[2] is None):
        raise KernelArgError("conv2dk3: only line0 or line2 may be padding (None)")
    border = 0 if lines[0] is None else (2 if lines[2] is None else 1)
    rows = [None if r is None else _row(r, f"conv2dk3 line{i}", (np.uint8,))
            for i, r in enumerate(lines)]
    shapes = {r.shape for r in rows if r is not None}
    if len(shapes) != 1:
        raise KernelArgError(f"conv2dk3: lines have different shapes {shapes}")
    c8, w, _ = rows[1].shape
    out = np.empty((int(oc) // 8, w, 8), dtype=np.uint8)
    host_kernel_table()["conv2dk3_ui8"](rows[0], rows[1], rows[2], _params(params), out, w,
                                        c8 * 8, oc, oc_total, border, shift,
                                        _rcode(rounding), oc_offset)
    return out


def conv2dk1_skip(in0: np.ndarray, in1: np.ndarray, params: np.ndarray, skip: np.ndarray,
                  shift: int, skip_in_shift: int, skip_shift: int,
                  rounding: Any = quant.DEFAULT_ROUNDING) -> np.ndarray:
    """conv3 1x1 over the channel halves in0|in1 (uint8 rows) + uint8 skip (requantized
    to int8 with skip_in_shift) -> uint8 row."""
    a, b = _row(in0, "in0", (np.uint8,)), _row(in1, "in1", (np.uint8,))
    s = _row(skip, "skip", (np.uint8,))
    if a.shape != b.shape or a.shape[1] != s.shape[1]:
        raise KernelArgError(f"conv2dk1_skip: shapes {a.shape}, {b.shape}, {s.shape} differ")
    out = np.empty_like(s)
    host_kernel_table()["conv2dk1_skip_ui8"](a, b, _params(params), out, s, a.shape[1],
                                             2 * a.shape[0] * 8, s.shape[0] * 8, shift,
                                             skip_shift, skip_in_shift, _rcode(rounding))
    return out


def conv2dk1_skip_init(in0: np.ndarray, in1: np.ndarray, params: np.ndarray,
                       skip_in: np.ndarray, oc: int, shift: int, skip_shift: int,
                       skip_conv_shift: int,
                       rounding: Any = quant.DEFAULT_ROUNDING) -> np.ndarray:
    """Block-0 tail: conv3 over in0|in1 + requantized 1x1 projection of int8 skip_in."""
    a, b = _row(in0, "in0", (np.uint8,)), _row(in1, "in1", (np.uint8,))
    s = _row(skip_in, "skip_in", (np.int8,))
    if a.shape != b.shape or a.shape[1] != s.shape[1]:
        raise KernelArgError(f"conv2dk1_skip_init: shapes {a.shape}, {b.shape}, {s.shape}")
    out = np.empty((int(oc) // 8, a.shape[1], 8), dtype=np.uint8)
    host_kernel_table()["conv2dk1_skip_init_ui8"](
        a, b, _params(params), out, s, a.shape[1], 2 * a.shape[0] * 8, oc, s.shape[0] * 8,
        shift, skip_shift, skip_conv_shift, _rcode(rounding))
    return out


def conv2dk5(lines: Sequence[np.ndarray | None], params: np.ndarray, oc: int, pad: int,
             shift: int, rounding: Any = quant.DEFAULT_ROUNDING) -> np.ndarray:
    """5x5 conv over rows y-pad..y-pad+4 (None = zero padding row) -> uint8 ReLU row
    (OC/8, W+2*pad-4, 8)."""
    if len(lines) != 5:
        raise KernelArgError("conv2dk5: need 5 lines")
    rows = [None if r is None else _row(r, f"conv2dk5 line{i}") for i, r in enumerate(lines)]
    real = [r for r in rows if r is not None]
    if not real or len({(r.shape, r.dtype) for r in real}) != 1:
        raise KernelArgError("conv2dk5: lines must be non-empty with one shape and dtype")
    mask = sum(1 << k for k, r in enumerate(rows) if r is not None)
    c8, w, _ = real[0].shape
    out = np.empty((int(oc) // 8, max(w + 2 * int(pad) - 4, 0), 8), dtype=np.uint8)
    host_kernel_table()[f"conv2dk5_{_TYPE_NAMES[real[0].dtype]}_ui8"](
        *rows, _params(params), out, w, c8 * 8, oc, pad, mask, shift, _rcode(rounding))
    return out


def fc(inp: np.ndarray, params: np.ndarray, out_features: int, shift: int = 0,
       rounding: Any = quant.DEFAULT_ROUNDING, out_dtype: Any = np.uint8) -> np.ndarray:
    """Fully connected layer on a 1-D int8/uint8 vector (length a multiple of 8) with a
    pack_fc_params blob -> (out_features,) uint8 (ReLU requant with shift/rounding) or
    int32 (bias + W.x, shift and rounding unused); out_features a multiple of 8."""
    x = np.ascontiguousarray(np.asarray(inp))
    if x.dtype not in (np.int8, np.uint8) or x.ndim != 1:
        raise KernelArgError(f"fc input: expected a 1-D int8/uint8 vector, got {x.dtype} "
                             f"{x.shape}")
    to = {np.dtype(np.uint8): "ui8", np.dtype(np.int32): "i32"}.get(np.dtype(out_dtype))
    if to is None:
        raise KernelArgError(f"fc: out_dtype must be uint8 or int32, got {out_dtype}")
    out = np.empty(int(out_features), dtype=out_dtype)
    k = host_kernel_table()[f"fc_{_TYPE_NAMES[x.dtype]}_{to}"]
    if to == "ui8":
        k(x, _params(params), out, x.size, out.size, shift, _rcode(rounding))
    else:
        k(x, _params(params), out, x.size, out.size)
    return out


def maxpool2x2(row0: np.ndarray, row1: np.ndarray) -> np.ndarray:
    """2x2/2 max pool of two rows (C/8, W, 8) -> (C/8, W/2, 8), same dtype."""
    a, b = _row(row0, "row0"), _row(row1, "row1")
    if a.shape != b.shape or a.dtype != b.dtype:
        raise KernelArgError(f"maxpool2x2: rows differ: {a.shape}/{a.dtype} vs "
                             f"{b.shape}/{b.dtype}")
    c8, w, _ = a.shape
    out = np.empty((c8, w // 2, 8), dtype=a.dtype)
    host_kernel_table()[f"maxpool2x2_{_TYPE_NAMES[a.dtype]}"](a, b, out, w, c8 * 8)
    return out
