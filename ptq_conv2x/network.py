"""The conv2_x network as the generic pipeline sees it (common.network.Network)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from common.network import Network
from common.training import TrainRecipe
from ptq_conv2x.model import IMG, N_BLOCKS, Conv2xNet
from ptq_conv2x.quant_model import LEVERS, QuantConv2xNet, build_quant_model
from ptq_conv2x.stage import extract, stage_from_bundle

HERE = Path(__file__).resolve().parent
DEFAULT_BATCH = 8      # images per design call (= aie2.py DEFAULT_BATCH): weights enter once


def sgd_one_cycle(model: nn.Module, steps: int, lr: float, weight_decay: float):
    """SGD + Nesterov momentum 0.9, weight decay on conv/linear weights only, one-cycle LR
    (peak ``lr`` after 25% of the steps)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=lr, momentum=0.9, nesterov=True)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                    pct_start=0.25)


NETWORK = Network(
    name="conv2x",
    folder=HERE,
    model_class=Conv2xNet,
    checkpoints={"fashion-mnist": "conv2x_fmnist.pt"},
    default_dataset="fashion-mnist",
    quant_recipe={"act_percentile": 99.999, "weights": "int8 per-tensor po2 narrow",
                  "acts": "uint8 per-tensor po2 (stage input, after every ReLU), int8 at "
                          "the adds", "bias": "int32 at s_in*s_w", "levers": list(LEVERS)},
    build_quant_model=build_quant_model,
    quant_model_class=QuantConv2xNet,
    extract=extract,
    stage_from_bundle=stage_from_bundle,
    image_size=lambda in_channels: IMG,
    weight_streams=N_BLOCKS,    # one column blob per column, each from its own shim tile
    images_per_call=DEFAULT_BATCH,
    float_split=lambda fm: (fm.stem, fm.stage),
    train_recipe=TrainRecipe(make_optimizer=sgd_one_cycle, loss=nn.CrossEntropyLoss, epochs=5,
                             batch=128, lr=0.2, weight_decay=5e-4, threads=2,
                             per_image_shift=False, autocast_bf16=True,
                             description="SGD + Nesterov, one-cycle LR, bf16 autocast"),
)
