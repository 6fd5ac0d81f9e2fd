"""The conv2_x network as the generic pipeline sees it (common.network.Network)."""
from __future__ import annotations

from pathlib import Path

from common.network import Network
from ptq_conv2x.model import IMG, Conv2xNet
from ptq_conv2x.quant_model import build_quant_model
from ptq_conv2x.stage import extract, stage_from_bundle

HERE = Path(__file__).resolve().parent


def design_args(device: str, bundle: Path, batch: int) -> list[str]:
    """aie2.py arguments (one image per call)."""
    return [device, "--bundle", str(bundle)]


NETWORK = Network(
    name="conv2x",
    folder=HERE,
    model_class=Conv2xNet,
    checkpoints={"fashion-mnist": "conv2x_fmnist.pt"},
    default_dataset="fashion-mnist",
    quant_recipe={"act_percentile": 99.999, "weights": "int8 per-tensor po2 narrow",
                  "acts": "int8/uint8 per-tensor po2", "bias": "int32 at s_in*s_w"},
    build_quant_model=build_quant_model,
    extract=extract,
    stage_from_bundle=stage_from_bundle,
    design_args=design_args,
    image_size=lambda in_channels: IMG,
)
