"""Seeded training loop for any network of the project, and the augmentations it uses.

``fit`` trains a float model on CPU and returns a record of how (epochs, test top-1 per
epoch, wall time). One torch.Generator seeded with ``seed`` draws the shuffling of every
epoch and feeds the augmentation, so a run is reproducible on the same machine and
thread count. The caller seeds the model's initialisation (``torch.manual_seed(seed)``
before building it). The scheduler, if any, steps once per batch (e.g. one-cycle LR).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset
from tqdm import tqdm

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
MakeOptimizer = Callable[[nn.Module, int], tuple[torch.optim.Optimizer, Any]]


def random_shift(x: torch.Tensor, gen: torch.Generator, max_shift: int,
                 per_image: bool = True) -> torch.Tensor:
    """Shift NCHW images by up to ``max_shift`` pixels in y and x, zero fill.

    ``per_image``: an independent shift per image; otherwise one shift for the batch.
    """
    n, _, h, w = x.shape
    k = max_shift
    if k == 0:
        return x
    d = torch.randint(-k, k + 1, (n if per_image else 1, 2), generator=gen).expand(n, 2)
    xp = nn.functional.pad(x, (k, k, k, k))
    rows = torch.arange(h)[None, :] + (k - d[:, :1])      # (n, h) source rows in xp
    cols = torch.arange(w)[None, :] + (k - d[:, 1:])      # (n, w) source columns in xp
    out = xp[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()           # indexing puts C last


def random_hflip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each NCHW image left-right with probability ``p`` (never for digits)."""
    flip = torch.rand(x.shape[0], generator=gen) < p
    x = x.clone()
    x[flip] = x[flip].flip(3)
    return x


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy in percent of ``model`` (eval mode, float32) on images ``x``."""
    if len(x) == 0:
        raise ValueError("evaluate: no images")
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return 100.0 * correct / len(x)


def fit(model: nn.Module, train: TensorDataset, test: TensorDataset, *, epochs: int,
        batch: int, make_optimizer: MakeOptimizer, loss: nn.Module,
        augment: Augment | None = None, seed: int = 0, threads: int = 1,
        autocast_bf16: bool = False, progress: bool = True,
        on_epoch: Callable[[nn.Module, dict[str, Any]], None] | None = None
        ) -> dict[str, Any]:
    """Train ``model`` in place; return the training record.

    train, test: TensorDatasets of (float NCHW images, int64 labels).
    make_optimizer(model, total_steps) -> (optimizer, scheduler stepped per batch, or None).
    loss(model output as float32, labels); augment(images, generator) -> images.
    Every epoch uses len(train) // batch batches (the rest of the shuffle is dropped).
    on_epoch(model, record so far) runs after each epoch (e.g. to save a checkpoint).
    Record: epochs, batch, seed, threads, history [{epoch, train_loss, test_top1,
    elapsed_s}], train_seconds, test_top1 (after the last epoch).
    """
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    if batch < 1:
        raise ValueError(f"--batch must be at least 1, got {batch}")
    xtr, ytr = train.tensors
    xte, yte = test.tensors
    steps = len(xtr) // batch
    if steps == 0:
        raise ValueError(f"--batch {batch} is larger than the {len(xtr)} training images")
    if len(xte) == 0:
        raise ValueError("no test images")
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(seed)
    opt, sched = make_optimizer(model, epochs * steps)
    history: list[dict[str, Any]] = []
    record: dict[str, Any] = {"epochs": epochs, "batch": batch, "seed": seed,
                              "threads": threads, "history": history}
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        bar = tqdm(range(steps), desc=f"epoch {ep + 1}/{epochs}", disable=not progress)
        for it in bar:
            idx = perm[it * batch:(it + 1) * batch]
            xb = xtr[idx]
            if augment is not None:
                xb = augment(xb, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
                out = model(xb)
            lv = loss(out.float(), ytr[idx])
            opt.zero_grad(set_to_none=True)
            lv.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += lv.item()
            if it % 20 == 0:
                bar.set_postfix(loss=f"{lv.item():.3f}")
        acc = evaluate(model, xte, yte)
        elapsed = time.time() - t0
        history.append({"epoch": ep + 1, "train_loss": total / steps, "test_top1": acc,
                        "elapsed_s": elapsed})
        record.update(train_seconds=elapsed, test_top1=acc, epochs_done=ep + 1)
        if progress:
            tqdm.write(f"epoch {ep + 1}: loss {total / steps:.4f}, test top-1 {acc:.2f}% "
                       f"({elapsed:.0f} s)")
        if on_epoch is not None:
            on_epoch(model, record)
    model.eval()
    return record
