"""Control flow helpers (``range_``, ``if_``/``else_``, ``yield_``) as plain Python."""
from __future__ import annotations

import sys


def range_(start, stop=None, step=None, *, iter_args=None, insert_yield=True):
    """Like ``range``; with ``iter_args`` yields ``(iv, args, results)`` like the real helper."""
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    r = range(int(start), int(stop), int(step))
    if iter_args is None:
        return iter(r)

    def gen():
        args = iter_args[0] if len(iter_args) == 1 else tuple(iter_args)
        for i in r:
            yield i, args, args
    return gen()


_for = for_ = range_


def yield_(values=None) -> None:
    """No-op: loop-carried values are plain Python variables in the emulator."""


class _IfOp:
    def __init__(self, cond):
        self.cond = bool(cond)


class _SkipBody(Exception):
    pass


class if_:
    """``with if_(cond) as op:`` runs the body only when ``cond`` is true (Python values)."""

    def __init__(self, cond, hasElse: bool = True, insert_yield: bool = True):
        self.op = _IfOp(cond)
        self._old = None
        self._skipping = False

    def __enter__(self):
        if not self.op.cond:
            # Skip the with-body: raise on its first line event, swallow it in __exit__.
            self._skipping = True
            self._old = sys.gettrace()
            sys.settrace(self._old or (lambda *a: None))
            sys._getframe(1).f_trace = self._skip
        return self.op

    def _skip(self, frame, event, arg):
        raise _SkipBody()

    def __exit__(self, et, ev, tb):
        if self._skipping:
            sys.settrace(self._old)
            self._skipping = False
        return et is _SkipBody


class else_(if_):
    """``with else_(if_op):`` runs the body only when the ``if_`` condition was false."""

    def __init__(self, if_op):
        cond = if_op.cond if isinstance(if_op, _IfOp) else if_op.op.cond
        super().__init__(not cond)
