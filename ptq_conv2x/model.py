"""Float model: stem -> ResNet-50 conv2_x stage (three bottlenecks, 64->256, 32x32) -> head.

The conv2_x stage is what the NPU runs; stem and head stay on the CPU. Layouts are NCHW,
inputs are 1- or 3-channel 32x32 images in [0, 1] (28x28 images are padded to 32x32).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

STAGE_IN_CH = 64
MID_CH = 64
OUT_CH = 256
N_BLOCKS = 3
IMG = 32


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4) with BatchNorm, skip add and ReLU; block 0 projects the skip."""

    def __init__(self, in_ch: int, mid_ch: int = MID_CH, out_ch: int = OUT_CH):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, mid_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_ch)
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.proj: nn.Conv2d | None = None
        self.bn_proj: nn.BatchNorm2d | None = None
        if in_ch != out_ch:
            self.proj = nn.Conv2d(in_ch, out_ch, 1, bias=False)
            self.bn_proj = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        skip = x if self.proj is None else self.bn_proj(self.proj(x))
        return self.relu(h + skip)


class Conv2xStage(nn.Module):
    """The offloaded stage: three bottlenecks, (N,64,32,32) -> (N,256,32,32)."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(
            [Bottleneck(STAGE_IN_CH if i == 0 else OUT_CH) for i in range(N_BLOCKS)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


class Conv2xNet(nn.Module):
    """Stem (3x3 conv to 64 + BN + ReLU), conv2_x stage, head (global avg pool + linear)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, STAGE_IN_CH, 3, padding=1, bias=False),
            nn.BatchNorm2d(STAGE_IN_CH), nn.ReLU())
        self.stage = Conv2xStage()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(OUT_CH, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage(self.stem(x)))


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | nn.Identity
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold eval-mode BatchNorm into (weight OIHW, bias O) of the preceding conv; with
    ``bn`` an nn.Identity (a model already folded, :func:`folded_copy`) the conv's own
    weight and bias."""
    if isinstance(bn, nn.Identity):
        return conv.weight.detach().clone(), conv.bias.detach().clone()
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight / std
    w = conv.weight * gamma.reshape(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * gamma
    if conv.bias is not None:
        b = b + conv.bias * gamma
    return w.detach().clone(), b.detach().clone()


BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("proj", "bn_proj"))


def fold_bn_into(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    """Fold ``parent.<bn_name>`` into ``parent.<conv_name>`` in place: the conv takes the
    folded weight and a bias, the BatchNorm becomes nn.Identity (same function in eval)."""
    conv = getattr(parent, conv_name)
    w, b = fold_bn(conv, getattr(parent, bn_name))
    conv.weight, conv.bias = nn.Parameter(w), nn.Parameter(b)
    setattr(parent, bn_name, nn.Identity())


def folded_copy(model: Conv2xNet) -> Conv2xNet:
    """An eval-mode copy of ``model`` with every BatchNorm folded into its conv."""
    f = copy.deepcopy(model).eval()
    fold_bn_into(f.stem, "0", "1")
    for blk in f.stage.blocks:
        for conv, bn in BN_PAIRS:
            if getattr(blk, conv) is not None:
                fold_bn_into(blk, conv, bn)
    return f
