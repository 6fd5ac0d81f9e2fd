"""Build ``build/host/libnpu_kernels.so`` from ``common/kernels/*.cc`` when missing or stale.

Staleness stamp: sha256 of every source/header, the compiler command and
``$CXX --version``. The library is compiled to a temporary file in the same directory
and renamed into place atomically, so concurrent builders and running loaders never
see a partial file.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
REPO_ROOT = KERNEL_DIR.parents[1]
BUILD_DIR = REPO_ROOT / "build" / "host"
LIB_PATH = BUILD_DIR / "libnpu_kernels.so"
STAMP_PATH = BUILD_DIR / "libnpu_kernels.stamp"
CXXFLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c++17", "-Wall"]


class KernelBuildError(RuntimeError):
    """The host kernel library failed to compile; message holds the compiler output."""


def compiler() -> str:
    """C++ compiler command (``$CXX`` or g++)."""
    return os.environ.get("CXX", "g++")


def sources() -> list[Path]:
    """Kernel translation units (``*.cc``)."""
    return sorted(KERNEL_DIR.glob("*.cc"))


def stamp() -> str:
    """Hash of sources, headers, flags and compiler version."""
    h = hashlib.sha256()
    for p in sorted(KERNEL_DIR.glob("*.cc")) + sorted(KERNEL_DIR.glob("*.h")):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(" ".join([compiler(), *CXXFLAGS]).encode())
    try:
        ver = subprocess.run([compiler(), "--version"], capture_output=True, text=True,
                             check=False).stdout
    except OSError as exc:
        raise KernelBuildError(f"C++ compiler {compiler()!r} not found: {exc}") from exc
    h.update(ver.encode())
    return h.hexdigest()


def is_fresh() -> bool:
    """True when the library exists and was built from the current stamp."""
    try:
        return LIB_PATH.exists() and STAMP_PATH.read_text().strip() == stamp()
    except OSError:
        return False


def build(force: bool = False) -> Path:
    """Compile the library if missing/stale (or ``force``); return its path."""
    want = stamp()
    if not force and LIB_PATH.exists() and STAMP_PATH.exists() \
            and STAMP_PATH.read_text().strip() == want:
        return LIB_PATH
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".libnpu_kernels.", suffix=".so", dir=BUILD_DIR)
    os.close(fd)
    cmd = [compiler(), *CXXFLAGS, "-I", str(KERNEL_DIR), *map(str, sources()), "-o", tmp]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise KernelBuildError(
                f"host kernel build failed ({' '.join(cmd)}):\n{res.stdout}{res.stderr}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, LIB_PATH)
        stamp_tmp = STAMP_PATH.with_suffix(f".{os.getpid()}.tmp")
        stamp_tmp.write_text(want + "\n")
        os.replace(stamp_tmp, STAMP_PATH)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return LIB_PATH


if __name__ == "__main__":
    print(build())
