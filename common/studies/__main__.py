"""python -m common.studies {sweep,formats,fxp-search} --net {lenet,conv2x} [options]"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from common.cli import run_cli
from common.studies import StudyError, formats, fxp, sweep
from common.network import REGISTRY, get_network
from common.studies.nets import checkpoint_sha256, network_for
from common.studies.runner import Context

QUICK = {"images": 500, "calib": 64, "val": 500, "bits": "1,2,4,8"}


def _int_list(text: str, what: str) -> list[int]:
    """'1-8' or '1,2,4' -> sorted ints."""
    try:
        if "-" in text:
            lo, hi = (int(t) for t in text.split("-"))
            vals = list(range(lo, hi + 1))
        else:
            vals = [int(t) for t in text.split(",") if t]
    except ValueError:
        raise StudyError(f"{what} {text!r}: expected e.g. 1-8 or 2,4,8") from None
    if not vals or min(vals) < 1 or max(vals) > 16:
        raise StudyError(f"{what} {text!r}: widths must be in 1..16")
    return sorted(set(vals))


def _choices(text: str, known: tuple[str, ...], what: str) -> list[str]:
    vals = [t for t in text.split(",") if t]
    bad = [v for v in vals if v not in known]
    if bad or not vals:
        raise StudyError(f"{what} {text!r}: unknown {bad or 'empty'}; known: {','.join(known)}")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m common.studies", description=__doc__)
    ap.add_argument("study", choices=["sweep", "formats", "fxp-search"])
    ap.add_argument("--net", required=True, choices=sorted(REGISTRY))
    ap.add_argument("--dataset", help="default: the network's own (lenet mnist, conv2x "
                    "fashion-mnist)")
    ap.add_argument("--data-dir", help="folder of the dataset files (default: system, then "
                    "the embedded subset)")
    ap.add_argument("--checkpoint", help="float checkpoint (default: the network's)")
    ap.add_argument("--out", type=Path, help="output folder (default studies-out/STUDY-NET-DATASET)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes (default: every core)")
    ap.add_argument("--ray", metavar="ADDRESS", help="run the configurations on this Ray cluster")
    ap.add_argument("--quick", action="store_true",
                    help=f"small version: {QUICK['images']} test images, {QUICK['calib']} "
                    f"calibration, {QUICK['val']} validation images, bits {QUICK['bits']}")
    ap.add_argument("--images", type=int, help="test images (default all; --quick 500)")
    ap.add_argument("--calib", type=int, help="calibration images (default: the network's "
                    "deployed setting)")
    ap.add_argument("--val", type=int, help="fxp-search validation images from the training "
                    "data (default 5000)")
    ap.add_argument("--seed", type=int, default=0, help="validation split seed")
    ap.add_argument("--bits", help="sweep widths, e.g. 1-8 (default) or 2,4,8")
    ap.add_argument("--schemes", default=",".join(sweep.SCHEMES))
    ap.add_argument("--modes", help=f"sweep: {','.join(sweep.MODES)}; formats: "
                    f"{','.join(formats.MODES)} (default all)")
    ap.add_argument("--formats", default=",".join(formats.FORMATS))
    ap.add_argument("--budget", type=float, default=1.0,
                    help="fxp-search total relative accuracy loss budget in %% (default 1)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)

    net = network_for(a.net)
    dataset = a.dataset or net.default_dataset
    net.check_dataset(dataset)
    ck = net.checkpoint_for(dataset, a.checkpoint)
    q = a.quick
    images = a.images if a.images is not None else (QUICK["images"] if q else None)
    calib = a.calib if a.calib is not None else (
        QUICK["calib"] if q else get_network(a.net).calib_images)
    val = a.val if a.val is not None else (QUICK["val"] if q else 5000)
    for name, v in (("--images", images), ("--calib", calib), ("--val", val), ("--jobs", a.jobs)):
        if v is not None and v < 1:
            raise StudyError(f"{name} must be >= 1, got {v}")
    if not 0 < a.budget < 100:
        raise StudyError(f"--budget {a.budget}: must be in (0, 100) percent")
    out = a.out or Path("studies-out") / f"{a.study}-{a.net}-{dataset}"
    ctx = Context(a.net, str(ck), checkpoint_sha256(ck), dataset, a.data_dir, images, calib,
                  val if a.study == "fxp-search" else 0, a.seed)
    progress = not a.no_progress
    if a.study == "sweep":
        bits = _int_list(a.bits or (QUICK["bits"] if q else "1-8"), "--bits")
        sweep.run(ctx, out, bits, _choices(a.schemes, sweep.SCHEMES, "--schemes"),
                  _choices(a.modes or ",".join(sweep.MODES), sweep.MODES, "--modes"),
                  a.jobs, a.ray, progress)
    elif a.study == "formats":
        formats.run(ctx, out, _choices(a.formats, formats.FORMATS, "--formats"),
                    _choices(a.modes or ",".join(formats.MODES), formats.MODES, "--modes"),
                    a.jobs, a.ray, progress)
    else:
        fxp.run(ctx, out, a.budget / 100, a.jobs, a.ray, progress)
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    run_cli(main)
