"""The networks the studies know, behind one lookup: ``network_for(name) -> StudyNet``.

Backed by the project's network registry (common/network.py): the studies use each
network's own float model, checkpoints, calibration rule and deployable Brevitas builder.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from common.checkpoint import file_sha256, load_checkpoint
from common.datasets import Dataset, load_dataset, to_float_tensor_input
from common.studies import StudyError

REPO = Path(__file__).resolve().parents[2]

# (float model, calibration images NCHW, bits_w or None = float, bits_a or None) -> model
DeployableBuilder = Callable[[nn.Module, torch.Tensor, "int | None", "int | None"], nn.Module]


@dataclass(frozen=True)
class StudyNet:
    """One network as the studies see it.

    ``build_deployable(float_model, calib, bits_w, bits_a)`` returns the calibrated Brevitas
    model the NPU path deploys (symmetric, power-of-two, per tensor) at the given widths;
    at 8/8 it is the deployed int8 model itself. ``calibration(dataset, data_dir, n)``
    gives the calibration images that path uses.
    """

    name: str
    model_class: type
    default_dataset: str
    datasets: tuple[str, ...]
    input_size: Callable[[int], int]     # channels -> square input size in pixels
    default_checkpoint: Callable[[str], Path]
    build_deployable: DeployableBuilder
    calibration: Callable[[str, "str | None", int], torch.Tensor]
    deployable_note: str

    def checkpoint_for(self, dataset: str, checkpoint: str | os.PathLike | None) -> Path:
        """The checkpoint to use (given, or the network's default for ``dataset``)."""
        p = Path(checkpoint) if checkpoint is not None else self.default_checkpoint(dataset)
        if not p.is_file():
            raise StudyError(f"{p}: no {self.name} checkpoint for {dataset}; pass --checkpoint "
                             f"(train one with the network's train command)")
        return p

    def load_float(self, checkpoint: str | os.PathLike) -> nn.Module:
        """Float model from ``checkpoint`` (eval mode)."""
        model, _ = load_checkpoint(checkpoint, self.model_class)
        return model

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        """uint8 images (N,H,W[,C]) -> float NCHW tensor as the network takes it."""
        return torch.from_numpy(to_float_tensor_input(images, pad_to=self.input_size(
            1 if images.ndim == 3 else images.shape[-1])))

    def check_dataset(self, dataset: str) -> None:
        if dataset not in self.datasets:
            raise StudyError(f"--dataset {dataset}: {self.name} studies know {list(self.datasets)}")

    def test_set(self, dataset: str, data_dir: str | None, n: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` test images (all when None) and their labels."""
        ds = load_dataset(dataset, "test", data_dir)
        return self._take(ds, np.arange(len(ds) if n is None else min(n, len(ds))))

    def val_set(self, dataset: str, data_dir: str | None, n: int, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded random choice of ``n`` training images (the studies' validation split)."""
        ds = load_dataset(dataset, "train", data_dir)
        if n > len(ds):
            raise StudyError(f"{ds.source}: {len(ds)} training images, {n} asked for validation")
        idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
        return self._take(ds, idx)

    def _take(self, ds: Dataset, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if len(idx) == 0:
            raise StudyError(f"{ds.source}: no images selected")
        return self.inputs(ds.images[idx]), torch.from_numpy(ds.labels[idx])


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """Content hash of a checkpoint (part of every cache key)."""
    return file_sha256(path)


def _from_registry(name: str) -> StudyNet:
    """A StudyNet over the network's own description (common.network): its float model,
    checkpoints, calibration rule and deployable Brevitas builder, so that the 8-bit point
    IS the deployed int8 model."""
    from common import pipeline
    from common.network import get_network

    net = get_network(name)

    def calib(dataset: str, data_dir: str | None, n: int) -> torch.Tensor:
        return pipeline.calibration_images(
            net, pipeline.ptq_config(net, dataset, calib_images=n), data_dir)

    def build(fm: nn.Module, x: torch.Tensor, bits_w: int | None, bits_a: int | None
              ) -> nn.Module:
        # int32 biases need quantized inputs: 16 bits stand in for "unquantized" when one
        # kind is studied alone.
        return net.build_quant_model(copy.deepcopy(fm), x, pipeline.ptq_config(net)["rounding"],
                                     progress=False, bits_w=bits_w or 16, bits_a=bits_a or 16)

    def checkpoint(dataset: str) -> Path:
        return net.folder / "checkpoints" / net.checkpoints.get(dataset, f"{name}_{dataset}.pt")

    return StudyNet(name, net.model_class, net.default_dataset, net.datasets, net.image_size,
                    checkpoint, build, calib,
                    f"the deployed {name} Brevitas model (symmetric po2 per-tensor, int32 "
                    "biases): its 8-bit point IS the deployed int8 model; a kind studied alone "
                    "keeps the other at 16 bits")


def network_for(name: str) -> StudyNet:
    """The StudyNet of the registered network ``name`` (StudyError naming the known ones)."""
    from common.network import REGISTRY

    if name not in REGISTRY:
        raise StudyError(f"--net {name}: unknown network; known: {sorted(REGISTRY)}")
    return _from_registry(name)
