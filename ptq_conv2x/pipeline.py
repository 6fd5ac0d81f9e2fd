"""The conv2_x pipeline steps shared by the PTQ command, the host program and the bench:
checkpoint -> Brevitas PTQ -> integer stage (and bundle)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.checkpoint import load_checkpoint
from common.datasets import Dataset, load_dataset, to_float_tensor_input
from common.quant import RoundingMode
from ptq_conv2x.deploy import IntStage, extract, save_bundle
from ptq_conv2x.model import Conv2xNet
from ptq_conv2x.quant_model import QuantConv2xNet, build_quant_model

HERE = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = HERE / "checkpoints" / "conv2x_fmnist.pt"
BUILD = HERE / "build"
CALIB_POOL = 2000   # calibration images are drawn from the first 2000 training images,
                    # which the embedded subset holds too: same bundle from either source


def ptq_config(dataset: str = "fashion-mnist", rounding: str = "half_even",
               calib_images: int = 256, seed: int = 0) -> dict[str, Any]:
    """Everything that determines the bundle besides the checkpoint (hashed into it)."""
    if calib_images < 1 or calib_images > CALIB_POOL:
        raise ValueError(f"calib_images must be in 1..{CALIB_POOL}, got {calib_images}")
    return {"dataset": dataset, "rounding": RoundingMode.parse(rounding).value,
            "calib_images": int(calib_images), "calib_seed": int(seed),
            "act_percentile": 99.999, "weights": "int8 per-tensor po2 narrow",
            "acts": "int8/uint8 per-tensor po2", "bias": "int32 at s_in*s_w"}


def calibration_images(config: dict[str, Any], data_dir: str | None = None) -> torch.Tensor:
    """Seeded choice of ``calib_images`` training images among the first CALIB_POOL."""
    tr = load_dataset(config["dataset"], "train", data_dir)
    pool = min(CALIB_POOL, len(tr))
    if pool < config["calib_images"]:
        raise ValueError(f"only {pool} training images in {tr.source}, "
                         f"{config['calib_images']} needed for calibration")
    idx = np.sort(np.random.default_rng(config["calib_seed"])
                  .choice(pool, config["calib_images"], replace=False))
    return torch.from_numpy(to_float_tensor_input(tr.images[idx]))


@dataclass
class Prepared:
    """Float model, calibrated Brevitas model and its integer stage."""

    float_model: Conv2xNet
    quant_model: QuantConv2xNet
    stage: IntStage
    checkpoint_meta: dict


def prepare(checkpoint: str | os.PathLike, config: dict[str, Any], data_dir: str | None = None,
            progress: bool = True) -> Prepared:
    """Load the checkpoint, run Brevitas PTQ per ``config``, extract the integer stage."""
    fm, meta = load_checkpoint(checkpoint, Conv2xNet)
    x = calibration_images(config, data_dir)
    if x.shape[1] != fm.in_channels:
        raise ValueError(f"{config['dataset']} has {x.shape[1]} channel(s) but the checkpoint "
                         f"{checkpoint} expects {fm.in_channels}")
    qm = build_quant_model(fm, x, RoundingMode.parse(config["rounding"]), progress=progress)
    return Prepared(fm, qm, extract(qm), meta)


def write_bundle_for(checkpoint: str | os.PathLike, config: dict[str, Any], out: str | os.PathLike,
                     data_dir: str | None = None) -> Prepared:
    """PTQ + bundle write; returns what was prepared."""
    p = prepare(checkpoint, config, data_dir)
    save_bundle(out, p.stage, checkpoint, config)
    return p


def eval_dataset(name: str, split: str, data_dir: str | None, n: int | None) -> Dataset:
    """The first ``n`` images of a split (all when n is None)."""
    ds = load_dataset(name, split, data_dir)
    if n is not None:
        ds = Dataset(ds.images[:n], ds.labels[:n], ds.source)
    return ds
