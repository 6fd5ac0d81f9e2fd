"""Tile-local memory (``Buffer``; v1.x ``GlobalBuffer``/``LocalBuffer``)."""
from __future__ import annotations

import numpy as np

from .engine import current_party
from .errors import DesignError
from .util import np_ndarray_type_get_dtype, np_ndarray_type_get_shape


class Buffer:
    """Plain tile memory, indexable from core code and (RTP writes) from the sequence."""

    def __init__(self, type=None, initial_value: np.ndarray | None = None, name: str | None = None,
                 tile=None, use_write_rtp: bool = False, address: int | None = None,
                 mem_bank: int | None = None, placement=None):
        if type is None and initial_value is None:
            raise DesignError("Buffer needs a type or an initial_value")
        if type is not None:
            shape, dtype = np_ndarray_type_get_shape(type), np_ndarray_type_get_dtype(type)
        else:
            initial_value = np.asarray(initial_value)
            shape, dtype = initial_value.shape, initial_value.dtype
        self.type = type
        self.name = name
        self._tile = tile if tile is not None else placement
        self.use_write_rtp = use_write_rtp
        self._init = None if initial_value is None else np.array(initial_value, dtype=dtype).reshape(shape)
        self._data = np.zeros(shape, dtype)
        self.reset()
        self.owner = None   # first Worker given this buffer

    def reset(self) -> None:
        """Restore the initial value (done at the start of every run)."""
        if self._init is None:
            self._data.fill(0)
        else:
            self._data[...] = self._init

    @property
    def tile(self):
        return self._tile

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    @property
    def op(self):
        return self._data

    def tiles(self):
        return [self._tile] if self._tile is not None else []

    def __getitem__(self, key):
        return self._data[key]

    def __setitem__(self, key, value) -> None:
        self._data[key] = value

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Buffer({self.name or '?'}, {self._data.shape}, {self._data.dtype})"


class GlobalBuffer(Buffer):
    """v1.x name of :class:`Buffer` (``placement=`` instead of ``tile=``)."""


class LocalBuffer(Buffer):
    """v1.x per-core buffer created inside ``core_fn``: one storage per call site per worker."""

    def __new__(cls, *args, **kwargs):
        p = current_party()
        if p is not None and p.kind == "worker":
            if p.lb_index < len(p.local_bufs):
                b = p.local_bufs[p.lb_index]
                p.lb_index += 1
                b._reuse = True
                return b
            b = super().__new__(cls)
            b._reuse = False
            p.local_bufs.append(b)
            p.lb_index += 1
            return b
        b = super().__new__(cls)
        b._reuse = False
        return b

    def __init__(self, type=None, initial_value=None, name=None, **kwargs):
        if getattr(self, "_reuse", False):
            return
        super().__init__(type, initial_value, name)
