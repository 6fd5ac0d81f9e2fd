"""Post-training quantization of the conv2_x stage with Brevitas -> deploy bundle.

    python -m ptq_conv2x.ptq [--checkpoint CK] [--rounding half_even|half_up] \
        [--calib-images 256] [--data-dir DIR] --out ptq_conv2x/build/conv2x_bundle.npz
"""
from __future__ import annotations

from pathlib import Path

from common.cli import ArgumentParser, int_at_least, output_file, run_cli
from common.datasets import DATASETS

from ptq_conv2x.pipeline import DEFAULT_CHECKPOINT, ptq_config, write_bundle_for


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--rounding", default="half_even", choices=["half_even", "half_up"])
    p.add_argument("--calib-images", type=int_at_least(1), default=256)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--out", required=True, type=output_file)
    a = p.parse_args(argv)
    if Path(a.out).resolve() == Path(a.checkpoint).resolve():
        p.error(f"argument --out: {a.out} is the checkpoint itself; the bundle would "
                "overwrite it")
    cfg = ptq_config(a.dataset, a.rounding, a.calib_images, a.seed)
    prep = write_bundle_for(a.checkpoint, cfg, a.out, a.data_dir)
    for i, b in enumerate(prep.stage.blocks):
        print(f"block{i}: shifts conv1 {b.conv1.shift} conv2 {b.conv2.shift} conv3 "
              f"{b.conv3.shift} skip {b.skip_shift} add->out {b.out_shift}")
    print(f"wrote {a.out} ({cfg['rounding']}, {cfg['calib_images']} calibration images)")
    return 0


if __name__ == "__main__":
    run_cli(main)
