"""Exception hierarchy of the IRON CPU emulator."""
from __future__ import annotations


class EmulationError(Exception):
    """Base class of every error the emulator raises about a design or a run."""


class DesignError(EmulationError, ValueError):
    """The design uses the API wrongly (bad acquire/release, size mismatch, ...)."""


class ResourceError(DesignError):
    """The design does not fit the device (grid, memory, DMA channels, tiles)."""


class DeadlockError(EmulationError):
    """Every party of a run is blocked: nothing can make progress."""


class KernelError(EmulationError):
    """A kernel is missing or raised while a worker called it."""


class IronRuntimeError(DesignError):
    """Misuse of the runtime sequence (task groups, fill/drain placement)."""


class StopRun(BaseException):
    """Internal: raised inside parties to unwind them when a run stops."""
