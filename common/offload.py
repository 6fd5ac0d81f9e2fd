"""Run an offloaded design: on the NPU through pyxrt, or in the project's CPU emulator.

Both backends take the runtime-sequence tensors in order (numpy arrays; the ones the
design drains are overwritten) and return the elapsed seconds of the device call.

The XRT path follows the documented upstream host flow (not verified on hardware here):
``xrt.device(0)``, ``xrt.xclbin(path)``, ``device.register_xclbin``,
``xrt.hw_context(device, uuid)``, ``xrt.kernel(ctx, name)``; instruction buffer in group 1
(``cacheable``), data buffers ``host_only`` in groups 3, 4, ...; call
``kernel(3, insts_bo, n_insts, *bos)``, wait, expect ``ERT_CMD_STATE_COMPLETED``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np


class OffloadError(RuntimeError):
    """The offload cannot run: missing xclbin/instructions, no device, failed command."""


class Offload(Protocol):
    kind: str

    def run(self, tensors: Sequence[np.ndarray], outputs: Sequence[int]) -> float:
        """Run once; tensors[i] for i in outputs are overwritten. Returns seconds."""


def read_instructions(path: str | os.PathLike) -> np.ndarray:
    """NPU instruction stream: insts.bin (raw little-endian uint32) or insts.txt (hex lines)."""
    p = Path(path)
    if not p.is_file():
        raise OffloadError(f"{p}: instruction file not found (build it with `make`)")
    if p.suffix == ".txt":
        try:
            words = [int(line, 16) for line in p.read_text().split() if line.strip()]
        except ValueError as e:
            raise OffloadError(f"{p}: not a hex instruction list ({e})") from None
        arr = np.array(words, dtype=np.uint32)
    else:
        raw = p.read_bytes()
        if len(raw) % 4:
            raise OffloadError(f"{p}: {len(raw)} bytes is not a whole number of uint32 words")
        arr = np.frombuffer(raw, dtype="<u4").astype(np.uint32)
    if arr.size == 0:
        raise OffloadError(f"{p}: empty instruction stream")
    return arr


class XrtOffload:
    """One xclbin + instruction stream on NPU device 0 (pyxrt)."""

    kind = "npu"

    def __init__(self, xclbin: str | os.PathLike, insts: str | os.PathLike,
                 kernel_name: str = "MLIR_AIE", xrt_module=None):
        if not Path(xclbin).is_file():
            raise OffloadError(f"{xclbin}: xclbin not found (build it with `make`)")
        self.insts = read_instructions(insts)
        if xrt_module is None:
            try:
                import pyxrt as xrt_module  # type: ignore[import-not-found,no-redef]
            except ImportError:
                raise OffloadError("pyxrt is not importable: install XRT and source its "
                                   "setup.sh, or run with --emulate") from None
        xrt = xrt_module
        self.xrt = xrt
        try:
            self.device = xrt.device(0)
        except Exception as e:  # noqa: BLE001
            raise OffloadError(f"no NPU device could be opened ({e}); run with --emulate") \
                from None
        xb = xrt.xclbin(str(xclbin))
        names = [k.get_name() for k in xb.get_kernels()]
        if kernel_name not in names:
            raise OffloadError(f"{xclbin}: no kernel {kernel_name!r} (has {names})")
        self.device.register_xclbin(xb)
        self.context = xrt.hw_context(self.device, xb.get_uuid())
        self.kernel = xrt.kernel(self.context, kernel_name)
        self.bo_insts = xrt.bo(self.device, self.insts.nbytes, xrt.bo.cacheable,
                               self.kernel.group_id(1))
        self.bo_insts.write(self.insts.view(np.uint8), 0)
        self.bo_insts.sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE)
        self._bos: list = []

    def _buffers(self, tensors: Sequence[np.ndarray]) -> list:
        if len(self._bos) != len(tensors) or any(
                bo.size() != t.nbytes for bo, t in zip(self._bos, tensors)):
            self._bos = [self.xrt.bo(self.device, t.nbytes, self.xrt.bo.host_only,
                                     self.kernel.group_id(3 + i)) for i, t in enumerate(tensors)]
        return self._bos

    def run(self, tensors: Sequence[np.ndarray], outputs: Sequence[int]) -> float:
        xrt = self.xrt
        bos = self._buffers(tensors)
        for i, (bo, t) in enumerate(zip(bos, tensors)):
            if i not in outputs:
                bo.write(np.ascontiguousarray(t).view(np.uint8).reshape(-1), 0)
                bo.sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE)
        t0 = time.perf_counter()
        run = self.kernel(3, self.bo_insts, self.insts.size, *bos)
        state = run.wait()
        dt = time.perf_counter() - t0
        if state != xrt.ert_cmd_state.ERT_CMD_STATE_COMPLETED:
            raise OffloadError(f"NPU command ended in state {state}")
        for i in outputs:
            bos[i].sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE)
            raw = bos[i].read(tensors[i].nbytes, 0)
            tensors[i].reshape(-1).view(np.uint8)[:] = np.frombuffer(bytes(raw), np.uint8)
        return dt


EMULATOR_DEFAULT = object()     # EmulatedOffload(timeout=): common.emu's default limit


class EmulatedOffload:
    """The same IRON design file run by the project's CPU emulator (common.emu).

    ``tensors`` are used in place and must match the runtime sequence exactly (numpy
    arrays of its dtypes and sizes, C-contiguous; never cast); each run may take
    ``timeout`` seconds (default: the emulator's, 600; None: no limit). Errors are
    common.emu's EmulationError (RunTimeoutError past the limit)."""

    kind = "emulator"

    def __init__(self, design: str | os.PathLike, design_args: Sequence[str],
                 timeout: "float | None | object" = EMULATOR_DEFAULT):
        from common import emu
        from common.emu.runner import DEFAULT_TIMEOUT_S, check_timeout

        self.timeout = check_timeout(DEFAULT_TIMEOUT_S if timeout is EMULATOR_DEFAULT
                                     else timeout)
        self.design = emu.load_design(str(design), list(design_args))

    def run(self, tensors: Sequence[np.ndarray], outputs: Sequence[int]) -> float:
        """Run once; returns the CPU seconds of the calling thread (the emulator runs in
        that one thread, so other work beside it does not inflate the figure)."""
        t0 = time.thread_time()
        self.design.run(*tensors, timeout=self.timeout)
        return time.thread_time() - t0

    @property
    def summary(self):
        """common.emu Summary of the design and its last run (tiles, memory, MACs)."""
        return self.design.summary()
