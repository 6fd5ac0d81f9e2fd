"""Train the float Conv2xNet (seeded, reproducible on CPU) and write a checkpoint.

    python -m ptq_conv2x.train --dataset fashion-mnist --epochs 5 \
        --out ptq_conv2x/checkpoints/conv2x_fmnist.pt

SGD + Nesterov with a one-cycle learning rate, random +-2 pixel shifts and horizontal
flips, bfloat16 autocast on CPU for speed (BatchNorm and the loss stay float32). The
checkpoint holds the state dict, the model config and a training record (epochs, test
accuracy, wall time); it is written atomically (temp file, then rename).
"""
from __future__ import annotations

import time

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.checkpoint import load_checkpoint, save_checkpoint
from common.cli import ArgumentParser, int_at_least, output_file, run_cli
from common.datasets import load_dataset, to_float_tensor_input
from ptq_conv2x.model import Conv2xNet


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift by up to 2 pixels (zero fill) and random horizontal flip, per batch."""
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0:
        x[:, :, :dy] = 0
    elif dy < 0:
        x[:, :, dy:] = 0
    if dx > 0:
        x[:, :, :, :dx] = 0
    elif dx < 0:
        x[:, :, :, dx:] = 0
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x[flip] = x[flip].flip(3)
    return x


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy in percent (float32)."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return 100.0 * correct / len(x)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist",
                   choices=["fashion-mnist", "mnist", "cifar10", "svhn"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int_at_least(1), default=5)
    p.add_argument("--batch", type=int_at_least(1), default=128)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--threads", type=int_at_least(1), default=2)
    p.add_argument("--init", default=None,
                   help="start from this checkpoint (fine-tuning) instead of random weights")
    p.add_argument("--out", required=True, type=output_file)
    a = p.parse_args(argv)
    if not a.lr > 0:
        p.error(f"argument --lr: must be positive, got {a.lr}")
    if a.init and Path(a.init).resolve() == Path(a.out).resolve():
        p.error(f"argument --out: {a.out} is the --init checkpoint; write the fine-tuned "
                "model to another file")

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)

    tr = load_dataset(a.dataset, "train", a.data_dir, allow_embedded=False)
    te = load_dataset(a.dataset, "test", a.data_dir, allow_embedded=False)
    xtr = torch.from_numpy(to_float_tensor_input(tr.images))
    ytr = torch.from_numpy(tr.labels)
    xte = torch.from_numpy(to_float_tensor_input(te.images))
    yte = torch.from_numpy(te.labels)
    in_ch = xtr.shape[1]
    print(f"train {len(xtr)} / test {len(xte)} images from {tr.source}, {in_ch} channel(s)")

    init_record = None
    if a.init:
        model, meta = load_checkpoint(a.init, Conv2xNet)
        init_record = meta["record"]
        model.train()
        print(f"starting from {a.init} (test top-1 {meta['record'].get('test_top1')})")
    else:
        model = Conv2xNet(in_channels=in_ch)
    model = model.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for n, prm in model.named_parameters():
        (no_decay if prm.ndim == 1 else decay).append(prm)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    steps = a.epochs * (len(xtr) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps,
                                                pct_start=0.25)
    history = []
    t0 = time.time()
    for ep in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        bar = tqdm(range(len(xtr) // a.batch), desc=f"epoch {ep + 1}/{a.epochs}")
        for it in bar:
            idx = perm[it * a.batch:(it + 1) * a.batch]
            xb = augment(xtr[idx].clone(), gen).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(xb)
            loss = nn.functional.cross_entropy(logits.float(), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if it % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        acc = evaluate(model, xte, yte)
        history.append({"epoch": ep + 1, "test_top1": acc, "elapsed_s": time.time() - t0})
        print(f"epoch {ep + 1}: test top-1 {acc:.2f}%  ({time.time() - t0:.0f} s)")
        # Written after every epoch (atomically) so an interrupted run leaves a usable file.
        record = {"dataset": a.dataset, "epochs": a.epochs, "epochs_done": ep + 1,
                  "init": a.init, "init_record": init_record,
                  "batch": a.batch, "lr": a.lr, "seed": a.seed, "threads": a.threads,
                  "history": history, "train_seconds": time.time() - t0,
                  "test_top1": acc}
        save_checkpoint(a.out, model.to(memory_format=torch.contiguous_format), record)
        model = model.to(memory_format=torch.channels_last)
    print(f"wrote {a.out}: test top-1 {record['test_top1']:.2f}% in "
          f"{record['train_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    run_cli(main)
