"""Float LeNet-5 as the seeds define it (NCHW, inputs in [0, 1]).

    conv 5x5 (C_in -> 6; padding 2 for 1-channel 28x28 images, 0 for 3-channel 32x32),
    ReLU, max-pool 2x2, conv 5x5 (6 -> 16), ReLU, max-pool 2x2 -> (16, 5, 5),
    fully connected 400 -> 120 -> 84 -> 10 with ReLU between; log-softmax output
    (trained with NLL loss).
Both input kinds reach the first pool as (6, 28, 28) and the flatten as 400 features
(C-major: index = c * 25 + y * 5 + x).
"""
from __future__ import annotations

import torch
from torch import nn

CONV1_OUT = 6
CONV2_OUT = 16
FC_SIZES = (400, 120, 84)
KERNEL = 5


def conv1_padding(in_channels: int) -> int:
    """Zero padding of conv1: 2 for 1-channel 28x28 images, 0 for 3-channel 32x32."""
    if in_channels not in (1, 3):
        raise ValueError(f"LeNet-5 takes 1- or 3-channel images, got {in_channels}")
    return 2 if in_channels == 1 else 0


def input_size(in_channels: int) -> int:
    """Input height = width in pixels: 28 (grey) or 32 (colour)."""
    return 28 if conv1_padding(in_channels) == 2 else 32


class LeNet5(nn.Module):
    """LeNet-5; ``forward`` returns log-probabilities (N, num_classes)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, CONV1_OUT, KERNEL, padding=conv1_padding(in_channels))
        self.conv2 = nn.Conv2d(CONV1_OUT, CONV2_OUT, KERNEL)
        self.fc1 = nn.Linear(FC_SIZES[0], FC_SIZES[1])
        self.fc2 = nn.Linear(FC_SIZES[1], FC_SIZES[2])
        self.fc3 = nn.Linear(FC_SIZES[2], num_classes)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 400) flattened conv features."""
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return torch.flatten(x, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, num_classes) pre-softmax scores."""
        h = self.relu(self.fc1(self.features(x)))
        h = self.relu(self.fc2(h))
        return self.fc3(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.logits(x), dim=1)
