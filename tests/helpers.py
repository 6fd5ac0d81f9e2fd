"""Helpers several test files share: random integer arrays and a small conv2x checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np

FMNIST = str(Path(__file__).resolve().parent.parent / "data" / "fashion-mnist")


def int_data(rng: np.random.Generator, shape, dtype, fill: str) -> np.ndarray:
    """Integers of ``dtype``: all max, all min, small (-3..3) or uniform over the range."""
    info = np.iinfo(dtype)
    if fill == "max":
        return np.full(shape, info.max, dtype)
    if fill == "min":
        return np.full(shape, info.min, dtype)
    if fill == "small":
        return rng.integers(max(info.min, -3), 4, size=shape).astype(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def untrained_conv2x_checkpoint(path: Path, images: int = 64, note: str = "test") -> Path:
    """An untrained Conv2xNet (seed 0) whose BatchNorm statistics come from ``images``
    embedded Fashion-MNIST training images, saved as a checkpoint at ``path``."""
    import torch

    from common.checkpoint import save_checkpoint
    from common.datasets import load_dataset, to_float_tensor_input
    from ptq_conv2x.model import Conv2xNet

    torch.manual_seed(0)
    m = Conv2xNet()
    x = torch.from_numpy(to_float_tensor_input(
        load_dataset("fashion-mnist", "train", FMNIST).images[:images]))
    m.train()
    with torch.no_grad():
        for i in range(0, images, 32):
            m(x[i:i + 32])
    save_checkpoint(path, m.eval(), {"note": note})
    return path
