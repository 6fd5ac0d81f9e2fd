"""Many runs of one design in parallel: worker processes, each with its own loaded copy.

An emulated run is single-threaded Python (plus the host kernels), so one process uses
one core. Independent runs (one image each) spread over ``jobs`` processes use the rest:

    with EmulationPool("ptq_conv2x/aie2.py", ["npu", "--bundle", b], jobs=2,
                       fixed={1: weights}) as pool:
        for outs, seconds in pool.imap(([x, None, None] for x in images), outputs=[2]):
            ...

Tensors that are the same for every run (weights) are sent to each process once
(``fixed``); a ``None`` in a tensor set stands for the fixed tensor of that position, or
for a zero-filled tensor of the design's declared shape and dtype (outputs). Only the
varying inputs and the outputs cross the process boundary per run.

Processes are started with the ``spawn`` method (no state inherited from a parent that
may hold torch thread pools) and each loads the design once, so starting a pool costs
about a second; results come back in input order, with at most 2 x ``jobs`` chunks of
inputs in flight. An error in a run (deadlock, kernel error, bad input) is raised in the
caller with the worker's message; a worker that cannot load the design or dies (a crash
in a kernel) raises EmulationError instead of leaving the caller waiting.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import EmulationError

_DESIGN = None      # the design loaded in this worker process
_FIXED: dict = {}


def _init(path: str, argv: list[str], fixed: dict) -> None:
    global _DESIGN
    from .design import load_design
    _DESIGN = load_design(path, argv)
    _FIXED.update(fixed)


def _run(tensors: list, outputs: list[int]) -> tuple[list[np.ndarray], float]:
    specs = _DESIGN.input_specs
    for i, t in enumerate(tensors):
        if t is None:
            t = _FIXED.get(i)
            tensors[i] = t if t is not None else np.zeros(specs[i][1], specs[i][2])
    t0 = time.perf_counter()
    _DESIGN.run(*tensors)
    return [tensors[i] for i in outputs], time.perf_counter() - t0


def _run_chunk(chunk: list[list], outputs: list[int]) -> list[tuple[list[np.ndarray], float]]:
    return [_run(tensors, outputs) for tensors in chunk]


class EmulationPool:
    """``jobs`` worker processes running design ``path`` (with ``argv``) on request."""

    def __init__(self, path: str | os.PathLike, argv: Sequence[str], jobs: int,
                 fixed: dict[int, np.ndarray] | None = None):
        if jobs < 1:
            raise ValueError(f"jobs={jobs} must be at least 1")
        self.jobs = jobs
        self.path = os.fspath(path)
        self._ex = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"),
                                       initializer=_init,
                                       initargs=(self.path, [str(a) for a in argv],
                                                 dict(fixed or {})))

    def imap(self, tensor_sets: Iterable[Sequence[np.ndarray | None]], outputs: Sequence[int],
             chunksize: int = 4) -> Iterator[tuple[list[np.ndarray], float]]:
        """Run once per tensor set (runtime-sequence tensors in order, None: fixed or
        zeros); yields, in input order, the tensors at ``outputs`` after the run and the
        run's seconds."""
        sets = iter(tensor_sets)
        outs = list(outputs)
        pending: deque = deque()

        def submit() -> None:
            chunk = [list(t) for t in itertools.islice(sets, chunksize)]
            if chunk:
                pending.append(self._ex.submit(_run_chunk, chunk, outs))

        for _ in range(2 * self.jobs):
            submit()
        while pending:
            try:
                results = pending.popleft().result()
            except BrokenProcessPool as e:
                raise EmulationError(f"an emulator worker process running {self.path} failed "
                                     f"to start or died ({e})") from None
            submit()
            yield from results

    def close(self) -> None:
        self._ex.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "EmulationPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
