"""ObjectFifos, their handles and memtile links (split / join / forward) at design level."""
from __future__ import annotations

from .device import AnyMemTile
from .engine import current_party
from .errors import DesignError, IronRuntimeError
from .taplib import TensorAccessPattern, dims_to_tap
from .util import np_ndarray_type_get_dtype, np_ndarray_type_get_shape, type_numel


def _tap_or_none(x, numel: int):
    if x is None:
        return None
    if isinstance(x, TensorAccessPattern):
        return x
    return dims_to_tap(x, numel)


class ObjectFifo:
    """A bounded FIFO of objects with one producer and one or more consumers."""

    def __init__(self, obj_type, depth=2, name=None, dims_to_stream=None,
                 dims_from_stream_per_cons=None, plio=False, *, to_stream=None,
                 from_stream_per_cons=None, default_depth=None,
                 default_dims_from_stream_per_cons=None, pad_value=0,
                 disable_synchronization=False, repeat_count=None, delegate_tile=None,
                 via_DMA=False, init_values=None, consumer_obj_type=None, aie_stream=None,
                 packet=False, packet_id=None, **kwargs):
        if isinstance(depth, str) and name is None:   # 2024 prototype: name 2nd positional
            depth, name = 2, depth
        if default_depth is not None:
            depth = default_depth
        self.obj_type = obj_type
        self.consumer_obj_type = consumer_obj_type or obj_type
        self.shape = np_ndarray_type_get_shape(obj_type)
        self.dtype = np_ndarray_type_get_dtype(obj_type)
        self.numel = type_numel(obj_type)
        self.cons_numel = type_numel(self.consumer_obj_type)
        if depth is not None and int(depth) < 1:
            raise DesignError(f"ObjectFifo '{name}': depth must be >= 1, got {depth}")
        self._depth = None if depth is None else int(depth)
        self._name = name
        self.to_stream = _tap_or_none(to_stream if to_stream is not None else dims_to_stream,
                                      self.numel)
        fs = from_stream_per_cons
        if fs is None:
            fs = dims_from_stream_per_cons if dims_from_stream_per_cons is not None else \
                default_dims_from_stream_per_cons
        self.from_stream_per_cons = _tap_or_none(fs, self.cons_numel)
        self.pad_value = pad_value
        self.repeat_count = repeat_count
        self.init_values = init_values
        self.disable_synchronization = disable_synchronization
        self.via_DMA = via_DMA
        self._prod: ObjectFifoHandle | None = None
        self._cons: list[ObjectFifoHandle] = []
        self.links: list[Link] = []

    @property
    def depth(self):
        return self._depth

    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, v) -> None:
        self._name = v

    @property
    def dims_to_stream(self):
        return self.to_stream

    def prod(self, depth=None, channel=None, tile=None, placement=None) -> "ObjectFifoHandle":
        if self._prod is None:
            self._prod = ObjectFifoHandle(self, True, depth, None, tile or placement)
        else:
            if depth is not None:
                self._prod._depth = int(depth)
            if tile is not None or placement is not None:
                self._prod.tile = tile or placement
        return self._prod

    def cons(self, depth=None, from_stream=None, channel=None, tile=None, placement=None,
             dims_from_stream=None) -> "ObjectFifoHandle":
        fs = from_stream if from_stream is not None else dims_from_stream
        h = ObjectFifoHandle(self, False, depth, _tap_or_none(fs, self.cons_numel),
                             tile or placement)
        self._cons.append(h)
        return h

    def set_iter_count(self, iter_count: int) -> None:
        if not 1 <= int(iter_count) <= 256:
            raise DesignError(f"ObjectFifo '{self.name}': iter_count must be in [1, 256]")

    def tiles(self, cons_only=False):
        return []

    def __repr__(self) -> str:
        return f"ObjectFifo({self.name!r}, {self.shape}, {self.dtype}, depth={self._depth})"


class ObjectFifoHandle:
    """The producer or one consumer end of an ObjectFifo."""

    def __init__(self, fifo: ObjectFifo, is_prod: bool, depth=None, from_stream=None, tile=None):
        self.fifo = fifo
        self.is_prod = is_prod
        self._depth = None if depth is None else int(depth)
        if self._depth is not None and self._depth < 1:
            raise DesignError(f"fifo '{fifo.name}': depth must be >= 1")
        self.from_stream = from_stream
        self.tile = tile
        self.endpoint = None      # Worker, Link or Runtime
        self._rt = None           # run-time endpoint state (set per run)

    # ---- properties -------------------------------------------------------------
    @property
    def handle_type(self) -> str:
        return "prod" if self.is_prod else "cons"

    @property
    def name(self) -> str | None:
        return self.fifo.name

    @property
    def depth(self) -> int:
        d = self._depth if self._depth is not None else self.fifo._depth
        if d is None:
            raise DesignError(f"fifo '{self.fifo.name}': no depth given for its "
                              f"{self.handle_type} handle nor the fifo")
        return d

    @property
    def obj_type(self):
        return self.fifo.obj_type if self.is_prod else self.fifo.consumer_obj_type

    @property
    def shape(self):
        return np_ndarray_type_get_shape(self.obj_type)

    @property
    def dtype(self):
        return np_ndarray_type_get_dtype(self.obj_type)

    @property
    def numel(self) -> int:
        return self.fifo.numel if self.is_prod else self.fifo.cons_numel

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    @property
    def cons_from_stream(self):
        return self.from_stream if self.from_stream is not None else self.fifo.from_stream_per_cons

    def bind(self, endpoint) -> None:
        if self.endpoint is not None and self.endpoint is not endpoint:
            raise DesignError(f"the {self.handle_type} handle of fifo '{self.fifo.name}' "
                              f"already has an endpoint ({self.endpoint!r})")
        self.endpoint = endpoint

    # ---- core side --------------------------------------------------------------
    def acquire(self, num_elem: int = 1, *args):
        if args:  # v1.x/older: acquire(port, num) forms
            num_elem = args[-1]
        rt = self._rt
        if type(num_elem) is int and rt is not None and 0 < num_elem <= rt.depth:
            return rt.acquire(num_elem)             # the common, valid case
        n = int(num_elem)
        if n < 1:
            raise DesignError(f"acquire({n}) on fifo '{self.fifo.name}': count must be >= 1")
        if n > self.depth:
            raise DesignError(f"acquire({n}) on the {self.handle_type} end of fifo "
                              f"'{self.fifo.name}' exceeds its depth {self.depth}")
        rt = self._rt
        if rt is None:
            raise DesignError(f"acquire on fifo '{self.fifo.name}' outside an emulated run")
        return rt.acquire(n)

    def release(self, num_elem: int = 1, *args) -> None:
        if args:
            num_elem = args[-1]
        rt = self._rt
        if type(num_elem) is int and rt is not None and num_elem > 0:
            rt.release(num_elem)                    # the common, valid case
            return
        k = int(num_elem)
        if k < 0:
            raise DesignError(f"release({k}) on fifo '{self.fifo.name}'")
        rt = self._rt
        if rt is None:
            raise DesignError(f"release on fifo '{self.fifo.name}' outside an emulated run")
        if k:
            rt.release(k)

    # ---- runtime sequence side ----------------------------------------------------
    def fill(self, source, tap=None, wait=False, packet=None, offset_parameter=None,
             group=None, managed=True, length_parameter=None, length_unit=None,
             task_group=None, **kwargs):
        if not self.is_prod:
            raise DesignError(f"fill on the consumer handle of fifo '{self.fifo.name}'")
        return _host_ctl("fill").fill(self, source, tap, wait, group or task_group, managed)

    def drain(self, dest, tap=None, wait=False, packet=None, offset_parameter=None,
              group=None, managed=True, length_parameter=None, length_unit=None,
              task_group=None, **kwargs):
        if self.is_prod:
            raise DesignError(f"drain on the producer handle of fifo '{self.fifo.name}'")
        return _host_ctl("drain").drain(self, dest, tap, wait, group or task_group, managed)

    # ---- links ------------------------------------------------------------------
    def forward(self, tile=AnyMemTile, obj_type=None, depth=None, name=None, to_stream=None,
                from_stream=None, plio=False, repeat_count=None, pad_value=0, channel=None,
                placement=None, dims_to_stream=None, dims_from_stream=None) -> ObjectFifo:
        if self.is_prod:
            raise DesignError(f"forward on the producer handle of fifo '{self.fifo.name}'")
        ot = obj_type or self.fifo.obj_type
        out = ObjectFifo(ot, depth=depth if depth is not None else self.depth,
                         name=name or (f"{self.fifo.name}_fwd" if self.fifo.name else None),
                         to_stream=to_stream if to_stream is not None else dims_to_stream,
                         from_stream_per_cons=from_stream if from_stream is not None
                         else dims_from_stream, repeat_count=repeat_count, pad_value=pad_value)
        Link("forward", [self], [out.prod()], [0], placement or tile)
        return out

    def split(self, offsets, tile=AnyMemTile, depths=None, obj_types=None, names=None,
              to_stream=None, from_stream=None, plio=False, repeat_counts=None,
              pad_value=None, channels=None, placement=None, dims_to_stream=None,
              dims_from_stream=None) -> list[ObjectFifo]:
        if self.is_prod:
            raise DesignError(f"split on the producer handle of fifo '{self.fifo.name}'")
        outs = _make_fifos(self, len(offsets), "split", depths, obj_types, names,
                           to_stream or dims_to_stream, from_stream or dims_from_stream,
                           repeat_counts, pad_value)
        Link("split", [self], [o.prod() for o in outs], list(offsets), placement or tile,
             sized=obj_types is not None)
        return outs

    def join(self, offsets, tile=AnyMemTile, depths=None, obj_types=None, names=None,
             to_stream=None, from_stream=None, plio=False, repeat_counts=None,
             placement=None, dims_to_stream=None, dims_from_stream=None) -> list[ObjectFifo]:
        if not self.is_prod:
            raise DesignError(f"join on a consumer handle of fifo '{self.fifo.name}'")
        ins = _make_fifos(self, len(offsets), "join", depths, obj_types, names,
                          to_stream or dims_to_stream, from_stream or dims_from_stream,
                          repeat_counts, None)
        Link("join", [i.cons() for i in ins], [self], list(offsets), placement or tile)
        return ins

    def __repr__(self) -> str:
        return f"<{self.handle_type} handle of fifo {self.fifo.name!r}>"


def _make_fifos(h: ObjectFifoHandle, n, kind, depths, obj_types, names, to_stream,
                from_stream, repeat_counts, pad_value) -> list[ObjectFifo]:
    out = []
    for i in range(n):
        ot = obj_types[i] if obj_types is not None else h.fifo.obj_type
        nm = names[i] if names is not None else (f"{h.fifo.name}_{kind}{i}" if h.fifo.name else None)
        out.append(ObjectFifo(
            ot, depth=depths[i] if depths is not None else h.depth, name=nm,
            to_stream=to_stream[i] if to_stream is not None else None,
            from_stream_per_cons=from_stream[i] if from_stream is not None else None,
            repeat_count=repeat_counts[i] if repeat_counts is not None else None,
            pad_value=pad_value[i] if isinstance(pad_value, (list, tuple)) else (pad_value or 0)))
    return out


class Link:
    """A memtile data-movement link: one source and several destinations or the reverse."""

    _count = 0

    def __init__(self, kind: str, srcs: list, dsts: list, offsets: list, tile, sized=True):
        if len(srcs) > 1 and len(dsts) > 1:
            raise DesignError("a link may have many sources or many destinations, not both")
        self.kind, self.srcs, self.dsts, self.offsets = kind, srcs, dsts, [int(o) for o in offsets]
        self.tile = tile
        self.sized = sized
        Link._count += 1
        self.index = Link._count
        for h in srcs + dsts:
            h.bind(self)
            h.fifo.links.append(self)

    @property
    def name(self) -> str:
        f = self.srcs[0].fifo if self.kind != "join" else self.dsts[0].fifo
        return f"{self.kind} of '{f.name}'"

    def __repr__(self) -> str:
        return f"<link {self.name}>"


def _host_ctl(what: str):
    p = current_party()
    if p is None or p.kind != "host" or getattr(p.eng, "ctl", None) is None:
        raise IronRuntimeError(f"{what} is only valid inside the runtime sequence body")
    return p.eng.ctl
