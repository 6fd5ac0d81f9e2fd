"""numpy type helpers (``aie.helpers.util``): shapes/dtypes of ``np.ndarray[...]`` aliases."""
from __future__ import annotations

import numpy as np

from .errors import DesignError


def is_array_type(t) -> bool:
    return getattr(t, "__origin__", None) is np.ndarray


def is_scalar_type(t) -> bool:
    return isinstance(t, type) and issubclass(t, np.generic)


def np_ndarray_type_get_shape(t) -> tuple[int, ...]:
    if not is_array_type(t):
        raise DesignError(f"{t!r} is not an np.ndarray[shape, np.dtype[T]] type")
    shape = t.__args__[0]
    if isinstance(shape, int):
        shape = (shape,)
    return tuple(int(s) for s in shape)


def np_ndarray_type_get_dtype(t) -> np.dtype:
    if not is_array_type(t):
        raise DesignError(f"{t!r} is not an np.ndarray[shape, np.dtype[T]] type")
    dt = t.__args__[1]
    inner = getattr(dt, "__args__", None)
    return np.dtype(inner[0] if inner else dt)


def type_numel(t) -> int:
    return int(np.prod(np_ndarray_type_get_shape(t), dtype=np.int64))


def type_nbytes(t) -> int:
    return type_numel(t) * np_ndarray_type_get_dtype(t).itemsize


def type_str(t) -> str:
    if is_array_type(t):
        shp = "x".join(str(s) for s in np_ndarray_type_get_shape(t))
        return f"{shp}x{np_ndarray_type_get_dtype(t).name}"
    if is_scalar_type(t):
        return np.dtype(t).name
    return repr(t)


def flatten_fn_args(args) -> list:
    out = []
    for a in args or []:
        if isinstance(a, (list, tuple)):
            out.extend(flatten_fn_args(a))
        else:
            out.append(a)
    return out


_DTYPES = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
           "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "f32": np.float32,
           "f64": np.float64, "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32}


def str_to_dtype(s: str):
    if s == "bf16":
        try:
            import ml_dtypes
            return ml_dtypes.bfloat16
        except ImportError as e:  # pragma: no cover
            raise DesignError("bf16 needs the ml_dtypes package") from e
    return _DTYPES[s]


def dtype_to_str(d) -> str:
    d = np.dtype(d)
    for k, v in _DTYPES.items():
        if np.dtype(v) == d and not k.startswith("ui"):
            return k
    if d.name == "bfloat16":
        return "bf16"
    raise DesignError(f"no string for dtype {d}")


def wrap_scalar(v, dt: np.dtype):
    """Convert a Python number to numpy scalar ``dt`` with C-like integer wrap-around."""
    if isinstance(v, np.generic) and v.dtype == dt:
        return v
    if dt.kind in "iu" and isinstance(v, (int, np.integer)):
        bits = dt.itemsize * 8
        v = int(v) & ((1 << bits) - 1)
        if dt.kind == "i" and v >= 1 << (bits - 1):
            v -= 1 << bits
    return dt.type(v)
