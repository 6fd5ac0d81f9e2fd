"""Tile memory of ObjectFifos, counted as mlir-aie's objectfifo lowering allocates it.

Rules (facts from ``AIEObjectFifoStatefulTransform.cpp``: ``requiresDMAs``,
``findObjectFifoSize``, ``createObjectFifoElements``; IRON's ``ObjectFifo._get_depths``):

* IRON gives the compiler one depth when the producer and every consumer handle declare
  the same depth, else the list ``[producer, consumer 0, ...]``.
* A fifo with one consumer on the same or a neighbouring compute tile, no access patterns,
  no ``via_DMA``/``repeat_count``/``consumer_obj_type``, needs no DMA: its two ends share
  ONE pool of (producer) depth buffers, on the producer's tile (on the consumer's when the
  consumer sits directly west of the producer: only the producer's core reaches it).
* Otherwise every end has its own pool. A compute-tile end of a one-depth fifo gets
  ``largest acquire + 1`` buffers (1 when the largest acquire and the depth are both 1;
  the declared depth when its core never acquires it, or, at the producer end, when the
  fifo has ``init_values``). With per-end depths every end keeps its declared depth.
* A memtile end keeps its declared depth, and a link (forward / split / join) allocates
  one pool for its fifos: the input's for a split, the output's for a join, for a forward
  the fifo with the larger object (the input when equal or when the output pads, the
  output when it has ``init_values``).
* A shim end holds no tile memory (its buffers are host memory).

The largest acquire of each worker end comes from the core function's source (the
compiler reads it from the traced core); where the source does not show it (a handle
passed on to a helper, a count that is not a constant) the end keeps its declared depth.
"""
from __future__ import annotations

import ast
import inspect
import operator
import textwrap
from dataclasses import dataclass

from .device import KIND_COMPUTE, KIND_SHIM
from .fifo import Link
from .util import flatten_fn_args
from .worker import Worker

UNKNOWN = None


@dataclass
class Pool:
    """One pool of object buffers on one tile."""
    tile: tuple
    what: str          # "fifo 'x' cons", "fifo 'x' shared", "forward link of 'x'" ...
    count: int
    obj_bytes: int
    fifo: str          # name of the fifo whose buffers these are

    @property
    def nbytes(self) -> int:
        return self.count * self.obj_bytes

    def label(self) -> str:
        return f"{self.what} {self.count}x{self.obj_bytes} B"


# ---- largest acquire per worker end, from the core function's source -------------------
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def _const_int(node, env: dict):
    """Value of an integer expression made of literals and names bound to ints, or None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        v = env.get(node.id)
        return int(v) if isinstance(v, int) and not isinstance(v, bool) else None
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _const_int(node.left, env), _const_int(node.right, env)
        if a is None or b is None or (b == 0 and type(node.op) in (ast.FloorDiv, ast.Mod)):
            return None
        return _BINOPS[type(node.op)](a, b)
    return None


def _function_node(fn):
    try:
        src = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                node.name == getattr(fn, "__name__", None):
            return node
    return None


def largest_acquires(w: Worker) -> dict:
    """``id(handle) -> largest acquire count`` (0: never acquired, None: not readable)
    for the fifo handles among worker ``w``'s arguments."""
    handles = [a for a in flatten_fn_args(w.fn_args) if hasattr(a, "is_prod")]
    out = {id(h): 0 for h in handles}
    if not handles:
        return out
    node = _function_node(w.core_fn)
    if node is None:
        return {k: UNKNOWN for k in out}
    params = [a.arg for a in node.args.args]
    groups: dict[str, list] = {}
    for name, arg in zip(params, w.fn_args):
        hs = [a for a in flatten_fn_args([arg]) if hasattr(a, "is_prod")]
        if hs:
            groups[name] = hs
    try:
        cv = inspect.getclosurevars(w.core_fn)
        env = {**cv.globals, **cv.nonlocals}
    except (TypeError, ValueError):
        env = {}
    for n in ast.walk(node):                 # `for x in handle_list:` aliases the list
        if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and \
                isinstance(n.iter, ast.Name) and n.iter.id in groups:
            groups.setdefault(n.target.id, groups[n.iter.id])
    ok_uses: set = set()          # Name nodes read as `h.acquire/release` receivers or loop lists
    for n in ast.walk(node):
        if isinstance(n, ast.For) and isinstance(n.iter, ast.Name):
            ok_uses.add(id(n.iter))
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("acquire", "release")):
            continue
        recv = n.func.value
        if isinstance(recv, ast.Subscript):
            recv = recv.value
        if not (isinstance(recv, ast.Name) and recv.id in groups):
            continue
        ok_uses.add(id(recv))
        if n.func.attr != "acquire":
            continue
        arg = n.args[-1] if n.args else next(
            (k.value for k in n.keywords if k.arg == "num_elem"), None)
        cnt = 1 if arg is None else _const_int(arg, env)
        for h in groups[recv.id]:
            if out[id(h)] is not UNKNOWN:
                out[id(h)] = UNKNOWN if cnt is None else max(out[id(h)], cnt)
    # a handle name used any other way (passed to a helper, aliased) hides its acquires
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in groups and isinstance(n.ctx, ast.Load) \
                and id(n) not in ok_uses:
            for h in groups[n.id]:
                out[id(h)] = UNKNOWN
    return out


def compute_end_buffers(depth: int, max_acquire) -> int:
    """Buffers of a compute-tile end of a one-depth fifo (``findObjectFifoSize``)."""
    if not max_acquire:
        return depth
    if max_acquire == 1 and depth == 1:
        return 1
    return max_acquire + 1


# ---- the rules --------------------------------------------------------------------------
def bound_ends(plan, f) -> tuple:
    """(producer handle or None, [consumer handles]) of fifo ``f`` that have endpoints
    (the host drains of one fifo counted once)."""
    p = f._prod if f._prod is not None and f._prod.endpoint is not None else None
    cons = []
    for h in f._cons:
        if h.endpoint is None:
            continue
        if not isinstance(h.endpoint, (Worker, Link)) and plan.sink_of.get(f) is not h:
            continue
        cons.append(h)
    return p, cons


def adjacent(a: tuple, b: tuple) -> bool:
    """Same or neighbouring tiles (AIE2 cores reach their own, west, north and south
    neighbours' memory, so any two adjacent compute tiles share one of the two)."""
    return abs(a[0] - b[0]) + abs(a[1] - b[1]) <= 1


def needs_dma(plan, f, ptile, ctiles, cons) -> bool:
    """Whether fifo ``f`` is moved by DMAs (else its ends share memory: ``requiresDMAs``)."""
    if f.via_DMA or f.repeat_count is not None or f.consumer_obj_type is not f.obj_type \
            or getattr(f, "aie_stream", None) is not None:
        return True
    if ptile is None or len(ctiles) != 1 or f.to_stream is not None or f.links:
        return True
    c = ctiles[0]
    if not (plan.kind_at(ptile) == KIND_COMPUTE == plan.kind_at(c) and adjacent(ptile, c)):
        return True
    return any(h.from_stream is not None for h in cons) or f.from_stream_per_cons is not None


def fifo_pools(plan, acquires: dict) -> list[Pool]:
    """Every buffer pool the compiler would allocate for the design's fifos and links."""
    pools: list[Pool] = []
    for f in plan.fifos:
        p, cons = bound_ends(plan, f)
        ptile = plan.tile_of(p) if p is not None else None
        ctiles = [plan.tile_of(h) for h in cons]
        ob = f.numel * f.dtype.itemsize
        if not needs_dma(plan, f, ptile, ctiles, cons):
            c = ctiles[0]
            at = c if (c[1] == ptile[1] and c[0] == ptile[0] - 1) else ptile
            pools.append(Pool(at, f"fifo '{f.name}' shared", p.depth, ob, f.name))
            continue
        depths = ([p.depth] if p is not None else []) + [h.depth for h in cons]
        uniform = len(set(depths)) <= 1
        for h, t in ([(p, ptile)] if p is not None else []) + list(zip(cons, ctiles)):
            if plan.kind_at(t) != KIND_COMPUTE:
                continue                     # memtile: in its link's pool; shim: host memory
            n = h.depth
            if uniform and not (h.is_prod and f.init_values is not None):
                n = compute_end_buffers(h.depth, acquires.get(id(h), 0))
            pools.append(Pool(t, f"fifo '{f.name}' {h.handle_type}", n, h.nbytes, f.name))
    for ln in plan.links:
        t = plan.place[id(ln)]
        if plan.kind_at(t) == KIND_SHIM:
            continue
        src, dst = ln.srcs[0], ln.dsts[0]
        if ln.kind == "split":
            h = src
        elif ln.kind == "join":
            h = dst
        elif dst.fifo.init_values is not None:
            h = dst
        elif src.numel >= dst.numel or dst.fifo.to_stream is not None and \
                dst.fifo.to_stream.padding is not None:
            h = src
        else:
            h = dst
        pools.append(Pool(t, f"{ln.kind} link of {', '.join(repr(x.fifo.name) for x in ln.srcs)}"
                             f" -> {', '.join(repr(x.fifo.name) for x in ln.dsts)}",
                          h.depth, h.nbytes, h.fifo.name))
    return pools


def all_acquires(plan) -> dict:
    """Largest acquire per worker fifo handle, over every worker of the plan."""
    out: dict = {}
    for w in plan.workers:
        if w.core_fn is not None:
            out.update(largest_acquires(w))
    return out


__all__ = ["Pool", "fifo_pools", "all_acquires", "largest_acquires", "compute_end_buffers",
           "needs_dma", "bound_ends"]
