"""Running independent study configurations: in this process, a process pool, or Ray;
each result cached on disk as soon as it is known so that an interrupted study resumes.

A configuration is a JSON-able dict; a task is a module-level function
``task(ctx, config) -> dict`` (JSON-able). Cache key: sha256 over the study name, the
network, the checkpoint's sha256, the data settings and the configuration.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from common.atomic import atomic_write_bytes
from common.studies import StudyError

Task = Callable[["Context", dict], dict]


@dataclass(frozen=True)
class Context:
    """What every configuration of one study run shares (hashable, picklable)."""

    net: str
    checkpoint: str
    checkpoint_sha256: str
    dataset: str
    data_dir: str | None
    n_test: int | None
    n_calib: int
    n_val: int = 0
    seed: int = 0

    def cache_fields(self) -> dict[str, Any]:
        """The fields a result depends on (the checkpoint by content, not by path)."""
        d = asdict(self)
        d.pop("checkpoint")
        return d


@dataclass(frozen=True)
class Loaded:
    """Float model, test images/labels and calibration images of a Context."""

    float_model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    calib: torch.Tensor


@lru_cache(maxsize=2)
def load(ctx: Context) -> Loaded:
    """Load (once per process) what the configurations of ``ctx`` evaluate on."""
    from common.studies.nets import network_for

    net = network_for(ctx.net)
    fm = net.load_float(ctx.checkpoint)
    x, y = net.test_set(ctx.dataset, ctx.data_dir, ctx.n_test)
    want = getattr(fm, "in_channels", x.shape[1])
    if x.shape[1] != want:
        raise StudyError(f"{ctx.checkpoint}: the model takes {want}-channel images, "
                         f"{ctx.dataset} has {x.shape[1]}")
    return Loaded(fm, x, y, net.calibration(ctx.dataset, ctx.data_dir, ctx.n_calib))


@torch.no_grad()
def predictions(model: nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Top-1 class of each image (model in eval mode)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        o = model(x[i:i + batch])
        out.append(getattr(o, "value", o).argmax(1))
    return torch.cat(out)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, bool]:
    """(top-1 accuracy in %, whether every prediction is the same class)."""
    p = predictions(model, x)
    return 100.0 * float((p == y).float().mean()), bool((p == p[0]).all())


class ResultCache:
    """One JSON file per result under ``folder`` (atomic writes)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @staticmethod
    def key(study: str, ctx: Context, config: dict) -> str:
        blob = json.dumps({"study": study, "ctx": ctx.cache_fields(), "config": config},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        p = self.folder / f"{key}.json"
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (ValueError, OSError):
            return None                      # unreadable: recompute and overwrite

    def put(self, key: str, result: dict) -> None:
        atomic_write_bytes(self.folder / f"{key}.json", json.dumps(result, sort_keys=True).encode())


def _call(task: Task, ctx: Context, config: dict) -> dict:
    """Worker-side call: one torch thread per worker (the workers share the cores)."""
    torch.set_num_threads(1)
    return task(ctx, config)


def run_configs(study: str, task: Task, ctx: Context, configs: list[dict],
                cache_dir: str | os.PathLike, jobs: int = 1, ray_address: str | None = None,
                progress: bool = True) -> tuple[list[dict], int]:
    """Results of ``task`` for every configuration (in order) and how many were computed
    now (the rest came from the cache). jobs = 1 runs here; more, a process pool; a Ray
    address, on that cluster (an already initialised Ray is used as it is)."""
    if not configs:
        raise StudyError(f"{study}: no configurations to run")
    cache = ResultCache(cache_dir)
    keys = [cache.key(study, ctx, c) for c in configs]
    results: dict[int, dict] = {}
    todo = []
    for i, k in enumerate(keys):
        r = cache.get(k)
        if r is None:
            todo.append(i)
        else:
            results[i] = r
    bar = tqdm(total=len(todo), desc=study, disable=not progress or not todo)

    def done(i: int, r: dict) -> None:
        cache.put(keys[i], r)
        results[i] = r
        bar.update(1)

    try:
        if ray_address is not None:
            _run_ray(task, ctx, configs, todo, ray_address, done)
        elif jobs <= 1 or len(todo) <= 1:
            for i in todo:
                done(i, task(ctx, configs[i]))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(min(jobs, len(todo)),
                                     mp_context=mp.get_context("spawn")) as ex:
                futs = {ex.submit(_call, task, ctx, configs[i]): i for i in todo}
                for f in as_completed(futs):
                    done(futs[f], f.result())
    finally:
        bar.close()
    return [results[i] for i in range(len(configs))], len(todo)


def _run_ray(task: Task, ctx: Context, configs: list[dict], todo: list[int],
             address: str, done: Callable[[int, dict], None]) -> None:
    try:
        import ray
    except ImportError as e:
        raise StudyError(f"--ray {address}: ray is not importable ({e})") from None
    if not ray.is_initialized():
        ray.init(address=address)
    remote = ray.remote(_call)
    pending = {remote.remote(task, ctx, configs[i]): i for i in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            done(pending.pop(ref), ray.get(ref))
