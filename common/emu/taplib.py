"""Tensor access patterns (``aie.helpers.taplib``): walks, tiling, padding."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .errors import DesignError


def _ints(xs) -> list[int]:
    return [int(x) for x in xs]


_WALK_CACHE: dict = {}
_WALK_CACHE_SIZE = 256

class TensorAccessPattern:
    """A strided walk over a tensor: step k visits ``offset + sum(i_j * strides_j)``."""

    def __init__(self, tensor_dims, offset=0, sizes=None, strides=None, padding=None):
        self.tensor_dims = tuple(_ints(tensor_dims))
        self.offset = int(offset)
        self.sizes = _ints(self.tensor_dims if sizes is None else sizes)
        if strides is None:      # intermediate taplib: row-major strides of ``sizes``
            strides = [int(np.prod(self.sizes[i + 1:], dtype=np.int64))
                       for i in range(len(self.sizes))]
        self.strides = _ints(strides)
        if len(self.sizes) != len(self.strides):
            raise DesignError(f"sizes {self.sizes} and strides {self.strides} differ in rank")
        if any(s < 0 for s in self.sizes):
            raise DesignError(f"negative size in {self.sizes}")
        self.padding = None if padding is None else [(int(a), int(b)) for a, b in padding]
        if self.padding is not None and len(self.padding) != len(self.sizes):
            raise DesignError("padding needs one (before, after) pair per walk dimension")
        self._walk = None

    # ---- construction helpers -------------------------------------------------
    @classmethod
    def full(cls, tensor_dims) -> "TensorAccessPattern":
        """Row-major walk of the whole tensor."""
        dims = _ints(tensor_dims if isinstance(tensor_dims, (tuple, list)) else (tensor_dims,))
        strides = [int(np.prod(dims[i + 1:], dtype=np.int64)) for i in range(len(dims))]
        return cls(dims, 0, dims, strides)

    @classmethod
    def from_slice(cls, shape, key) -> "TensorAccessPattern":
        return cls.full(shape)[key]

    def _new(self, offset, sizes, strides, padding=None) -> "TensorAccessPattern":
        return TensorAccessPattern(self.tensor_dims, offset, sizes, strides, padding)

    # ---- properties -------------------------------------------------------------
    @property
    def rank(self) -> int:
        return len(self.sizes)

    @property
    def numel(self) -> int:
        return int(np.prod(self.padded_sizes, dtype=np.int64))

    @property
    def padded_sizes(self) -> list[int]:
        if self.padding is None:
            return list(self.sizes)
        return [a + n + b for n, (a, b) in zip(self.sizes, self.padding)]

    @property
    def transformation_dims(self):
        return tuple(zip(self.sizes, self.strides))

    @property
    def is_symbolic(self) -> bool:
        return False

    @property
    def tensor_numel(self) -> int:
        return int(np.prod(self.tensor_dims, dtype=np.int64))

    # ---- the walk ---------------------------------------------------------------
    def walk(self) -> np.ndarray:
        """Flat tensor index of every stream step (``-1`` for pad positions).

        Walks are shared between equal patterns (a runtime sequence builds new pattern
        objects on every run), through a small module-level cache of read-only arrays.
        """
        if self._walk is None:
            key = (tuple(self.tensor_dims), self.offset, tuple(self.sizes), tuple(self.strides),
                   None if self.padding is None else tuple(map(tuple, self.padding)))
            cached = _WALK_CACHE.get(key)
            if cached is not None:
                self._walk = cached
                return cached
            idx = np.full((), self.offset, dtype=np.int64)
            for n, s in zip(self.sizes, self.strides):
                idx = idx[..., None] + np.arange(n, dtype=np.int64) * s
            if self.padding is not None:
                full = np.full(self.padded_sizes, -1, dtype=np.int64)
                box = tuple(slice(a, a + n) for n, (a, _) in zip(self.sizes, self.padding))
                full[box] = idx
                idx = full
            w = idx.reshape(-1)
            real = w[w >= 0]
            if real.size and (real.max() >= self.tensor_numel or real.min() < 0):
                raise DesignError(
                    f"access pattern offset={self.offset} sizes={self.sizes} strides={self.strides} "
                    f"reaches element {int(real.max())} outside tensor {self.tensor_dims}")
            w.setflags(write=False)
            self._walk = w
            if len(_WALK_CACHE) >= _WALK_CACHE_SIZE:
                _WALK_CACHE.pop(next(iter(_WALK_CACHE)))
            _WALK_CACHE[key] = w
        return self._walk

    def contiguous_start(self) -> int | None:
        """First element when the walk visits one contiguous range in order (no padding),
        so a transfer is a plain slice copy; None otherwise."""
        if self.padding is not None:
            return None
        expect = 1
        for n, st in zip(reversed(self.sizes), reversed(self.strides)):
            if n == 0:
                return self.offset
            if n != 1:
                if st != expect:
                    return None
                expect *= n
        return self.offset

    def access_generator(self) -> Iterator[int]:
        return iter(int(i) for i in self.walk())

    def access_order(self) -> np.ndarray:
        out = np.full(self.tensor_numel, -1, dtype=np.int32)
        w = self.walk()
        steps = np.arange(w.size, dtype=np.int32)
        m = w >= 0
        out[w[m]] = steps[m]  # later steps overwrite earlier ones
        return out.reshape(self.tensor_dims)

    def access_count(self) -> np.ndarray:
        w = self.walk()
        return np.bincount(w[w >= 0], minlength=self.tensor_numel).astype(np.int32).reshape(
            self.tensor_dims)

    def accesses(self):
        return self.access_order(), self.access_count()

    def compare_access_orders(self, other) -> bool:
        return np.array_equal(self.access_order(), other.access_order())

    def visualize(self, *args, **kwargs) -> None:
        """No-op in the emulator (no plotting)."""

    def to_stream(self, tensor, pad_value=0) -> np.ndarray:
        """``stream[k] = tensor.flat[walk[k]]``; pad positions get ``pad_value``."""
        flat = np.asarray(tensor).reshape(-1)
        w = self.walk()
        if self.padding is None:
            return flat[w]
        out = np.full(w.size, pad_value, dtype=flat.dtype)
        m = w >= 0
        out[m] = flat[w[m]]
        return out

    gather = to_stream

    def from_stream(self, stream, out=None) -> np.ndarray:
        """Write ``out.flat[walk[k]] = stream[k]`` (unpadded walks only)."""
        if self.padding is not None:
            raise DesignError("from_stream of a padded access pattern")
        stream = np.asarray(stream).reshape(-1)
        if out is None:
            out = np.zeros(self.tensor_dims, dtype=stream.dtype)
        out.reshape(-1)[self.walk()] = stream[: self.walk().size]
        return out

    scatter = from_stream

    # ---- transformations --------------------------------------------------------
    def pad(self, padding) -> "TensorAccessPattern":
        return self._new(self.offset, self.sizes, self.strides, padding)

    def repeat(self, count: int) -> "TensorAccessPattern":
        return self._new(self.offset, [int(count)] + self.sizes, [0] + self.strides,
                         None if self.padding is None else [(0, 0)] + self.padding)

    def permute(self, axes) -> "TensorAccessPattern":
        axes = _ints(axes)
        return self._new(self.offset, [self.sizes[a] for a in axes],
                         [self.strides[a] for a in axes],
                         None if self.padding is None else [self.padding[a] for a in axes])

    @property
    def T(self) -> "TensorAccessPattern":
        return self.permute(list(range(self.rank))[::-1])

    def split(self, dim: int, inner: int) -> "TensorAccessPattern":
        dim %= self.rank
        n, s = self.sizes[dim], self.strides[dim]
        if n % inner:
            raise DesignError(f"split: size {n} not divisible by {inner}")
        sizes = self.sizes[:dim] + [n // inner, inner] + self.sizes[dim + 1:]
        strides = self.strides[:dim] + [s * inner, s] + self.strides[dim + 1:]
        return self._new(self.offset, sizes, strides)

    def merge(self, dim: int) -> "TensorAccessPattern":
        dim %= self.rank
        if self.strides[dim] != self.strides[dim + 1] * self.sizes[dim + 1]:
            raise DesignError("merge: dimensions are not contiguous")
        sizes = self.sizes[:dim] + [self.sizes[dim] * self.sizes[dim + 1]] + self.sizes[dim + 2:]
        strides = self.strides[:dim] + [self.strides[dim + 1]] + self.strides[dim + 2:]
        return self._new(self.offset, sizes, strides)

    def coalesce(self) -> "TensorAccessPattern":
        dims = [(n, s) for n, s in zip(self.sizes, self.strides) if n != 1]
        out: list[list[int]] = []
        for n, s in dims:
            if out and out[-1][1] == s * n:
                out[-1] = [out[-1][0] * n, s]
            else:
                out.append([n, s])
        if not out:
            out = [[1, 1]]
        return self._new(self.offset, [d[0] for d in out], [d[1] for d in out])

    def inverse(self) -> "TensorAccessPattern":
        """Walk that reads the walked stream back in tensor row-major order."""
        n = self.rank
        ss = [int(np.prod(self.sizes[j + 1:], dtype=np.int64)) for j in range(n)]
        order = sorted(range(n), key=lambda j: -self.strides[j])
        return TensorAccessPattern(tuple(self.sizes), 0, [self.sizes[j] for j in order],
                                   [ss[j] for j in order])

    def tile(self, tile_dims) -> "TileGrid":
        tile_dims = _ints(tile_dims)
        if len(tile_dims) != self.rank:
            raise DesignError(f"tile dims {tile_dims} do not match rank {self.rank}")
        for n, t in zip(self.sizes, tile_dims):
            if t <= 0 or n % t:
                raise DesignError(f"tile size {t} does not divide {n}")
        return TileGrid(self, tile_dims)

    def tile_sequence(self, tile_dims, step_dims=None, repeat_dims=None, dim_order=None,
                      tile_dim_order=None, repeat_dim_order=None,
                      pattern_repeat: int = 1) -> "TileGrid":
        """Intermediate taplib API, mapped onto ``tile()``: tiles of ``tile_dims`` visited in
        ``dim_order``, each walked in ``tile_dim_order``, grouped ``repeat_dims`` at a time
        every ``step_dims`` tiles, the whole walk repeated ``pattern_repeat`` times."""
        rank = self.rank
        g = self.tile(tile_dims)
        if tile_dim_order is not None and list(tile_dim_order) != list(range(rank)):
            g = g.permute_tile(tile_dim_order)
        if dim_order is not None and list(dim_order) != list(range(rank)):
            g = g.order(list(dim_order))
        if repeat_dims is not None or step_dims is not None:
            order = "row"
            if repeat_dim_order is not None and list(repeat_dim_order) != list(range(rank)):
                if list(repeat_dim_order) != list(range(rank))[::-1]:
                    raise DesignError(f"tile_sequence: repeat_dim_order {repeat_dim_order} "
                                      f"is not supported (row or column order only)")
                order = "col"
            g = g.group(repeat_dims or [1] * rank, steps=step_dims, order=order, partial=True)
        return g.repeat(pattern_repeat) if int(pattern_repeat) != 1 else g

    def partition(self, parts: int, dim: int = -1) -> "TileGrid":
        dim %= self.rank
        t = list(self.sizes)
        if t[dim] % parts:
            raise DesignError(f"partition: {t[dim]} not divisible by {parts}")
        t[dim] //= parts
        return self.tile(t)

    def __getitem__(self, key) -> "TensorAccessPattern":
        if not isinstance(key, tuple):
            key = (key,)
        n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
        if Ellipsis in key:
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.rank - n_real) + key[i + 1:]
        else:
            key = key + (slice(None),) * (self.rank - n_real)
        offset, sizes, strides, d = self.offset, [], [], 0
        for k in key:
            if k is None:
                sizes.append(1)
                strides.append(0)
                continue
            n, s = self.sizes[d], self.strides[d]
            if isinstance(k, slice):
                a, b, c = k.indices(n)
                if c <= 0:
                    raise DesignError("negative slice steps are not supported")
                sizes.append(len(range(a, b, c)))
                strides.append(s * c)
                offset += a * s
            else:
                i = int(k)
                if i < 0:
                    i += n
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for size {n}")
                offset += i * s
            d += 1
        return self._new(offset, sizes, strides)

    def __iter__(self):
        for i in range(self.sizes[0] if self.sizes else 0):
            yield self[i]

    def __eq__(self, other) -> bool:
        if not isinstance(other, TensorAccessPattern):
            return NotImplemented
        a, b = self.coalesce(), other.coalesce()
        return (self.tensor_dims == other.tensor_dims and a.offset == b.offset
                and a.sizes == b.sizes and a.strides == b.strides
                and self.padding == other.padding)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        pad = "" if self.padding is None else f", padding={self.padding}"
        return (f"TensorAccessPattern({self.tensor_dims}, offset={self.offset}, "
                f"sizes={self.sizes}, strides={self.strides}{pad})")


class TensorAccessSequence:
    """An ordered list of access patterns whose walks are concatenated."""

    def __init__(self, taps: Sequence[TensorAccessPattern] = ()):
        self._taps = list(taps)

    @classmethod
    def from_taps(cls, taps) -> "TensorAccessSequence":
        return cls(taps)

    def _all(self) -> list[TensorAccessPattern]:
        return self._taps

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self):
        return iter(self._all())

    def __getitem__(self, i):
        return self._all()[i]

    def append(self, tap) -> None:
        self._taps.append(tap)

    def _walk(self) -> np.ndarray:
        return np.concatenate([t.walk() for t in self._all()])

    def access_order(self) -> np.ndarray:
        taps = self._all()
        out = np.full(taps[0].tensor_numel, -1, dtype=np.int32)
        w = self._walk()
        m = w >= 0
        out[w[m]] = np.arange(w.size, dtype=np.int32)[m]
        return out.reshape(taps[0].tensor_dims)

    def access_count(self) -> np.ndarray:
        taps = self._all()
        w = self._walk()
        return np.bincount(w[w >= 0], minlength=taps[0].tensor_numel).astype(np.int32).reshape(
            taps[0].tensor_dims)

    def accesses(self):
        return self.access_order(), self.access_count()

    def compare_access_orders(self, other) -> bool:
        return np.array_equal(self.access_order(), other.access_order())

    def visualize(self, *args, **kwargs) -> None:
        """No-op in the emulator."""


class TileGrid(TensorAccessSequence):
    """Grid of tiles over a base pattern (result of ``tile()``/``partition()``)."""

    def __init__(self, base: TensorAccessPattern, tile_dims: list[int]):
        super().__init__()
        self.base = base
        r = base.rank
        self.grid_shape = [n // t for n, t in zip(base.sizes, tile_dims)]
        self.grid_strides = [s * t for s, t in zip(base.strides, tile_dims)]
        self.tile_shape = list(tile_dims)
        self.tile_strides = list(base.strides)
        self._order = list(range(r))          # last entry varies fastest
        self._group = None                    # (repeats, steps, order, partial)
        self._repeat = 1
        self._cache = None

    def _copy(self) -> "TileGrid":
        g = TileGrid.__new__(TileGrid)
        g.__dict__.update(self.__dict__)
        g._order = list(self._order)
        g.tile_shape = list(self.tile_shape)
        g.tile_strides = list(self.tile_strides)
        g._taps = []
        g._cache = None
        return g

    @property
    def is_grouped(self) -> bool:
        return self._group is not None

    def order(self, order="row") -> "TileGrid":
        g = self._copy()
        r = len(self.grid_shape)
        if order == "row":
            g._order = list(range(r))
        elif order == "col":
            g._order = list(range(r))[::-1]
        else:
            g._order = _ints(order)
        return g

    def permute_tile(self, axes) -> "TileGrid":
        g = self._copy()
        axes = _ints(axes)
        g.tile_shape = [self.tile_shape[a] for a in axes]
        g.tile_strides = [self.tile_strides[a] for a in axes]
        return g

    def repeat(self, count: int) -> "TileGrid":
        g = self._copy()
        g._repeat = self._repeat * int(count)
        return g

    def group(self, repeats, steps=None, order="row", partial=False) -> "TileGrid":
        r = len(self.grid_shape)
        repeats = _ints(repeats)
        steps = [1] * r if steps is None else _ints(steps)
        if not partial:
            for G, R, S in zip(self.grid_shape, repeats, steps):
                if G % (R * S):
                    raise DesignError(f"group: {G} tiles not divisible by {R}x{S}")
        g = self._copy()
        g._group = (repeats, steps, order, bool(partial))
        return g

    # ---- per-axis grouping -----------------------------------------------------
    def _axis_positions(self, a: int) -> list[tuple[int, int]]:
        """(first tile, group size) of every grid position along axis ``a``."""
        G = self.grid_shape[a]
        if self._group is None:
            return [(p, 1) for p in range(G)]
        R, S = self._group[0][a], self._group[1][a]
        out, p = [], 0
        while True:
            first = (p // S) * S * R + p % S
            if first >= G:
                if p % S == 0:
                    break
                p += 1
                continue
            size = min(R, -(-(G - first) // S))
            out.append((first, size))
            p += 1
        return out

    def _positions(self):
        if self._cache is None:
            axes = [self._axis_positions(a) for a in range(len(self.grid_shape))]
            self._cache = axes
        return self._cache

    @property
    def shape(self) -> list[int]:
        return [len(p) for p in self._positions()]

    @property
    def num_steps(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def _tile_at(self, pos: Sequence[int]) -> TensorAccessPattern:
        axes = self._positions()
        offset = self.base.offset
        rep_sizes, rep_strides = [], []
        for a, p in enumerate(pos):
            first, size = axes[a][p]
            offset += first * self.grid_strides[a]
            if self._group is not None and size != 1:
                rep_sizes.append(size)
                rep_strides.append(self.grid_strides[a] * self._group[1][a])
        if self._group is not None and self._group[2] == "col":
            rep_sizes, rep_strides = rep_sizes[::-1], rep_strides[::-1]
        sizes = rep_sizes + list(self.tile_shape)
        strides = rep_strides + list(self.tile_strides)
        if self._repeat != 1:
            sizes, strides = [self._repeat] + sizes, [0] + strides
        return TensorAccessPattern(self.base.tensor_dims, offset, sizes, strides)

    def _step_to_pos(self, step: int) -> list[int]:
        shape = self.shape
        pos = [0] * len(shape)
        for a in reversed(self._order):
            pos[a] = step % shape[a]
            step //= shape[a]
        return pos

    def _all(self) -> list[TensorAccessPattern]:
        if not self._taps:
            self._taps = [self._tile_at(self._step_to_pos(k)) for k in range(self.num_steps)]
        return self._taps

    def __len__(self) -> int:
        return self.num_steps

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self._tile_at([int(k) for k in key])
        if isinstance(key, slice):
            return self._all()[key]
        k = int(key)
        if k < 0:
            k += self.num_steps
        if not 0 <= k < self.num_steps:
            raise IndexError(f"step {key} out of range ({self.num_steps} steps)")
        return self._tile_at(self._step_to_pos(k))

    @property
    def tap(self) -> TensorAccessPattern:
        if self._group is not None:
            raise DesignError("TileGrid.tap is only defined for ungrouped grids")
        gs = [self.grid_shape[a] for a in self._order]
        gst = [self.grid_strides[a] for a in self._order]
        sizes, strides = gs + list(self.tile_shape), gst + list(self.tile_strides)
        if self._repeat != 1:
            sizes, strides = [self._repeat] + sizes, [0] + strides
        return TensorAccessPattern(self.base.tensor_dims, self.base.offset, sizes, strides)

    def inverse(self) -> TensorAccessPattern:
        return self.tap.inverse()


class TensorTiler2D:
    """v1.x tiler, emulated with the migration rules onto ``TileGrid``."""

    @staticmethod
    def _chain(dims, tile_dims, tile_col_major, iter_col_major, pattern_repeat):
        g = TensorAccessPattern.full(dims).tile(tile_dims or dims)
        if tile_col_major:
            g = g.permute_tile((1, 0))
        if iter_col_major:
            g = g.order("col")
        return g

    @staticmethod
    def simple_tiler(tensor_dims, tile_dims=None, tile_col_major=False, iter_col_major=False,
                     pattern_repeat=1, prune_step=True) -> TileGrid:
        g = TensorTiler2D._chain(tensor_dims, tile_dims, tile_col_major, iter_col_major, 1)
        return g.repeat(pattern_repeat) if pattern_repeat != 1 else g

    @staticmethod
    def group_tiler(tensor_dims, tile_dims, tile_group_dims=(1, 1), tile_col_major=False,
                    tile_group_col_major=False, iter_col_major=False, pattern_repeat=1,
                    allow_partial=False, prune_step=True) -> TileGrid:
        g = TensorTiler2D._chain(tensor_dims, tile_dims, tile_col_major, iter_col_major, 1)
        g = g.group(tile_group_dims, order="col" if tile_group_col_major else "row",
                    partial=allow_partial)
        return g.repeat(pattern_repeat) if pattern_repeat != 1 else g

    @staticmethod
    def step_tiler(tensor_dims, tile_dims, tile_group_repeats, tile_group_steps=(1, 1),
                   tile_col_major=False, tile_group_col_major=False, iter_col_major=False,
                   allow_partial=False, pattern_repeat=1, prune_step=True) -> TileGrid:
        g = TensorTiler2D._chain(tensor_dims, tile_dims, tile_col_major, iter_col_major, 1)
        g = g.group(tile_group_repeats, steps=tile_group_steps,
                    order="col" if tile_group_col_major else "row", partial=allow_partial)
        return g.repeat(pattern_repeat) if pattern_repeat != 1 else g


def dims_to_tap(dims, numel: int) -> TensorAccessPattern:
    """Convert a v1.x ``[(size, stride), ...]`` list into a pattern over ``numel`` elements.

    The DMA moves the whole object (its BD length) and its outermost address dimension
    has no wrap, so a list whose walk is shorter than the object keeps stepping along its
    outermost dimension until the object is covered: ``[(m // r, r * n), (r, t),
    (n // t, r * t), (t, 1)]`` walks every ``m``-row block of a taller object. A walk that
    is contiguous once size-1 dimensions are dropped (``[(1, 2), (1, 1)]``) is lowered to a
    linear transfer of the whole object.
    """
    if isinstance(dims, TensorAccessPattern):
        return dims
    sizes = [int(d[0]) for d in dims]
    strides = [int(d[1]) for d in dims]
    if not sizes:
        return TensorAccessPattern.full((numel,))
    tap = TensorAccessPattern((numel,), 0, sizes, strides)
    n = int(np.prod(sizes, dtype=np.int64))
    if 0 < n < numel:
        c = tap.coalesce()
        if len(c.sizes) == 1 and c.strides[0] == 1:      # a linear walk: a linear BD
            return TensorAccessPattern.full((numel,))
        inner = int(np.prod(sizes[1:], dtype=np.int64))
        if numel % inner:
            raise DesignError(f"dims {list(zip(sizes, strides))} walk {n} elements; they "
                              f"cannot be extended to cover an object of {numel} elements")
        tap = TensorAccessPattern((numel,), 0, [numel // inner] + sizes[1:], strides)
        tap.walk()          # raises if the extended walk leaves the object
    return tap


# Compatibility aliases for intermediate taplib revisions.
Layout = TensorAccessPattern
