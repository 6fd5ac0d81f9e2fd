"""Build ``build/host/libnpu_kernels.so`` from ``common/kernels/*.cc`` when missing or stale.

Two variants of the same sources (see conv_host.h):
* ``native`` (``libnpu_kernels.so``): ``-march=native``; on a CPU with AVX-512 VNNI the
  conv engine uses it. This is the library the emulator and the tools load.
* ``portable`` (``libnpu_kernels_portable.so``): ``-DNPU_HOST_PORTABLE``, the generic
  vector engine; built only to cross-check the two engines (tests).

Only the C API (the kernels and ``npu_host_engine``) is exported: a linker version
script makes every other symbol local, so two variants loaded into one process share no
code or state (see conv_host.h), whatever the dlopen flags.

Staleness stamp: sha256 of every source/header, the compiler command, the export list
and ``$CXX --version``. The library is compiled to a temporary file in the same directory
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
CXXFLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c++17", "-Wall"]
# Linker version script: the exported C API; everything else local.
EXPORTS = """{
  global: conv2dk*; maxpool2x2_*; fc_*; npu_host_engine;
  local: *;
};
"""
VARIANTS = {"native": ("libnpu_kernels", []),
            "portable": ("libnpu_kernels_portable", ["-DNPU_HOST_PORTABLE"])}


class KernelBuildError(RuntimeError):
    """The host kernel library failed to compile; message holds the compiler output."""


def compiler() -> str:
    """C++ compiler command (``$CXX`` or g++)."""
    return os.environ.get("CXX", "g++")


def sources() -> list[Path]:
    """Kernel translation units (``*.cc``)."""
    return sorted(KERNEL_DIR.glob("*.cc"))


def _paths(variant: str) -> tuple[Path, Path, list[str]]:
    if variant not in VARIANTS:
        raise ValueError(f"unknown host kernel variant {variant!r} (have {sorted(VARIANTS)})")
    stem, defines = VARIANTS[variant]
    return BUILD_DIR / f"{stem}.so", BUILD_DIR / f"{stem}.stamp", CXXFLAGS + defines


def stamp(variant: str = "native") -> str:
    """Hash of sources, headers, flags and compiler version."""
    flags = _paths(variant)[2]
    h = hashlib.sha256()
    for p in sorted(KERNEL_DIR.glob("*.cc")) + sorted(KERNEL_DIR.glob("*.h")):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(" ".join([compiler(), *flags]).encode() + b"\0" + EXPORTS.encode())
    try:
        ver = subprocess.run([compiler(), "--version"], capture_output=True, text=True,
                             check=False).stdout
    except OSError as exc:
        raise KernelBuildError(f"C++ compiler {compiler()!r} not found: {exc}") from exc
    h.update(ver.encode())
    return h.hexdigest()


def is_fresh(variant: str = "native") -> bool:
    """True when the library exists and was built from the current stamp."""
    lib, stamp_path, _ = _paths(variant)
    try:
        return lib.exists() and stamp_path.read_text().strip() == stamp(variant)
    except OSError:
        return False


def build(force: bool = False, variant: str = "native") -> Path:
    """Compile the library variant if missing/stale (or ``force``); return its path."""
    lib, stamp_path, flags = _paths(variant)
    want = stamp(variant)
    if not force and lib.exists() and stamp_path.exists() \
            and stamp_path.read_text().strip() == want:
        return lib
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{lib.stem}.", suffix=".so", dir=BUILD_DIR)
    os.close(fd)
    script = tmp[:-len(".so")] + ".map"
    cmd = [compiler(), *flags, f"-Wl,--version-script={script}", "-I", str(KERNEL_DIR),
           *map(str, sources()), "-o", tmp]
    try:
        with open(script, "w") as f:
            f.write(EXPORTS)
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise KernelBuildError(
                f"host kernel build failed ({' '.join(cmd)}):\n{res.stdout}{res.stderr}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, lib)
        stamp_tmp = stamp_path.with_suffix(f".{os.getpid()}.tmp")
        stamp_tmp.write_text(want + "\n")
        os.replace(stamp_tmp, stamp_path)
    finally:
        for p in (tmp, script):
            if os.path.exists(p):
                os.unlink(p)
    return lib


if __name__ == "__main__":
    print(build())
