"""The PTQ steps every network shares: config (hashed into the bundle), seeded calibration
choice, checkpoint -> Brevitas model -> integer stage, and the deploy bundle of a stage.

    python -m ptq_conv2x.ptq --out BUNDLE      (or lenet_npu.ptq; same options)
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.bundle import SCHEMA, BundleError, config_sha256, read_bundle, write_bundle
from common.checkpoint import file_sha256
from common.cli import ArgumentParser, int_at_least, output_file, run_cli
from common.datasets import EMBEDDED_DIR, Dataset, load_dataset
from common.network import Network
from common.quant import RoundingMode

CALIB_POOL = 2000   # calibration images are drawn from the first 2000 training images of
                    # the embedded subset when the dataset has one (data/<name>: the first
                    # 2000 Fashion-MNIST images, 4000 real MNIST digits), else of the
                    # user's files: the bundle is the same whatever --data-dir says.


def ptq_config(net: Network, dataset: str | None = None, rounding: str = "half_even",
               calib_images: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Everything that determines the bundle besides the checkpoint (hashed into it);
    ``calib_images`` defaults to the network's."""
    dataset = dataset or net.default_dataset
    calib_images = net.calib_images if calib_images is None else calib_images
    if dataset not in net.datasets:
        raise ValueError(f"dataset {dataset!r}: {net.name} takes one of {list(net.datasets)}")
    if calib_images < 1 or calib_images > CALIB_POOL:
        raise ValueError(f"calib_images must be in 1..{CALIB_POOL}, got {calib_images}")
    if seed < 0:
        raise ValueError(f"calibration seed must be >= 0, got {seed}")
    return {"dataset": dataset, "rounding": RoundingMode.parse(rounding).value,
            "calib_images": int(calib_images), "calib_seed": int(seed), **net.quant_recipe}


def calibration_images(net: Network, config: dict[str, Any], data_dir: str | None = None):
    """Seeded choice of ``calib_images`` training images among the first CALIB_POOL
    (float tensor N, C, H, W)."""
    name = config["dataset"]
    embedded = EMBEDDED_DIR / name
    tr = load_dataset(name, "train", embedded if embedded.is_dir() else data_dir)
    pool = min(CALIB_POOL, len(tr))
    if pool < config["calib_images"]:
        raise ValueError(f"only {pool} training images in {tr.source}, "
                         f"{config['calib_images']} needed for calibration")
    idx = np.sort(np.random.default_rng(config["calib_seed"])
                  .choice(pool, config["calib_images"], replace=False))
    return net.input_tensor(tr.images[idx])


@dataclass
class Prepared:
    """Float model, calibrated Brevitas model and its integer stage."""

    float_model: Any
    quant_model: Any
    stage: Any
    checkpoint_meta: dict


def prepare(net: Network, checkpoint: str | os.PathLike, config: dict[str, Any],
            data_dir: str | None = None, progress: bool = True) -> Prepared:
    """Load the checkpoint, run Brevitas PTQ per ``config``, extract the integer stage."""
    from common.checkpoint import load_checkpoint

    fm, meta = load_checkpoint(checkpoint, net.model_class)
    x = calibration_images(net, config, data_dir)
    if x.shape[1] != fm.in_channels:
        raise ValueError(f"{config['dataset']} has {x.shape[1]} channel(s) but the checkpoint "
                         f"{checkpoint} expects {fm.in_channels}")
    qm = net.build_quant_model(fm, x, RoundingMode.parse(config["rounding"]), progress=progress)
    return Prepared(fm, qm, net.extract(qm), meta)


QSTATE = "qstate."   # bundle array prefix of the calibrated Brevitas model's state


def save_bundle(net: Network, path: str | os.PathLike, stage: Any,
                checkpoint: str | os.PathLike, config: dict[str, Any],
                quant_model: Any = None) -> None:
    """Write the deploy bundle of ``stage`` (atomic). With the calibrated ``quant_model``
    its state (float parameters and calibrated scales, ``qstate.<key>`` arrays, covered
    by the content hash) goes in too, so the host program rebuilds the Brevitas reference
    without calibrating again."""
    fields, arrays = stage.bundle_content()
    if quant_model is not None:
        arrays.update({QSTATE + k: v.detach().cpu().numpy()
                       for k, v in quant_model.state_dict().items()})
    manifest = {"schema": SCHEMA, "network": net.name, "rounding": stage.rounding.value,
                "checkpoint_sha256": file_sha256(checkpoint),
                "config_sha256": config_sha256(config), "config": config, **fields}
    write_bundle(path, manifest, arrays)


def load_bundle(net: Network, path: str | os.PathLike,
                checkpoint: str | os.PathLike | None = None,
                config: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Read and validate a bundle of ``net``; returns (integer stage, manifest)."""
    return _read(net, path, checkpoint, config)[:2]


def _read(net: Network, path: str | os.PathLike, checkpoint: str | os.PathLike | None,
          config: dict[str, Any] | None) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
    """(integer stage, manifest, arrays) of a validated bundle of ``net``."""
    m, a = read_bundle(path, SCHEMA, checkpoint, config)
    if m.get("network") != net.name:
        raise BundleError(f"{path}: bundle is for network {m.get('network')!r}, "
                          f"not {net.name!r}")
    try:
        stage = net.stage_from_bundle(m, a, str(path))
    except BundleError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise BundleError(f"{path}: inconsistent {net.name} bundle ({type(e).__name__}: {e})") \
            from None
    if stage.rounding.value != m.get("rounding"):
        raise BundleError(f"{path}: rounding {m.get('rounding')!r} disagrees with the stage")
    return stage, m, a


def restore(net: Network, checkpoint: str | os.PathLike, path: str | os.PathLike,
            config: dict[str, Any]) -> tuple[Any, dict[str, Any], Prepared | None]:
    """(integer stage, manifest, prepared models) of a bundle validated as
    :func:`load_bundle` does; the prepared float and calibrated Brevitas models come from
    the quantizer state the bundle holds (None when it holds none: calibrate with
    :func:`prepare` instead)."""
    import torch

    from common.checkpoint import load_checkpoint

    stage, m, arrays = _read(net, path, checkpoint, config)
    state = {k[len(QSTATE):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
             if k.startswith(QSTATE)}
    if not state:
        return stage, m, None
    fm, meta = load_checkpoint(checkpoint, net.model_class)
    qm = net.quant_model_class(fm, RoundingMode.parse(config["rounding"]))
    try:
        qm.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BundleError(f"{path}: quantizer state does not fit the {net.name} Brevitas "
                          f"model ({str(e).splitlines()[0][:200]})") from None
    qm.eval()
    return stage, m, Prepared(fm, qm, stage, meta)


def eval_dataset(name: str, split: str, data_dir: str | None, n: int | None) -> Dataset:
    """The first ``n`` images of a split (all when n is None)."""
    ds = load_dataset(name, split, data_dir)
    if n is not None:
        ds = Dataset(ds.images[:n], ds.labels[:n], ds.source)
    return ds


# ------------------------------------------------------------------ command
def ptq_main(net: Network, argv: list[str] | None = None) -> int:
    """``python -m <net folder>.ptq``: PTQ of a checkpoint -> deploy bundle."""
    p = ArgumentParser(prog=f"{net.folder.name}.ptq",
                       description=f"Brevitas PTQ of {net.name} -> deploy bundle")
    p.add_argument("--checkpoint", default=None,
                   help="float checkpoint (default: the shipped one for --dataset)")
    p.add_argument("--dataset", default=net.default_dataset, choices=net.datasets)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--rounding", default="half_even", choices=["half_even", "half_up"])
    p.add_argument("--calib-images", type=int_at_least(1), default=net.calib_images)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--out", required=True, type=output_file)
    a = p.parse_args(argv)
    checkpoint = a.checkpoint or str(net.checkpoint_for(a.dataset))
    if Path(a.out).resolve() == Path(checkpoint).resolve():
        p.error(f"argument --out: {a.out} is the checkpoint itself; the bundle would "
                "overwrite it")
    cfg = ptq_config(net, a.dataset, a.rounding, a.calib_images, a.seed)
    prep = prepare(net, checkpoint, cfg, a.data_dir)
    save_bundle(net, a.out, prep.stage, checkpoint, cfg, prep.quant_model)
    for line in prep.stage.summary_lines():
        print(line)
    if "levers" in cfg:
        print(f"levers: {', '.join(cfg['levers']) or 'none'}")
    print(f"wrote {a.out} ({cfg['rounding']}, {cfg['calib_images']} calibration images)")
    return 0


def run_ptq(net: Network) -> None:
    """Entry point of a network's ``ptq`` module."""
    run_cli(lambda: ptq_main(net, sys.argv[1:]))
