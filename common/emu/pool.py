"""Many runs of one design in parallel: worker processes, each with its own loaded copy.

An emulated run is single-threaded Python (plus the host kernels), so one process uses
one core. Independent runs (one image each) spread over ``jobs`` processes use the rest:

    with EmulationPool("ptq_conv2x/aie2.py", ["npu", "--bundle", b], jobs=2,
                       fixed={1: weights}) as pool:
        for outs, seconds in pool.imap(([x, None, None] for x in images), outputs=[2]):
            ...

Tensors that are the same for every run (weights) are sent to each process once
(``fixed``: written to a temporary .npy file that each process loads when it starts); a ``None`` in a tensor set stands for the fixed tensor of that position, or
for a zero-filled tensor of the design's declared shape and dtype (outputs). Only the
varying inputs and the outputs cross the process boundary per run.

Processes are started with the ``spawn`` method (no state inherited from a parent that
may hold torch thread pools) and each loads the design once, so starting a pool costs
about a second; results come back in input order, with at most 2 x ``jobs`` chunks of
inputs in flight. An error in a run (deadlock, kernel error, bad input, a design that
does not load, a run past its ``timeout``) is raised in the caller with the worker's
message; a worker that dies (a crash in a kernel) raises EmulationError instead of
leaving the caller waiting.

The worker processes ignore SIGINT: on Ctrl-C (KeyboardInterrupt in the caller while it
iterates ``imap``, or leaving the ``with`` block on any exception) the pool kills them at
once instead of waiting for the runs in flight, and the exception propagates.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import EmulationError
from .runner import DEFAULT_TIMEOUT_S, check_timeout

_DESIGN = None      # the design loaded in this worker process
_LOAD_ERROR: Exception | None = None     # or why it could not be loaded
_FIXED: dict = {}
_TIMEOUT: float | None = None


def _init(path: str, argv: list[str], fixed: dict[int, str], timeout: float | None) -> None:
    global _DESIGN, _LOAD_ERROR, _TIMEOUT
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent stops the pool
    from .design import load_design
    try:
        _DESIGN = load_design(path, argv)
        for i, f in fixed.items():
            _FIXED[i] = np.load(f, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - raised in the caller by the first run
        _LOAD_ERROR = e
    _TIMEOUT = timeout


def _run(tensors: list, outputs: list[int]) -> tuple[list[np.ndarray], float]:
    if _LOAD_ERROR is not None:
        raise _LOAD_ERROR
    specs = _DESIGN.input_specs
    for i, t in enumerate(tensors):
        if t is None:
            t = _FIXED.get(i)
            tensors[i] = t if t is not None else np.zeros(specs[i][1], specs[i][2])
    t0 = time.perf_counter()
    _DESIGN.run(*tensors, timeout=_TIMEOUT)
    return [tensors[i] for i in outputs], time.perf_counter() - t0


def _run_chunk(chunk: list[list], outputs: list[int]) -> list[tuple[list[np.ndarray], float]]:
    return [_run(tensors, outputs) for tensors in chunk]


class EmulationPool:
    """``jobs`` worker processes running design ``path`` (with ``argv``) on request;
    each run within ``timeout`` seconds (None: no limit)."""

    def __init__(self, path: str | os.PathLike, argv: Sequence[str], jobs: int,
                 fixed: dict[int, np.ndarray] | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT_S):
        if jobs < 1:
            raise ValueError(f"jobs={jobs} must be at least 1")
        self.jobs = jobs
        self.path = os.fspath(path)
        timeout = check_timeout(timeout)
        # The fixed tensors go to the workers as files: a large process object would
        # block the parent in Process.start() until the child had imported the main
        # module (seconds with torch), where Ctrl-C leaves a child nobody can kill.
        self._dir = tempfile.mkdtemp(prefix="emulation-pool-")
        try:
            files = {}
            for i, t in (fixed or {}).items():
                files[int(i)] = os.path.join(self._dir, f"fixed{int(i)}.npy")
                np.save(files[int(i)], np.asarray(t), allow_pickle=False)
        except (ValueError, TypeError) as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise EmulationError(f"EmulationPool fixed tensors: {e}") from None
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._ex = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"),
                                       initializer=_init,
                                       initargs=(self.path, [str(a) for a in argv], files,
                                                 timeout))

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

        try:
            for _ in range(2 * self.jobs):
                submit()
            while pending:
                try:
                    results = pending.popleft().result()
                except BrokenProcessPool as e:
                    raise EmulationError(f"an emulator worker process running {self.path} "
                                         f"failed to start or died ({e})") from None
                submit()
                yield from results
        except KeyboardInterrupt:
            self.terminate()
            raise

    def close(self) -> None:
        """Let the runs in flight finish, then stop the worker processes."""
        try:
            self._ex.shutdown(wait=True, cancel_futures=True)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def terminate(self) -> None:
        """Kill the worker processes now (runs in flight are lost) and shut down."""
        procs = list((getattr(self._ex, "_processes", None) or {}).values())
        for p in procs:
            if p.is_alive():
                p.kill()
        try:
            self._ex.shutdown(wait=True, cancel_futures=True)
            for p in procs:
                p.join()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "EmulationPool":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:       # nobody will read the results in flight: do not wait for them
            self.terminate()
