"""Train the float LeNet-5 (seeded, reproducible on CPU) and write a checkpoint.

    python -m lenet_npu.train --dataset fashion-mnist --epochs 20 \
        --out lenet_npu/checkpoints/lenet_fmnist.pt

Adam (AdamW when --weight-decay > 0) with a cosine learning-rate decay to zero, NLL loss
on the model's log-softmax, random shifts of up to 2 pixels (zero fill) for every
dataset and horizontal flips only for Fashion-MNIST and CIFAR-10 (never for digits).
MNIST falls back to the embedded 4,000/1,000 real digits under data/mnist when no full
MNIST is installed or given with --data-dir. The checkpoint (state dict, config, training
record) is written atomically after every epoch.
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch import nn
from torch.utils.data import TensorDataset

from common.checkpoint import save_checkpoint
from common.cli import run_cli
from common.datasets import DatasetError, load_dataset, to_float_tensor_input
from common.training import fit, random_hflip, random_shift
from lenet_npu.model import LeNet5, input_size

DATASETS = ("mnist", "fashion-mnist", "cifar10", "svhn")
FLIPPABLE = ("fashion-mnist", "cifar10")   # mirror-symmetric classes; digits are not
MAX_SHIFT = 2


def augmentation(dataset: str):
    """The training augmentation of ``dataset``: shifts, plus flips where they are valid."""
    flip = dataset in FLIPPABLE

    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = random_shift(x, gen, MAX_SHIFT)
        return random_hflip(x, gen) if flip else x
    return augment


def tensors(dataset: str, split: str, data_dir: str | None) -> tuple[TensorDataset, str]:
    """(float NCHW images in [0, 1] at LeNet's input size, int64 labels), source."""
    ds = load_dataset(dataset, split, data_dir, allow_embedded=(dataset == "mnist"))
    channels = 1 if ds.images.ndim == 3 else ds.images.shape[3]
    x = torch.from_numpy(to_float_tensor_input(ds.images, pad_to=input_size(channels)))
    return TensorDataset(x, torch.from_numpy(ds.labels)), ds.source


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset files (default: system location, or the "
                        "embedded digits for mnist)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of Adam")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled weight decay (AdamW); 0 is plain Adam")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    a = p.parse_args(argv)
    if a.lr <= 0:
        raise ValueError(f"--lr must be positive, got {a.lr}")
    if a.weight_decay < 0:
        raise ValueError(f"--weight-decay must be >= 0, got {a.weight_decay}")

    train, source = tensors(a.dataset, "train", a.data_dir)
    test, _ = tensors(a.dataset, "test", a.data_dir)
    in_ch = train.tensors[0].shape[1]
    print(f"train {len(train)} / test {len(test)} images from {source}, {in_ch} channel(s)")

    torch.manual_seed(a.seed)
    model = LeNet5(in_channels=in_ch, num_classes=10)

    def make_optimizer(m: nn.Module, steps: int):
        opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=a.weight_decay)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    meta = {"dataset": a.dataset, "source": source, "lr": a.lr,
            "weight_decay": a.weight_decay, "optimizer": "AdamW, cosine LR per batch",
            "augment": f"shift {MAX_SHIFT}" + (" + hflip" if a.dataset in FLIPPABLE else "")}

    def save(m: nn.Module, record: dict) -> None:
        save_checkpoint(a.out, m, {**meta, **record})

    record = fit(model, train, test, epochs=a.epochs, batch=a.batch,
                 make_optimizer=make_optimizer, loss=nn.NLLLoss(),
                 augment=augmentation(a.dataset), seed=a.seed, threads=a.threads,
                 progress=not a.no_progress, on_epoch=save)
    print(f"wrote {a.out}: test top-1 {record['test_top1']:.2f}% in "
          f"{record['train_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]), errors=(DatasetError, ValueError, OSError))
