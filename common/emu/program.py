"""``Program`` and the resolved-program sentinel that the emulator runs."""
from __future__ import annotations

import numpy as np

from .checks import Plan, resolve
from .device import Device
from .errors import DesignError
from .runner import DEFAULT_TIMEOUT_S, RunStats, execute
from .runtime import Runtime

# Every program resolved while a design file loads (the loader takes the last one).
RESOLVED: list = []


class Program:
    """A device, a runtime sequence and the workers that run for the whole program."""

    def __init__(self, device: Device | None, rt: Runtime, workers: list | None = None):
        if device is None:
            raise ValueError("Program needs a device (got None)")
        self.device = device() if isinstance(device, type) else device
        self.rt = rt
        self.workers = list(workers or [])

    def enable_trace(self, *args, **kwargs) -> None:
        """Hardware tracing: ignored by the emulator."""

    @classmethod
    def compose(cls, configurations, *, entry=None):
        raise DesignError("Program.compose (multi-configuration programs) is not emulated")

    def resolve_program(self, placer=None, device_name: str = "main") -> "ResolvedProgram":
        workers = list(self.workers)
        for w in self.rt._workers:
            if w not in workers:
                workers.append(w)
        plan = resolve(self.device, workers, self.rt)
        rp = ResolvedProgram(self, plan)
        RESOLVED.append(rp)
        return rp


class ResolvedProgram:
    """What ``resolve_program()`` returns under the emulator: runnable many times."""

    def __init__(self, program: Program, plan: Plan):
        self.program = program
        self.device = program.device
        self.rt = program.rt
        self.plan = plan

    @property
    def host_slots(self) -> list:
        return self.rt.host_slots

    def prepare_inputs(self, arrays) -> tuple[list, list]:
        """Map positional values to host slots. A tensor is used in place (fills read
        it, drains write into it): it must be a C-contiguous numpy array of the declared
        dtype and element count (any shape); None stands for zeros. Nothing is cast or
        copied, so a wrong array is refused (DesignError) instead of silently converted
        or left unwritten. A scalar must be an integer in range for an integer slot."""
        slots = self.rt.host_slots
        if len(arrays) > len(slots):
            raise DesignError(f"the runtime sequence takes {len(slots)} arguments, got "
                              f"{len(arrays)}")
        tensors, scalars = [], []
        for i, (kind, v) in enumerate(slots):
            a = arrays[i] if i < len(arrays) else None
            if kind == "tensor":
                tensors.append(np.zeros(v.shape, v.dtype) if a is None else
                               _bind_tensor(i, a, v.shape, v.dtype))
            else:
                scalars.append(_bind_scalar(i, 0 if a is None else a, np.dtype(v)))
        return tensors, scalars

    def run_with_stats(self, *arrays, timeout: float | None = DEFAULT_TIMEOUT_S,
                       name: str = "", trace: bool = False,
                       profile: bool = False) -> tuple[list, RunStats]:
        """Run once (``timeout`` seconds at most, None: no limit; ``name`` names the
        design in errors; ``trace=True`` also logs what the timeline replays, slower;
        ``profile=True`` times kernel calls and host DMA copies, see RunStats);
        returns the drained arrays and the run's statistics."""
        tensors, scalars = self.prepare_inputs(arrays)
        try:
            stats = execute(self.plan, self.rt, tensors, scalars, timeout, name, trace,
                            profile)
            outs = [rd._arr for rd in self.rt.tensor_args if rd.drained]
        finally:        # keep no reference to the caller's arrays, whatever happened
            for rd in self.rt.tensor_args:
                rd._arr = None
        return outs, stats

    def run(self, *arrays, timeout: float | None = DEFAULT_TIMEOUT_S) -> list:
        return self.run_with_stats(*arrays, timeout=timeout)[0]

    def as_mlir(self) -> str:
        """No MLIR in the emulator: a one-line description of the program."""
        return str(self)

    def compile(self, xclbin_path: str | None = None, inst_path: str | None = None,
                **paths) -> tuple:
        """Compile-only mode: nothing is built in the emulator (the design resolved);
        returns the ``(xclbin, insts)`` paths asked for, as upstream returns its outputs."""
        return xclbin_path, inst_path

    def __str__(self) -> str:
        p = self.plan
        return (f"// emulated IRON program on {self.device.name}: {len(p.workers)} worker(s), "
                f"{len(p.fifos)} fifo(s), {len(p.links)} link(s)")

    __repr__ = __str__


def _bind_tensor(i: int, a, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Host array ``a`` for tensor argument ``i`` as a view of the declared shape."""
    want = f"{np.dtype(dtype).name} array of {int(np.prod(shape, dtype=np.int64))} elements"
    if not isinstance(a, np.ndarray):
        raise DesignError(f"argument {i}: expected a numpy {want} {tuple(shape)}, got "
                          f"{type(a).__name__}")
    if a.dtype != dtype or a.size != int(np.prod(shape, dtype=np.int64)):
        raise DesignError(f"argument {i}: expected a {want} {tuple(shape)}, got "
                          f"{a.dtype.name} {a.shape} (arrays are used in place, never cast)")
    if not a.flags.c_contiguous:
        raise DesignError(f"argument {i}: the {a.dtype.name} {a.shape} array is not "
                          f"C-contiguous (pass np.ascontiguousarray(...); arrays are used "
                          f"in place)")
    return a.reshape(shape)      # a view: C-contiguous


def _bind_scalar(i: int, a, dtype: np.dtype):
    """Scalar argument ``i`` as a value of ``dtype``, refusing lossy conversions."""
    if dtype.kind in "iu":
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise DesignError(f"argument {i}: expected an integer for the {dtype.name} "
                              f"scalar, got {type(a).__name__} {a!r}")
        info = np.iinfo(dtype)
        if not info.min <= int(a) <= info.max:
            raise DesignError(f"argument {i}: {int(a)} is out of range of the {dtype.name} "
                              f"scalar [{info.min}, {info.max}]")
    return dtype.type(a)


class Placer:
    """v1.x placer base (placement is always done by the emulator's sequential placer)."""

    def make_placement(self, *args, **kwargs) -> None:
        pass


class SequentialPlacer(Placer):
    """v1.x ``SequentialPlacer``; accepted and ignored."""
