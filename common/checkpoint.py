"""Float checkpoints: atomic save, safe load (``weights_only=True``), validation.

A checkpoint is a dict ``{"format": FORMAT, "state_dict": ..., "config": {...},
"record": {...}}``: config holds the constructor arguments of the model, record how it
was trained. ``file_sha256`` gives the hash that deploy bundles store to detect staleness.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import re
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from common.atomic import atomic_write_bytes

FORMAT = "npu-ptq-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


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


def load_checkpoint(path: str | os.PathLike,
                    model_factory: Callable[..., nn.Module]) -> tuple[nn.Module, dict]:
    """Load a checkpoint into ``model_factory(**config)``; strict key, shape, finiteness check.

    Nothing in the file can run code (``torch.load(weights_only=True)``); the model is first
    built on the meta device, so a config asking for absurd sizes allocates nothing.
    Returns ``(model in eval mode, checkpoint dict without the state dict)``.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    ck = _torch_load(path)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        fmt = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f"{path}: format {fmt!r} is not {FORMAT!r}")
    cfg, cls = _model_config(path, ck, model_factory)
    name = getattr(model_factory, "__name__", "the model")
    try:
        with torch.device("meta"):
            skeleton = model_factory(**cfg)
    except Exception as e:  # noqa: BLE001 - whatever the constructor says about bad values
        raise CheckpointError(f"{path}: config {cfg} does not build a {name} "
                              f"({type(e).__name__}: {_first_line(e)})") from None
    name = type(skeleton).__name__
    if cls is not None and cls != name:
        raise CheckpointError(f"{path}: holds a {cls!r}, expected a {name}")
    _check_state_dict(path, ck.get("state_dict"), skeleton.state_dict(), name)
    model = model_factory(**cfg)
    try:
        model.load_state_dict(ck["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: does not match {name}: {_first_line(e)}") from None
    model.eval()
    meta = {k: v for k, v in ck.items() if k != "state_dict"}
    return model, meta


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``; any failure -> CheckpointError in one line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        msg = str(e)
        if "Weights only load failed" in msg:
            refused = re.search(r"GLOBAL ([\w.]+)", msg)
            if refused:
                raise CheckpointError(f"{path}: refused: the pickle names {refused.group(1)}, "
                                      "code or an object other than tensors and plain data; "
                                      "not loaded") from None
            # torch's text: boilerplate around the line that says what failed
            after = msg.split("WeightsUnpickler error:", 1)[-1]
            why = next((ln.strip() for ln in after.splitlines() if ln.strip()), "")
            raise CheckpointError(f"{path}: not a readable checkpoint "
                                  f"({why[:120] or 'unpickling failed'})") from None
        why = _first_line(e).split(". This is an internal", 1)[0]   # torch's advice dropped
        raise CheckpointError(f"{path}: not a readable checkpoint, corrupt or truncated "
                              f"({type(e).__name__}: {why[:200]})") from None


def _model_config(path: Path, ck: dict,
                  model_factory: Callable[..., nn.Module]) -> tuple[dict, Any]:
    """``(constructor arguments, recorded class name or None)`` from ``ck["config"]``;
    the argument names are checked against the factory's signature."""
    name = getattr(model_factory, "__name__", "the model")
    if "config" not in ck:
        raise CheckpointError(f"{path}: no 'config' (the model's constructor arguments)")
    if not isinstance(ck["config"], dict):
        raise CheckpointError(f"{path}: 'config' is a {type(ck['config']).__name__}, "
                              "expected a dict")
    cfg = dict(ck["config"])
    cls = cfg.pop("class", None)
    params = inspect.signature(model_factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(str(k) for k in cfg if k not in params)
        if unknown:
            raise CheckpointError(f"{path}: config key(s) {unknown} unknown to {name} "
                                  f"(it takes {sorted(params)})")
    for k, v in cfg.items():
        if not isinstance(v, (bool, int, float, str)) and v is not None:
            raise CheckpointError(f"{path}: config key {k!r} is a {type(v).__name__}, "
                                  "expected a number or string")
    return cfg, cls


def _check_state_dict(path: Path, sd: Any, want: dict[str, torch.Tensor], name: str) -> None:
    """Same keys as ``want``, tensors of the same shapes and kinds, floats all finite."""
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(sd).__name__}, expected a dict")
    missing = [k for k in want if k not in sd]
    if missing:
        raise CheckpointError(f"{path}: does not match {name}: {len(missing)} missing key(s) "
                              f"{_some(missing)}")
    extra = [str(k) for k in sd if k not in want]
    if extra:
        raise CheckpointError(f"{path}: does not match {name}: {len(extra)} unexpected key(s) "
                              f"{_some(extra)}")
    for k, ref in want.items():
        t = sd[k]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: does not match {name}: {k}: a {type(t).__name__}, "
                                  "expected a tensor")
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: does not match {name}: {k}: shape "
                                  f"{tuple(t.shape)} in the checkpoint, {tuple(ref.shape)} "
                                  "in the model")
        if t.is_complex() or t.dtype.is_floating_point != ref.dtype.is_floating_point:
            raise CheckpointError(f"{path}: does not match {name}: {k}: dtype {t.dtype} in the "
                                  f"checkpoint, {ref.dtype} in the model")
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            n = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{path}: {k}: {n} non-finite value(s) (NaN or inf)")


def _some(keys: list[str], n: int = 4) -> str:
    """First ``n`` keys, then how many more."""
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
