"""What this machine has for NPU work: mlir-aie (IRON), aiecc, Peano, Chess, XRT, a device.

Each probe is cheap, has no side effects and never raises; ``features()`` gives the set of
names used as lit features and by the Makefiles' messages.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path


def has_module(name: str) -> bool:
    """True if ``name`` is importable (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_mlir_aie() -> bool:
    """The real IRON package (``aie.iron`` from mlir-aie), not the project's emulator."""
    if not has_module("aie"):
        return False
    spec = importlib.util.find_spec("aie")
    origin = str(spec.origin or "") if spec else ""
    return "common/emu" not in origin.replace(os.sep, "/") and has_module("aie.iron")


def aiecc_path() -> str | None:
    """aiecc.py (or aiecc) on PATH."""
    return shutil.which("aiecc.py") or shutil.which("aiecc")


def peano_dir() -> Path | None:
    """Peano (llvm-aie) install: $PEANO_INSTALL_DIR or the llvm-aie Python package."""
    env = os.environ.get("PEANO_INSTALL_DIR")
    if env and (Path(env) / "bin" / "clang").exists():
        return Path(env)
    spec = importlib.util.find_spec("llvm_aie") if has_module("llvm_aie") else None
    if spec and spec.origin:
        d = Path(spec.origin).parent
        if (d / "bin" / "clang").exists():
            return d
    return None


def chess_path() -> str | None:
    """The Chess compiler driver of Vitis (xchesscc) on PATH."""
    return shutil.which("xchesscc")


def has_xrt() -> bool:
    """pyxrt imports (XRT is installed and on PYTHONPATH)."""
    return has_module("pyxrt")


def has_ryzen_ai_npu() -> bool:
    """An NPU device node is present and XRT can open device 0."""
    if not has_xrt() or not any(Path("/dev/accel").glob("accel*")):
        return False
    try:
        import pyxrt  # type: ignore[import-not-found]

        pyxrt.device(0)
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable device
        return False


FEATURES = {
    "mlir_aie": lambda: has_mlir_aie(), "aiecc": lambda: bool(aiecc_path()),
    "peano": lambda: bool(peano_dir()), "chess": lambda: bool(chess_path()),
    "xrt": lambda: has_xrt(), "ryzen_ai": lambda: has_ryzen_ai_npu(),
    "torch": lambda: has_module("torch"), "brevitas": lambda: has_module("brevitas"),
}


def features() -> set[str]:
    """Feature names for lit (the keys of FEATURES) that this machine has."""
    return {name for name, probe in FEATURES.items() if probe()}


if __name__ == "__main__":
    have = features()
    for name in FEATURES:
        print(f"{name:9s} {'yes' if name in have else 'no'}")
