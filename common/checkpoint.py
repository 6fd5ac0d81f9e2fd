"""Float checkpoints: atomic save, safe load (``weights_only=True``), validation.

A checkpoint is a dict ``{"format": FORMAT, "state_dict": ..., "config": {...},
"record": {...}}``: config holds the constructor arguments of the model, record how it
was trained. ``file_sha256`` gives the hash that deploy bundles store to detect staleness.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "npu-ptq-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, record: dict[str, Any]) -> None:
    """Save ``model`` (its state dict and constructor config) and a training record."""
    import io

    config = {"in_channels": int(getattr(model, "in_channels", 1)),
              "num_classes": int(getattr(model, "num_classes", 10)),
              "class": type(model).__name__}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "state_dict": model.state_dict(), "config": config,
                "record": record}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, model_factory) -> tuple[nn.Module, dict]:
    """Load a checkpoint into ``model_factory(**config)``; strict key and shape check.

    Returns ``(model in eval mode, checkpoint dict without the state dict)``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        fmt = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f"{path}: format {fmt!r} is not {FORMAT!r}")
    cfg = dict(ck["config"])
    cls = cfg.pop("class", None)
    model = model_factory(**cfg)
    if cls is not None and cls != type(model).__name__:
        raise CheckpointError(f"{path}: holds a {cls}, expected a {type(model).__name__}")
    try:
        model.load_state_dict(ck["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: does not match {type(model).__name__}: "
                              f"{str(e).splitlines()[0]} ...") from None
    model.eval()
    meta = {k: v for k, v in ck.items() if k != "state_dict"}
    return model, meta
