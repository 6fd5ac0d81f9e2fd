"""LeNet-5 as the generic pipeline sees it (common.network.Network): the whole network is
offloaded; the host only takes the argmax of the int32 logits."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from common.network import Network
from common.training import TrainRecipe
from lenet_npu.model import LeNet5, input_size
from lenet_npu.quant_model import QuantLeNet5, build_quant_model, extract
from lenet_npu.stage import stage_from_bundle

HERE = Path(__file__).resolve().parent
DEFAULT_BATCH = 8      # images per design call: weights enter the tiles once per call


def adam_cosine(model: nn.Module, steps: int, lr: float, weight_decay: float):
    """Adam (AdamW when weight_decay > 0), cosine decay of the learning rate to zero."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)


NETWORK = Network(
    name="lenet",
    folder=HERE,
    model_class=LeNet5,
    checkpoints={"mnist": "lenet_mnist.pt", "fashion-mnist": "lenet_fmnist.pt"},
    default_dataset="mnist",
    quant_recipe={"act_percentile": 99.999, "weights": "int8 per-tensor po2 narrow",
                  "acts": "uint8 per-tensor po2 (input, after every ReLU)",
                  "bias": "int32 at s_in*s_w", "output": "int32 fc3 accumulators",
                  "bias_correction": "Brevitas bias_correction_mode on the calibration images"},
    build_quant_model=build_quant_model,
    quant_model_class=QuantLeNet5,
    extract=extract,
    stage_from_bundle=stage_from_bundle,
    image_size=input_size,
    float_split=lambda fm: (nn.Identity(), fm.logits),
    images_per_call=DEFAULT_BATCH,
    calib_images=1000,       # int8 Fashion-MNIST: -0.09 points with 1,000, -0.19 with 256
    train_recipe=TrainRecipe(make_optimizer=adam_cosine, loss=nn.NLLLoss, epochs=20, batch=64,
                             lr=1e-3, description="Adam, cosine LR, NLL on log-softmax"),
)
