"""``aie.iron.algorithms``: design templates built on the IRON primitives.

Same calling conventions as upstream (``python/iron/algorithms``): each takes a tensor
type (``np.ndarray[(N,), np.dtype[T]]``), builds the fifos, workers and runtime sequence,
and returns the resolved program (they are called inside an ``@iron.jit`` generator).
``func`` is either a kernel (``ExternalFunction``: called per tile as
``func(*in_tiles, out_tile, *params, tile_size)``) or a Python element function
(``lambda a: a + 1``), applied to a whole tile at once when it accepts arrays, element by
element otherwise.
"""
from __future__ import annotations

import numpy as np

from .controlflow import range_
from .device import Tile
from .errors import DesignError
from .fifo import ObjectFifo
from .kernel import Kernel
from .program import Program
from .runtime import Runtime
from .taplib import TensorAccessPattern
from .util import is_array_type, is_scalar_type, np_ndarray_type_get_dtype, type_numel
from .worker import Worker


def _device():
    from .hostapi import get_current_device
    return get_current_device()


def _tensor(tensor_ty, tile_size: int, what: str) -> tuple[int, np.dtype]:
    if not is_array_type(tensor_ty):
        raise DesignError(f"algorithms.{what}: expected np.ndarray[(N,), np.dtype[T]], got "
                          f"{tensor_ty!r}")
    n = type_numel(tensor_ty)
    if n % tile_size:
        raise DesignError(f"algorithms.{what}: {n} elements are not a multiple of tile_size "
                          f"{tile_size}")
    return n, np_ndarray_type_get_dtype(tensor_ty)


def _apply(func, ins: list, out: np.ndarray) -> None:
    """Element function over whole tiles (vectorised when it accepts arrays)."""
    try:
        out[...] = func(*ins)
        return
    except (TypeError, ValueError):
        pass
    for j in range(out.size):
        out[j] = func(*(a[j] for a in ins))


def _split_params(func, n_tensors: int, params) -> tuple[list, list]:
    """(tensor params as (index, type), scalar params as (index, value))."""
    tens, scal = [], []
    decl = func.arg_types()[n_tensors:] if isinstance(func, Kernel) else []
    for i, p in enumerate(params):
        t = decl[i] if i < len(decl) else None
        if is_array_type(p) and not is_scalar_type(t):
            tens.append((i, p))
        else:
            scal.append((i, p))
    return tens, scal


def _check_tile(func, tile_size: int, what: str) -> None:
    if isinstance(func, Kernel) and func.arg_types() and func.tile_size() != tile_size:
        raise DesignError(f"algorithms.{what}: tile_size {tile_size} does not match the "
                          f"kernel's tile {func.tile_size()}")


def _elementwise(func, tensor_ty, n_in: int, params, tile_size: int, what: str,
                 columns: int = 1, pass_size: bool = True, in_place: bool = False):
    n, dt = _tensor(tensor_ty, tile_size, what)
    _check_tile(func, tile_size, what)
    if n % (tile_size * columns):
        raise DesignError(f"algorithms.{what}: {n} elements are not a multiple of tile_size x "
                          f"columns ({tile_size} x {columns})")
    is_kernel = isinstance(func, Kernel)
    tens, scal = _split_params(func, n_in + 1, params) if is_kernel else ([], [])
    tile_ty = np.ndarray[(tile_size,), np.dtype[dt]]
    vec_ty = np.ndarray[(n,), np.dtype[dt]]
    chunk = n // columns
    per_col = chunk // tile_size
    ins = [[ObjectFifo(tile_ty, name=f"in{i}" + (f"_{c}" if columns > 1 else ""))
            for c in range(columns)] for i in range(n_in)]
    outs = [ObjectFifo(tile_ty, name="out" + (f"_{c}" if columns > 1 else ""))
            for c in range(columns)]
    pfifos = [ObjectFifo(t, name=f"param{i}") for i, t in tens]

    def core(in_hs, out_h, param_hs, fn):
        args = [None] * len(params)
        for (i, _), h in zip(tens, param_hs):
            args[i] = h.acquire(1)
        for i, v in scal:
            args[i] = v
        for _ in range_(per_col):
            xs = [h.acquire(1) for h in in_hs]
            y = out_h.acquire(1)
            if is_kernel:
                fn(*xs, y, *args, *([tile_size] if pass_size else []))
            else:
                _apply(fn, xs, y)
            for h in in_hs:
                h.release(1)
            out_h.release(1)
        for h in param_hs:
            h.release(1)

    per_column = max(1, columns // max(1, _device().cols)) if columns > 1 else 1
    workers = [Worker(core, [[ins[i][c].cons() for i in range(n_in)], outs[c].prod(),
                             [f.cons() for f in pfifos], func],
                      tile=Tile(c // per_column) if columns > 1 else None)
               for c in range(columns)]
    n_t = n_in + (0 if in_place else 1)

    def seq(*a):
        tensors, pts = a[:n_t], a[n_t:n_t + len(tens)]
        hs = a[n_t + len(tens):]
        in_h, out_h = hs[:n_in * columns], hs[n_in * columns:n_in * columns + columns]
        par_h = hs[n_in * columns + columns:]
        dst = tensors[0] if in_place else tensors[n_in]
        for c in range(columns):
            tap = TensorAccessPattern((n,), c * chunk, [chunk], [1])
            for i in range(n_in):
                in_h[i * columns + c].fill(tensors[i], tap=tap)
        for h, t in zip(par_h, pts):
            h.fill(t)
        for c in range(columns):
            out_h[c].drain(dst, tap=TensorAccessPattern((n,), c * chunk, [chunk], [1]),
                           wait=True)

    handles = [f.prod() for row in ins for f in row] + [f.cons() for f in outs] + \
        [f.prod() for f in pfifos]
    rt = Runtime(seq, [vec_ty] * n_t + [t for _, t in tens] + handles)
    dev = _device()
    if dev is None:
        raise DesignError(f"algorithms.{what} needs a current device (iron.set_current_device)")
    return Program(dev, rt, workers=workers).resolve_program()


def for_each(func, tensor_ty, tile_size: int = 16):
    """Apply ``func`` to every tile of one tensor, in place."""
    return _elementwise(func, tensor_ty, 1, (), tile_size, "for_each", in_place=True)


def transform(func, tensor_ty, *params, tile_size: int = 16, trace_size: int = 0):
    """``output = func(input)`` tile by tile on one worker."""
    return _elementwise(func, tensor_ty, 1, params, tile_size, "transform")


def transform_binary(func, tensor_ty, tile_size: int = 16, trace_size: int = 0):
    """``output = func(input0, input1)`` tile by tile on one worker."""
    return _elementwise(func, tensor_ty, 2, (), tile_size, "transform_binary")


def transform_parallel(func, tensor_ty, *params, tile_size: int = 16, trace_size: int = 0,
                       num_channels: int = 1, pass_size_to_kernel: bool = True):
    """``transform`` with one worker per column of the current device."""
    if num_channels not in (1, 2):
        raise DesignError("algorithms.transform_parallel: num_channels must be 1 or 2")
    return _elementwise(func, tensor_ty, 1, params, tile_size, "transform_parallel",
                        columns=_device().cols * num_channels, pass_size=pass_size_to_kernel)


def transform_parallel_binary(func, tensor_ty, tile_size: int = 16, trace_size: int = 0,
                              num_channels: int = 1, pass_size_to_kernel: bool = True):
    """``transform_binary`` with one worker per column of the current device."""
    if num_channels not in (1, 2):
        raise DesignError("algorithms.transform_parallel_binary: num_channels must be 1 or 2")
    return _elementwise(func, tensor_ty, 2, (), tile_size, "transform_parallel_binary",
                        columns=_device().cols * num_channels, pass_size=pass_size_to_kernel)


def reduce(func, input_ty, output_ty, *, trace_size: int = 0):
    """One kernel call ``func(input, output, N)`` over the whole input tensor."""
    if not isinstance(func, Kernel):
        raise DesignError("algorithms.reduce needs a kernel (ExternalFunction)")
    n = type_numel(input_ty)
    of_in, of_out = ObjectFifo(input_ty, name="in"), ObjectFifo(output_ty, name="out")

    def core(ci, co, k):
        y = co.acquire(1)
        x = ci.acquire(1)
        k(x, y, n)
        ci.release(1)
        co.release(1)

    def seq(a, c, hi, ho):
        hi.fill(a)
        ho.drain(c, wait=True)
    rt = Runtime(seq, [input_ty, output_ty, of_in.prod(), of_out.cons()])
    w = Worker(core, [of_in.cons(), of_out.prod(), func])
    return Program(_device(), rt, workers=[w]).resolve_program()


def module_attrs() -> dict:
    names = ("for_each", "transform", "transform_binary", "transform_parallel",
             "transform_parallel_binary", "reduce")
    d = {k: globals()[k] for k in names}

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise DesignError(f"aie.iron.algorithms.{name} is not emulated")
    d["__getattr__"] = __getattr__
    return d
