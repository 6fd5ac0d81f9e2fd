"""Kernels (``Kernel``/``ExternalFunction``) and the registry of host implementations."""
from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass
from time import perf_counter
from typing import Callable

import numpy as np
from greenlet import getcurrent

from .buffer import Buffer
from .engine import current_party
from .errors import DesignError, KernelError, StopRun
from .util import (is_array_type, is_scalar_type, np_ndarray_type_get_dtype,
                   np_ndarray_type_get_shape, type_str, wrap_scalar)


@dataclass
class Registration:
    """One host implementation of a kernel symbol."""
    symbol: str
    fn: Callable
    arg_types: tuple | None
    macs: Callable | None = None
    source: str = "user"
    # cached(args) -> MACs, or None having run nothing: a provider's fast path for calls
    # that repeat an already checked one (common.kernels.host); None: always call ``fn``.
    cached: Callable | None = None


_REG: dict[tuple, Registration] = {}
_VERSION = [0]
HOST_MODULE = "common.kernels.host"


def _norm_type(t):
    if is_array_type(t):
        return ("array", np_ndarray_type_get_shape(t), np_ndarray_type_get_dtype(t).str)
    if is_scalar_type(t):
        return ("scalar", np.dtype(t).str)
    return ("other", repr(t))


def norm_arg_types(arg_types) -> tuple | None:
    """Canonical hashable key for a list of declared argument types."""
    if arg_types is None:
        return None
    return tuple(_norm_type(t) for t in arg_types)


def _is_ctypes_fn(f) -> bool:
    return isinstance(f, ctypes._CFuncPtr)


def _ctypes_wrap(fn, arg_types=None) -> Callable:
    """Wrap a ctypes function: arrays -> data pointers, scalars -> declared C types."""
    ctypes_of = {"i1": ctypes.c_int8, "i2": ctypes.c_int16, "i4": ctypes.c_int32,
                 "i8": ctypes.c_int64, "u1": ctypes.c_uint8, "u2": ctypes.c_uint16,
                 "u4": ctypes.c_uint32, "u8": ctypes.c_uint64, "f4": ctypes.c_float,
                 "f8": ctypes.c_double}

    def conv(a):
        if isinstance(a, np.ndarray):
            if not a.flags.c_contiguous:
                raise KernelError("ctypes kernels need C-contiguous arrays")
            return ctypes.c_void_p(a.ctypes.data)
        if isinstance(a, np.generic):
            return ctypes_of[a.dtype.str[1:]](a.item())
        if isinstance(a, float):
            return ctypes.c_float(a)
        if isinstance(a, int):
            return ctypes.c_int32(a)
        return a

    def call(*args) -> None:    # a C return value is not a MAC count
        fn(*[conv(a) for a in args])

    call.__name__ = getattr(fn, "__name__", "ctypes_kernel")
    return call


def register_kernel(symbol: str, impl: Callable, arg_types: list | None = None,
                    macs: Callable | None = None) -> None:
    """Register ``impl(*args in C order)`` for kernel ``symbol``.

    ``arg_types`` (the design's declared types) restricts the registration to kernels
    declared with exactly those types; lookups prefer such an exact match over a
    registration without types. ``macs(args) -> int`` declares the MAC count of one call
    (used by the summary's NPU time estimate); without it, an int returned by ``impl`` is
    taken as that count. A ctypes function is wrapped automatically.
    """
    if _is_ctypes_fn(impl):
        impl = _ctypes_wrap(impl, arg_types)
    key = (symbol, norm_arg_types(arg_types))
    _REG[key] = Registration(symbol, impl, key[1], macs)
    _VERSION[0] += 1


def register_ctypes_kernel(symbol: str, library, arg_types: list | None = None,
                           macs: Callable | None = None, c_symbol: str | None = None) -> None:
    """Register function ``c_symbol`` (default ``symbol``) of a shared library (path or CDLL)."""
    lib = ctypes.CDLL(str(library)) if isinstance(library, (str, bytes)) or hasattr(
        library, "__fspath__") else library
    fn = getattr(lib, c_symbol or symbol)
    fn.restype = None
    register_kernel(symbol, fn, arg_types, macs)


def unregister_kernel(symbol: str, arg_types: list | None = None) -> None:
    _REG.pop((symbol, norm_arg_types(arg_types)), None)
    _VERSION[0] += 1


def clear_kernels() -> None:
    """Remove every user registration."""
    _REG.clear()
    _VERSION[0] += 1


def _host_table() -> dict:
    try:
        mod = importlib.import_module(HOST_MODULE)
        return dict(mod.host_kernel_table())
    except Exception:  # the provider is optional
        return {}


def lookup_kernel(symbol: str, arg_types: list | tuple | None = None) -> Registration:
    """Find the implementation for ``symbol`` declared with ``arg_types``.

    Order: exact (symbol, arg_types) registration, registration without types, then the
    project's default provider ``common.kernels.host.host_kernel_table()``.
    """
    key = arg_types if (arg_types is None or isinstance(arg_types, tuple)) else norm_arg_types(arg_types)
    if key is not None and (symbol, key) in _REG:
        return _REG[(symbol, key)]
    if (symbol, None) in _REG:
        return _REG[(symbol, None)]
    table = _host_table()
    if symbol in table:
        fn = table[symbol]
        if _is_ctypes_fn(fn):
            fn = _ctypes_wrap(fn)
        return Registration(symbol, fn, None, None, HOST_MODULE,
                            getattr(fn, "cached", None))
    raise KernelError(
        f"no host implementation for kernel symbol '{symbol}'"
        + (f" with arg types ({', '.join(_fmt(k) for k in key)})" if key else "")
        + f"; register one with common.emu.register_kernel('{symbol}', fn, arg_types=None) "
        f"or add it to {HOST_MODULE}.host_kernel_table()")


def _fmt(k) -> str:
    return f"{'x'.join(map(str, k[1]))}x{np.dtype(k[2]).name}" if k[0] == "array" else (
        np.dtype(k[1]).name if k[0] == "scalar" else k[1])


class Kernel:
    """A pre-compiled kernel bound to C symbol ``name``; calling it inside a core runs the
    registered host implementation on the numpy views of its arguments."""

    def __init__(self, name: str, object_file_name=None, arg_types: list | None = None, *,
                 link_with_mode: str | None = None, stack_size_override: int | None = None,
                 **kwargs):
        self._name = name
        self.symbol = name
        self.object_file_name = object_file_name
        self._arg_types = list(arg_types or [])
        self.stack_size_override = stack_size_override
        self._key = norm_arg_types(self._arg_types)
        self._nargs = len(self._arg_types)
        self._conv = [self._converter(t) for t in self._arg_types]
        self._arr_idx = tuple(i for i, t in enumerate(self._arg_types) if is_array_type(t)) \
            if self._arg_types else None
        self._reg: Registration | None = None
        self._reg_version = -1
        self.macs_per_call = 0     # MACs of one call when the implementation declares none

    @property
    def name(self) -> str:
        return self._name

    def arg_types(self) -> list:
        return list(self._arg_types)

    def arg_shape(self, i: int = 0):
        return np_ndarray_type_get_shape(self._arg_types[i])

    def arg_dtype(self, i: int = 0):
        return np_ndarray_type_get_dtype(self._arg_types[i])

    def tile_size(self, i: int = 0) -> int:
        return self.arg_shape(i)[0]

    @staticmethod
    def _converter(t):
        if is_array_type(t):
            shape = np_ndarray_type_get_shape(t)
            size = int(np.prod(shape, dtype=np.int64))

            def conv_arr(a):
                if isinstance(a, Buffer):
                    a = a._data
                if isinstance(a, np.ndarray) and a.shape != shape and a.size == size:
                    return a.reshape(shape)
                return a
            return conv_arr
        if is_scalar_type(t):
            dt = np.dtype(t)
            make = dt.type
            if dt.kind in "iu":
                info = np.iinfo(dt)
                lo, hi = int(info.min), int(info.max)
            else:
                lo, hi = 1, 0                      # never take the integer fast path

            def conv_scalar(v):
                if type(v) is int and lo <= v <= hi:   # common case: no wrap needed
                    return make(v)
                if isinstance(v, Buffer):
                    return v._data
                return wrap_scalar(v, dt)
            return conv_scalar
        return lambda a: a._data if isinstance(a, Buffer) else a

    def registration(self) -> Registration:
        if self._reg is None or self._reg_version != _VERSION[0]:
            self._reg = lookup_kernel(self.symbol, self._key)
            self._reg_version = _VERSION[0]
        return self._reg

    def __call__(self, *args):
        party = getattr(getcurrent(), "party", None)       # current_party(), inlined
        if party is None or party.kind != "worker":
            raise DesignError(f"kernel '{self.symbol}' called outside a worker's core function")
        reg = self._reg
        if reg is None or self._reg_version != _VERSION[0]:
            try:
                reg = self.registration()
            except KernelError as e:
                raise KernelError(f"{party.name}: {e}") from None
        eng = party.eng
        prof = eng.profile
        if prof:
            t0 = perf_counter()
        cached = reg.cached
        m = cached(args) if cached is not None and (
            len(args) == self._nargs or not self._arg_types) else None
        if m is None:
            m = self._call(party, reg, args)
        if prof:
            eng.kernel_s += perf_counter() - t0
        kc = party.kcalls
        kc[self.symbol] = kc.get(self.symbol, 0) + 1
        party.kmacs += m
        if party.tlog is not None:
            party.tlog.append(("k", self.symbol, m))

    def _call(self, party, reg: Registration, args: tuple) -> int:
        """Convert the arguments, run the implementation; returns the call's MACs."""
        if self._arg_types and len(args) != len(self._arg_types):
            raise DesignError(f"kernel '{self.symbol}' takes {len(self._arg_types)} arguments, "
                              f"{party.name} passed {len(args)}")
        if reg.source != HOST_MODULE and self._conv:
            args = [c(a) for c, a in zip(self._conv, args)]
        elif self._arr_idx is None:
            args = [a._data if isinstance(a, Buffer) else a for a in args]
        else:   # the project's host kernels check and convert scalars themselves
            for i in self._arr_idx:
                if type(args[i]) is Buffer:
                    args = [a._data if isinstance(a, Buffer) else a for a in args]
                    break
        try:
            ret = reg.fn(*args)
        except (StopRun, KernelError):
            raise
        except Exception as e:
            raise KernelError(f"kernel '{self.symbol}' raised in {party.name}: "
                              f"{type(e).__name__}: {e}") from e
        return int(reg.macs(args)) if reg.macs is not None else (
            ret if type(ret) is int else self.macs_per_call)

    def __repr__(self) -> str:
        return f"Kernel({self.symbol!r}, [{', '.join(type_str(t) for t in self._arg_types)}])"


class ExternalFunction(Kernel):
    """A kernel compiled from C/C++ source at JIT time; same call semantics in the emulator."""

    _instances: dict = {}      # upstream's registry of declared functions (nothing is built)

    def __init__(self, name: str, object_file_name=None, source_file=None, source_string=None,
                 arg_types: list | None = None, include_dirs=None, compile_flags=None, *,
                 symbol_prefix=None, use_chess=False, inline=False, stack_size_override=None,
                 **kwargs):
        super().__init__(name, object_file_name, arg_types,
                         stack_size_override=stack_size_override)
        self.source_file, self.source_string = source_file, source_string
        self.compile_flags = list(compile_flags or [])
