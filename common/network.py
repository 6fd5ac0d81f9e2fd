"""One description per network, and the registry the generic pipeline looks networks up in.

A network folder (``ptq_conv2x/``, ``lenet_npu/``) defines ``NETWORK`` in its
``network.py``; everything generic (PTQ pipeline, bundle, host program, training, bench)
takes that object and never names a layer. What a network supplies:

* a float model class (constructor ``(in_channels, num_classes)``) and its checkpoints;
* ``build_quant_model(float_model, calib_images, rounding, progress)``: the calibrated
  Brevitas model (a ``quant_model_class``) with the :class:`QuantNet` methods;
* ``extract(quant_model)``: the integer stage, an object with the :class:`IntStage`
  methods (golden model, weight blob, bundle fields);
* ``stage_from_bundle(manifest, arrays, where)``: the same stage rebuilt from a bundle,
  every value validated;
* the IRON design file (``aie2.py DEVICE --bundle B --batch N``);
* how it is trained (``train_recipe``, common.training.TrainRecipe).

The offloaded part's runtime sequence is always ``(inputs, weight blob, outputs)``:
``stage.device_inputs`` / ``stage.device_outputs`` convert between integer arrays of
``images_per_call`` images and those flat tensors.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

# name -> module defining NETWORK (imported on first use: each pulls in torch/Brevitas)
REGISTRY: dict[str, str] = {"conv2x": "ptq_conv2x.network", "lenet": "lenet_npu.network"}


class QuantNet(Protocol):
    """What the host program needs of a calibrated Brevitas model."""

    def offload_input(self, x: Any) -> np.ndarray:
        """Float images (N, C, H, W) -> integer input of the offloaded part (numpy)."""

    def reference(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Float images -> (integer output of the offloaded part as Brevitas computes it,
        predicted classes (N,))."""

    def predict(self, offload_out: np.ndarray) -> np.ndarray:
        """Integer output of the offloaded part -> predicted classes (N,)."""


class IntStage(Protocol):
    """What the generic code needs of a network's integer stage."""

    rounding: Any

    def golden(self, x: np.ndarray, ops: Any = None) -> np.ndarray:
        """Integer reference of the offloaded part on integer inputs (N, ...); ``ops``:
        common.golden_torch (default, fast) or common.golden (the reference formulas)."""

    def weight_blob(self) -> np.ndarray:
        """int8 parameters of every core, as the design's weight tensor."""

    def bundle_content(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(network-specific manifest fields, named arrays) for the deploy bundle."""

    def device_inputs(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Integer inputs of up to ``batch`` images -> the design's flat input tensor
        (zero images pad a short batch)."""

    def device_outputs(self, batch: int) -> np.ndarray:
        """A zeroed output tensor for ``batch`` images."""

    def from_device(self, out: np.ndarray, n: int) -> np.ndarray:
        """The design's output tensor -> integer outputs of the first ``n`` images."""

    def summary_lines(self) -> list[str]:
        """Human-readable lines (shifts per layer) printed by the PTQ command."""


@dataclass(frozen=True)
class Network:
    """A network the pipeline deploys (see the module docstring)."""

    name: str                         # registry key; recorded in bundles
    folder: Path                      # the network's folder (checkpoints/, build/, aie2.py)
    model_class: type                 # float model, constructor (in_channels, num_classes)
    checkpoints: Mapping[str, str]    # dataset -> file under folder/checkpoints
    default_dataset: str
    quant_recipe: Mapping[str, Any]   # how it is quantized (hashed into the PTQ config)
    build_quant_model: Callable[..., Any]
    quant_model_class: type           # the Brevitas model, constructor (float model, rounding)
    extract: Callable[[Any], Any]
    stage_from_bundle: Callable[[dict, dict, str], Any]
    image_size: Callable[[int], int]  # in_channels -> H = W of the model's input
    float_split: Callable[[Any], tuple[Callable, Callable]] = None  # float model ->
    #                                 (layers before the offload, the offloaded layers)
    train_recipe: Any = None          # common.training.TrainRecipe
    calib_images: int = 256           # default number of calibration images
    weight_streams: int = 1           # shim DMA channels the weight blob is split over
    images_per_call: int = 1          # default batch B of the design
    datasets: tuple[str, ...] = ("fashion-mnist", "mnist", "cifar10", "svhn")

    def input_tensor(self, images: np.ndarray):
        """uint8 images (N, H, W[, 3]) -> float32 NCHW torch tensor in [0, 1], centred in
        the model's input size (zero border)."""
        import torch

        from common.datasets import to_float_tensor_input

        channels = 3 if images.ndim == 4 else 1
        return torch.from_numpy(to_float_tensor_input(images, self.image_size(channels)))

    @property
    def design(self) -> Path:
        """The IRON design file."""
        return self.folder / "aie2.py"

    def design_args(self, device: str, bundle: Path, batch: int) -> list[str]:
        """Arguments of the design: every design takes the device (npu | npu2), --bundle
        and --batch (images per call)."""
        return [device, "--bundle", str(bundle), "--batch", str(batch)]

    @property
    def build_dir(self) -> Path:
        return self.folder / "build"

    def checkpoint_for(self, dataset: str) -> Path:
        """The shipped checkpoint for ``dataset`` (the default dataset's when none)."""
        name = self.checkpoints.get(dataset, self.checkpoints[self.default_dataset])
        return self.folder / "checkpoints" / name

    def bundle_path(self, dataset: str, rounding: str) -> Path:
        """Default bundle location of a (dataset, rounding) pair."""
        tag = "" if dataset == self.default_dataset else f"_{dataset}"
        return self.build_dir / f"{self.name}{tag}_{rounding}.npz"


def folder_of(name: str) -> str:
    """The folder of network ``name`` (no import of the network: for Makefiles)."""
    if name not in REGISTRY:
        raise SystemExit(f"error: NET={name}: unknown network; known: {sorted(REGISTRY)}")
    return REGISTRY[name].split(".")[0]


def get_network(name: str) -> Network:
    """The registered network ``name`` (ValueError naming the known ones otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown network {name!r}; known: {sorted(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).NETWORK
