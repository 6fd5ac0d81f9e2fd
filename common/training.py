"""Seeded training loop for any network of the project, and the augmentations it uses.

``fit`` trains a float model on CPU and returns a record of how (epochs, test top-1 per
epoch, wall time). One torch.Generator seeded with ``seed`` draws the shuffling of every
epoch and feeds the augmentation, so a run is reproducible on the same machine and
thread count. The caller seeds the model's initialisation (``torch.manual_seed(seed)``
before building it). The scheduler, if any, steps once per batch (e.g. one-cycle LR).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
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


# ------------------------------------------------------------------ per-network recipe
FLIPPABLE = ("fashion-mnist", "cifar10")   # mirror-symmetric classes; digits are not
MAX_SHIFT = 2


def augmentation(dataset: str, per_image: bool = True) -> Augment:
    """Random shifts of up to MAX_SHIFT pixels (zero fill) for every dataset, plus
    horizontal flips where they keep the class (never for digits: mnist, svhn)."""
    flip = dataset in FLIPPABLE

    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = random_shift(x, gen, MAX_SHIFT, per_image=per_image)
        return random_hflip(x, gen) if flip else x
    return augment


@dataclass(frozen=True)
class TrainRecipe:
    """How a network is trained: optimizer (with its per-batch schedule), loss, defaults
    of the command's options, augmentation, bf16 autocast."""

    make_optimizer: Callable[[nn.Module, int, float, float], tuple[torch.optim.Optimizer, Any]]
    loss: Callable[[], nn.Module]            # on the model's output
    epochs: int
    batch: int
    lr: float
    weight_decay: float = 0.0
    threads: int = 1
    per_image_shift: bool = True             # False: one shift per batch
    autocast_bf16: bool = False
    description: str = ""


def train_main(net, argv: list[str] | None = None) -> int:
    """``python -m <net folder>.train``: train ``net``'s float model, write a checkpoint
    (atomically, after every epoch)."""
    from pathlib import Path

    from common.checkpoint import load_checkpoint, save_checkpoint
    from common.cli import ArgumentParser, int_at_least, output_file
    from common.datasets import load_dataset

    r: TrainRecipe = net.train_recipe
    p = ArgumentParser(prog=f"{net.folder.name}.train",
                       description=f"train the float {net.name} ({r.description})")
    p.add_argument("--dataset", default=net.default_dataset, choices=net.datasets)
    p.add_argument("--data-dir", default=None, help="folder with the dataset files "
                   "(default: system location; mnist: the embedded digits otherwise)")
    p.add_argument("--epochs", type=int_at_least(1), default=r.epochs)
    p.add_argument("--batch", type=int_at_least(1), default=r.batch)
    p.add_argument("--lr", type=float, default=r.lr, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=r.weight_decay)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--threads", type=int_at_least(1), default=r.threads)
    p.add_argument("--init", default=None,
                   help="start from this checkpoint (fine-tuning) instead of random weights")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, type=output_file, help="checkpoint to write")
    a = p.parse_args(argv)
    if not a.lr > 0:
        p.error(f"argument --lr: must be positive, got {a.lr}")
    if not a.weight_decay >= 0:
        p.error(f"argument --weight-decay: must be >= 0, got {a.weight_decay}")
    if a.init and Path(a.init).resolve() == Path(a.out).resolve():
        p.error(f"argument --out: {a.out} is the --init checkpoint; write the fine-tuned "
                "model to another file")

    def split(name: str) -> tuple[TensorDataset, str]:
        ds = load_dataset(a.dataset, name, a.data_dir, allow_embedded=(a.dataset == "mnist"))
        return TensorDataset(net.input_tensor(ds.images), torch.from_numpy(ds.labels)), \
            ds.source

    train, source = split("train")
    test, _ = split("test")
    in_ch = train.tensors[0].shape[1]
    print(f"train {len(train)} / test {len(test)} images from {source}, {in_ch} channel(s)")
    torch.manual_seed(a.seed)
    init_record = None
    if a.init:
        model, meta = load_checkpoint(a.init, net.model_class)
        init_record = meta.get("record")
        print(f"starting from {a.init} (test top-1 {(init_record or {}).get('test_top1')})")
    else:
        model = net.model_class(in_channels=in_ch, num_classes=10)
    info = {"dataset": a.dataset, "source": source, "lr": a.lr,
            "weight_decay": a.weight_decay, "recipe": r.description, "init": a.init,
            "init_record": init_record, "augment": f"shift {MAX_SHIFT}"
            + (" + hflip" if a.dataset in FLIPPABLE else "")}
    record = fit(model, train, test, epochs=a.epochs, batch=a.batch,
                 make_optimizer=lambda m, steps: r.make_optimizer(m, steps, a.lr,
                                                                  a.weight_decay),
                 loss=r.loss(), augment=augmentation(a.dataset, r.per_image_shift),
                 seed=a.seed, threads=a.threads, autocast_bf16=r.autocast_bf16,
                 progress=not a.no_progress,
                 on_epoch=lambda m, rec: save_checkpoint(a.out, m, {**info, **rec}))
    print(f"wrote {a.out}: test top-1 {record['test_top1']:.2f}% in "
          f"{record['train_seconds'] / 60:.1f} min")
    return 0


def run_train(net) -> None:
    """Entry point of a network's ``train`` module."""
    import sys

    from common.cli import run_cli
    from common.datasets import DatasetError

    run_cli(lambda: train_main(net, sys.argv[1:]), (DatasetError, ValueError, OSError,
                                                    RuntimeError))
