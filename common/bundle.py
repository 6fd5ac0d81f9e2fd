"""Deploy bundles: one .npz holding every array the NPU run needs plus a JSON manifest.

File layout (numpy .npz, no pickles; read with ``allow_pickle=False``):
  ``__manifest__``  uint8 bytes of a UTF-8 JSON object:
      schema            e.g. "npu-ptq-bundle/1"
      network           e.g. "conv2x"
      rounding          "half_even" | "half_up" (common.quant.RoundingMode)
      checkpoint_sha256 hash of the float checkpoint the bundle came from
      config_sha256     hash of the PTQ config (canonical JSON), config itself under "config"
      arrays            {name: {"dtype": str, "shape": [...]}} for every other member
      content_sha256    hash over the arrays' names, dtypes, shapes and bytes
      ... network-specific fields (scales, shifts, RTP slot map)
  every other member: a named array (weights blobs in NPU layout, int32 biases, RTP table).
Written to a temp file in the target folder and renamed, so a bundle is whole or absent.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from common.checkpoint import atomic_write_bytes, file_sha256

MANIFEST_KEY = "__manifest__"
SCHEMA = "npu-ptq-bundle/1"   # bump when the layout of any bundle changes


class BundleError(RuntimeError):
    """A bundle is missing, corrupt, truncated, of another schema, or stale."""


def config_sha256(config: dict[str, Any]) -> str:
    """Hash of a config dict as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


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
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf":
            raise ValueError(f"bundle array {name!r} must be a numeric numpy array")
    m = dict(manifest)
    m["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()}
    m["content_sha256"] = content_sha256(arrays)
    buf = io.BytesIO()
    payload = {MANIFEST_KEY: np.frombuffer(json.dumps(m, indent=1).encode(), dtype=np.uint8)}
    payload.update(arrays)
    np.savez(buf, **payload)
    atomic_write_bytes(path, buf.getvalue())


def read_bundle(path: str | os.PathLike, schema: str, checkpoint: str | os.PathLike | None = None,
                config: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Load and validate a bundle; returns ``(manifest, arrays)``.

    Checks: the file opens as an npz without pickles; the manifest parses and has
    ``schema``; every declared array is present with its dtype and shape; the content hash
    matches; and, when given, the checkpoint file's hash and the config's hash match the
    ones recorded (else the bundle is stale: re-run the PTQ step).
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: bundle not found (run the PTQ/export step first)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise BundleError(f"{path}: corrupt or truncated bundle ({type(e).__name__}: {e})") \
            from None
    if MANIFEST_KEY not in data:
        raise BundleError(f"{path}: no manifest; not a deploy bundle")
    try:
        m = json.loads(data.pop(MANIFEST_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: manifest is not valid JSON ({e})") from None
    if m.get("schema") != schema:
        raise BundleError(f"{path}: schema {m.get('schema')!r}, expected {schema!r}; "
                          "re-export the bundle with this version of the tool")
    specs = m.get("arrays", {})
    for name, spec in specs.items():
        if name not in data:
            raise BundleError(f"{path}: array {name!r} missing")
        a = data[name]
        if a.dtype.str != spec["dtype"] or list(a.shape) != list(spec["shape"]):
            raise BundleError(f"{path}: array {name!r} is {a.dtype.str}{list(a.shape)}, manifest "
                              f"says {spec['dtype']}{spec['shape']}")
    extra = set(data) - set(specs)
    if extra:
        raise BundleError(f"{path}: arrays not in the manifest: {sorted(extra)}")
    if content_sha256(data) != m.get("content_sha256"):
        raise BundleError(f"{path}: content hash mismatch: the arrays were modified or corrupted")
    if checkpoint is not None:
        h = file_sha256(checkpoint)
        if h != m.get("checkpoint_sha256"):
            raise BundleError(f"{path}: stale: made from a checkpoint with sha256 "
                              f"{str(m.get('checkpoint_sha256'))[:12]}..., but {checkpoint} has "
                              f"{h[:12]}...; re-run the PTQ step")
    if config is not None and config_sha256(config) != m.get("config_sha256"):
        raise BundleError(f"{path}: stale: PTQ config differs from the one it was made with "
                          f"({m.get('config')}); re-run the PTQ step")
    return m, data
