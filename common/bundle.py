"""Deploy bundles: one .npz holding every array the NPU run needs plus a JSON manifest.

File layout (a zip of uncompressed .npy members, as ``np.savez`` writes; no pickles):
  ``__manifest__``  uint8 bytes of a UTF-8 JSON object:
      schema            e.g. "npu-ptq-bundle/2"
      network           e.g. "conv2x"
      rounding          "half_even" | "half_up" (common.quant.RoundingMode)
      checkpoint_sha256 hash of the float checkpoint the bundle came from
      config_sha256     hash of the PTQ config (canonical JSON), config itself under "config"
      arrays            {name: {"dtype": str, "shape": [...]}} for every other member
      content_sha256    hash over the arrays' names, dtypes, shapes and bytes
      manifest_sha256   hash of the manifest itself (canonical JSON without this field)
      ... network-specific fields (scales, shifts, RTP slot map), validated by the
      network's loader (e.g. ptq_conv2x.deploy.load_bundle)
  every other member: a named numeric array (weights blobs in NPU layout, int32 biases,
  RTP table).
Written to a temp file in the target folder and renamed, so a bundle is whole or absent.
Reading never trusts a size: each member's .npy header is checked against the member's
stored size before anything is allocated.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from common.atomic import atomic_write_bytes
from common.checkpoint import file_sha256

MANIFEST_KEY = "__manifest__"
SCHEMA = "npu-ptq-bundle/2"   # bump when the layout of any bundle changes
MANIFEST_HASH_KEY = "manifest_sha256"
ARRAY_KINDS = "iuf"          # numeric arrays only (no object, string, void or bool)


class BundleError(RuntimeError):
    """A bundle is missing, corrupt, truncated, of another schema, or stale."""


def config_sha256(config: dict[str, Any]) -> str:
    """Hash of a config dict as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """Hash of a manifest as canonical JSON, without its own ``manifest_sha256`` field."""
    return config_sha256({k: v for k, v in manifest.items() if k != MANIFEST_HASH_KEY})


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """Hash over names, dtypes, shapes and bytes of ``arrays`` (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_bundle(path: str | os.PathLike, manifest: dict[str, Any],
                 arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``manifest`` (completed with array specs and hash) atomically."""
    if MANIFEST_KEY in arrays:
        raise ValueError(f"array name {MANIFEST_KEY!r} is reserved")
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in ARRAY_KINDS:
            raise ValueError(f"bundle array {name!r} must be a numeric numpy array")
    m = dict(manifest)
    m["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()}
    m["content_sha256"] = content_sha256(arrays)
    m[MANIFEST_HASH_KEY] = manifest_sha256(m)
    buf = io.BytesIO()
    payload = {MANIFEST_KEY: np.frombuffer(json.dumps(m, indent=1).encode(), dtype=np.uint8)}
    payload.update(arrays)
    np.savez(buf, **payload)
    atomic_write_bytes(path, buf.getvalue())


def _read_members(path: Path) -> dict[str, np.ndarray]:
    """Every ``NAME.npy`` member of the zip at ``path`` as an array, sizes checked first."""
    out: dict[str, np.ndarray] = {}
    file_len = path.stat().st_size
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename
            where = f"{path}: member {name!r}"
            if not name.endswith(".npy") or name[:-4] in out:
                raise BundleError(f"{where}: not a .npy member or a duplicate")
            if info.compress_type != zipfile.ZIP_STORED:
                raise BundleError(f"{where}: compressed; bundles store members uncompressed")
            if (info.compress_size != info.file_size
                    or info.header_offset + info.compress_size > file_len):
                raise BundleError(f"{where}: sizes in the zip directory exceed the file "
                                  "(truncated or corrupt)")
            with z.open(info) as f:
                shape, fortran, dtype = _npy_header(f, where)
                if dtype.hasobject or dtype.kind not in ARRAY_KINDS:
                    raise BundleError(f"{where}: dtype {dtype} refused (numeric arrays only)")
                if any(not isinstance(d, int) or d < 0 for d in shape):
                    raise BundleError(f"{where}: bad shape {shape}")
                nbytes = math.prod(shape) * dtype.itemsize
                if f.tell() + nbytes != info.file_size:
                    raise BundleError(f"{where}: header declares {dtype}{list(shape)} = {nbytes} "
                                      f"bytes, the member holds {info.file_size - f.tell()}")
                raw = f.read(nbytes)
                if len(raw) != nbytes or f.read(1):
                    raise BundleError(f"{where}: truncated")
            a = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
            out[name[:-4]] = a.copy()
    return out


def _npy_header(f, where: str) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from a .npy header; numpy parses the header text
    with Python's tokenizer, whose errors on corrupt text vary: all become BundleError."""
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(f)
        if version in ((2, 0), (3, 0)):
            return npy_format.read_array_header_2_0(f)
    except zipfile.BadZipFile:
        raise
    except Exception as e:  # noqa: BLE001 - untrusted header text, see above
        raise BundleError(f"{where}: bad .npy header ({type(e).__name__}: "
                          f"{_first_line(e)[:120]})") from None
    raise BundleError(f"{where}: .npy format version {version} unknown")


def _spec(path: Path, name: str, spec: Any) -> tuple[str, list[int]]:
    """``(dtype str, shape)`` of one manifest array spec, validated."""
    if not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str) or not (
            isinstance(spec.get("shape"), list)
            and all(type(d) is int and d >= 0 for d in spec["shape"])):
        raise BundleError(f"{path}: manifest arrays.{name}: expected {{'dtype': str, 'shape': "
                          f"[non-negative ints]}}, got {str(spec)[:80]}")
    return spec["dtype"], spec["shape"]


def read_bundle(path: str | os.PathLike, schema: str, checkpoint: str | os.PathLike | None = None,
                config: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Load and validate a bundle; returns ``(manifest, arrays)``.

    Checks: the file is a zip of uncompressed numeric .npy members whose headers agree with
    their sizes (nothing is allocated from a declared size alone); the manifest is a JSON
    object of ``schema`` whose own hash matches; every declared array is present with its
    dtype and shape and no other; the content hash matches; and, when given, the checkpoint
    file's hash and the config's hash match the ones recorded (else the bundle is stale:
    re-run the PTQ step). Network-specific values are validated by the network's loader.
    """
    path = Path(path)
    if path.is_dir():
        raise BundleError(f"{path}: is a directory, expected a bundle file")
    if not path.is_file():
        raise BundleError(f"{path}: bundle not found (run the PTQ/export step first)")
    try:
        data = _read_members(path)
    except BundleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError, OverflowError, TypeError, KeyError, SyntaxError,
            UnicodeDecodeError) as e:
        raise BundleError(f"{path}: corrupt or truncated bundle ({type(e).__name__}: "
                          f"{_first_line(e)})") from None
    if MANIFEST_KEY not in data:
        raise BundleError(f"{path}: no manifest; not a deploy bundle")
    raw = data.pop(MANIFEST_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise BundleError(f"{path}: manifest member is {raw.dtype}{list(raw.shape)}, "
                          "expected 1-D uint8 bytes")
    try:
        m = json.loads(raw.tobytes().decode())
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, or absurd numbers
        raise BundleError(f"{path}: manifest is not valid JSON ({type(e).__name__}: "
                          f"{_first_line(e)})") from None
    if not isinstance(m, dict):
        raise BundleError(f"{path}: manifest is a JSON {type(m).__name__}, expected an object")
    if m.get("schema") != schema:
        raise BundleError(f"{path}: schema {str(m.get('schema'))[:40]!r}, expected {schema!r}; "
                          "re-run the PTQ step with this version of the tool (make does)")
    try:
        ok = m.get(MANIFEST_HASH_KEY) == manifest_sha256(m)
    except (TypeError, ValueError, RecursionError):
        ok = False
    if not ok:
        raise BundleError(f"{path}: manifest hash mismatch: the manifest was edited or "
                          "corrupted; re-run the PTQ step")
    specs = m.get("arrays")
    if not isinstance(specs, dict) or not specs:
        raise BundleError(f"{path}: manifest key 'arrays' missing, not an object or empty")
    for name, spec in specs.items():
        dtype, shape = _spec(path, name, spec)
        if name not in data:
            raise BundleError(f"{path}: array {name!r} missing")
        a = data[name]
        if a.dtype.str != dtype or list(a.shape) != shape:
            raise BundleError(f"{path}: array {name!r} is {a.dtype.str}{list(a.shape)}, manifest "
                              f"says {dtype}{shape}")
    extra = set(data) - set(specs)
    if extra:
        raise BundleError(f"{path}: arrays not in the manifest: {sorted(extra)}")
    if content_sha256(data) != m.get("content_sha256"):
        raise BundleError(f"{path}: content hash mismatch: the arrays were modified or corrupted")
    if checkpoint is not None:
        try:
            h = file_sha256(checkpoint)
        except OSError as e:
            raise BundleError(f"{path}: cannot check it against checkpoint {checkpoint}: "
                              f"{e.strerror or e}") from None
        if h != m.get("checkpoint_sha256"):
            raise BundleError(f"{path}: stale: made from a checkpoint with sha256 "
                              f"{str(m.get('checkpoint_sha256'))[:12]}..., but {checkpoint} has "
                              f"{h[:12]}...; re-run the PTQ step")
    if config is not None and config_sha256(config) != m.get("config_sha256"):
        raise BundleError(f"{path}: stale: PTQ config differs from the one it was made with "
                          f"({json.dumps(m.get('config'))[:200]}); re-run the PTQ step")
    return m, data


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""
