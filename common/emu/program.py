"""``Program`` and the resolved-program sentinel that the emulator runs."""
from __future__ import annotations

import numpy as np

from .checks import Plan, resolve
from .device import Device
from .errors import DesignError
from .runner import RunStats, execute
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
        """Map positional values to host slots (tensors copied to the declared type)."""
        slots = self.rt.host_slots
        if len(arrays) > len(slots):
            raise DesignError(f"the runtime sequence takes {len(slots)} arguments, got "
                              f"{len(arrays)}")
        tensors, scalars = [], []
        for i, (kind, v) in enumerate(slots):
            a = arrays[i] if i < len(arrays) else None
            if kind == "tensor":
                if a is None:
                    tensors.append(np.zeros(v.shape, v.dtype))
                else:
                    a = np.asarray(a)
                    if a.size != v.numel:
                        raise DesignError(f"argument {i}: {a.size} elements given, the sequence "
                                          f"declares {v.shape}")
                    if a.dtype == v.dtype and a.flags.c_contiguous and a.flags.writeable:
                        tensors.append(a.reshape(v.shape))   # in place: drains write into it
                    else:
                        tensors.append(np.array(a, dtype=v.dtype, copy=True).reshape(v.shape))
            else:
                scalars.append(np.dtype(v).type(0 if a is None else a))
        return tensors, scalars

    def run_with_stats(self, *arrays, trace: bool = False) -> tuple[list, RunStats]:
        """Run once; ``trace=True`` also logs what the timeline replays (slower)."""
        tensors, scalars = self.prepare_inputs(arrays)
        stats = execute(self.plan, self.rt, tensors, scalars, trace)
        outs = [rd._arr for rd in self.rt.tensor_args if rd.drained]
        for rd in self.rt.tensor_args:
            rd._arr = None
        return outs, stats

    def run(self, *arrays) -> list:
        return self.run_with_stats(*arrays)[0]

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


class Placer:
    """v1.x placer base (placement is always done by the emulator's sequential placer)."""

    def make_placement(self, *args, **kwargs) -> None:
        pass


class SequentialPlacer(Placer):
    """v1.x ``SequentialPlacer``; accepted and ignored."""
