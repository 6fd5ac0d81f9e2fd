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


class RunTimeoutError(EmulationError, TimeoutError):
    """A run went past its time limit (``timeout=`` seconds) and was stopped."""


class IronRuntimeError(DesignError):
    """Misuse of the runtime sequence (task groups, fill/drain placement)."""


class StopRun(BaseException):
    """Internal: raised inside parties to unwind them when a run stops."""


class TimeLimit(BaseException):
    """Internal: raised asynchronously in the running thread when a run's time limit
    expires (a BaseException, so core code catching Exception cannot swallow it)."""
