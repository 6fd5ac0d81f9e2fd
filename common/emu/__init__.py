"""CPU emulator for IRON (mlir-aie's Python API for AMD NPU designs).

Public entry points: :func:`load_design`, :func:`run_design`, :class:`Design`,
:func:`register_kernel`, :func:`register_ctypes_kernel`, :func:`emulated_aie`.
"""
from .errors import (DeadlockError, DesignError, EmulationError, KernelError,
                     ResourceError, RunTimeoutError)
from .kernel import (clear_kernels, lookup_kernel, register_ctypes_kernel,
                     register_kernel, unregister_kernel)
from .shim import emulated_aie
from .design import Design, load_design, run_design
from .summary import Summary

__all__ = [
    "EmulationError", "DesignError", "ResourceError", "DeadlockError", "KernelError",
    "RunTimeoutError",
    "register_kernel", "register_ctypes_kernel", "unregister_kernel", "clear_kernels",
    "lookup_kernel", "emulated_aie", "Design", "load_design", "run_design", "Summary",
]
