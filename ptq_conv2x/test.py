#!/usr/bin/env python3
"""Host program: run the quantized conv2_x stage on the NPU (or the CPU emulator) and check it.

    python ptq_conv2x/test.py -x build/final.xclbin -i build/insts.bin -k MLIR_AIE
    python ptq_conv2x/test.py --emulate --images 100

For every image: stem on the CPU, Brevitas input quantizer -> int8 stage input, the
offloaded stage on the NPU (pyxrt) or in the emulator running ptq_conv2x/aie2.py, head on
the CPU. The offloaded output must equal the integer golden model (common.golden, same
bundle) in every element; predictions are compared with the Brevitas fake-quant model,
the float model and the label. Prints PASS! only when every output is bit-exact and
top-1 agreement with Brevitas is at least 99%; otherwise FAIL and exit status 1.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import hw  # noqa: E402
from common.atomic import atomic_write_bytes  # noqa: E402
from common.bundle import BundleError  # noqa: E402
from common.cli import run_cli  # noqa: E402
from common.checkpoint import CheckpointError  # noqa: E402
from common.datasets import DatasetError, to_float_tensor_input  # noqa: E402
from common.emu import EmulationError  # noqa: E402
from common.emu.pool import EmulationPool  # noqa: E402
from common.host import EmulatedOffload, OffloadError, XrtOffload  # noqa: E402
from common.layouts import from_yc8x, to_yc8x  # noqa: E402
from common.quant import QuantError  # noqa: E402
from ptq_conv2x.deploy import OUT_SHAPE, golden_stage, load_bundle  # noqa: E402
from ptq_conv2x.pipeline import (BUILD, DEFAULT_CHECKPOINT, eval_dataset, prepare,  # noqa: E402
                                 ptq_config)

AGREEMENT_MIN = 99.0
CHUNK = 24          # images per batched CPU forward (tensors under glibc's mmap threshold)


def stage_input_ints(qm, x: torch.Tensor) -> np.ndarray:
    """Stem + Brevitas input quantizer -> int8 NCHW stage input."""
    with torch.no_grad():
        q = qm.stage_input(x)
        return torch.round(q.value / q.scale).to(torch.int64).numpy().astype(np.int8)


def head_predictions(qm, out: np.ndarray, s_out: float) -> np.ndarray:
    """Dequantize the uint8 stage output (scale s_out) and run the float head."""
    return qm.head(torch.from_numpy(out.astype(np.float32) * s_out)).argmax(1).numpy()
DESIGN = Path(__file__).resolve().parent / "aie2.py"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-x", "--xclbin", default=str(BUILD / "final.xclbin"))
    p.add_argument("-i", "--instr", default=str(BUILD / "insts.bin"))
    p.add_argument("-k", "--kernel", default="MLIR_AIE")
    p.add_argument("--emulate", action="store_true",
                   help="run the design in the CPU emulator even if an NPU is present")
    p.add_argument("--device", default="npu", choices=["npu", "npu2"])
    p.add_argument("--images", type=int, default=300, help="test images to run")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument("--bundle", default=None, help="deploy bundle (default: "
                   "ptq_conv2x/build/conv2x_<rounding>.npz)")
    p.add_argument("--rounding", default="half_even", choices=["half_even", "half_up"])
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--jobs", type=int, default=1, help="emulator only: worker processes "
                   "running images in parallel (each starts in a few seconds; pays off for "
                   "long runs)")
    p.add_argument("--save-io", default=None, metavar="FILE.npz",
                   help="also write the int8 stage inputs and the offloaded uint8 outputs "
                   "(NCHW), labels and predictions, to check with another reference")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs {a.jobs}: must be at least 1")
    return a


def choose_offload(a, bundle: Path):
    """The NPU when a device, pyxrt and the built xclbin are there (and no --emulate);
    otherwise the CPU emulator running the same aie2.py, saying why."""
    if a.emulate:
        why = "--emulate given"
    elif not hw.has_ryzen_ai_npu():
        why = "no Ryzen AI NPU / pyxrt on this machine"
    elif not Path(a.xclbin).is_file():
        why = f"{a.xclbin} not built (run make with mlir-aie installed)"
    else:
        return XrtOffload(a.xclbin, a.instr, a.kernel), "NPU (pyxrt)"
    return EmulatedOffload(DESIGN, [a.device, "--bundle", str(bundle)]), f"CPU emulator ({why})"


def save_io(path: str, bundle_sha256: str, stage_in: np.ndarray, stage_out: np.ndarray,
            labels: np.ndarray, pred: dict[str, np.ndarray]) -> None:
    """Write (atomically) what an independent reference needs to re-check a run:
    ``stage_in`` int8 (N, 64, 32, 32), ``stage_out`` uint8 (N, 256, 32, 32) as offloaded,
    ``labels`` and ``pred_<offload|float|fake_quant>`` int64 (N,), and ``bundle_sha256``
    (content hash of the bundle the run used)."""
    buf = io.BytesIO()
    np.savez(buf, stage_in=stage_in, stage_out=stage_out, labels=labels.astype(np.int64),
             bundle_sha256=np.array(bundle_sha256),
             **{f"pred_{k.replace('-', '_')}": v.astype(np.int64) for k, v in pred.items()})
    atomic_write_bytes(path, buf.getvalue())


class OffloadedRuns:
    """Iterator over the offloaded stage outputs (flat uint8 YCXC8) of every image, in
    order; ``device_s`` sums the device/emulator seconds of the runs. With ``--jobs`` > 1
    the emulated runs go to an EmulationPool of that many processes."""

    def __init__(self, a, offload, bundle: Path, in_ints: np.ndarray, weights: np.ndarray):
        self.a, self.offload, self.bundle = a, offload, bundle
        self.in_ints, self.weights = in_ints, weights
        self.device_s = 0.0

    def __iter__(self):
        if self.a.jobs > 1 and self.offload.kind == "emulator":
            with EmulationPool(DESIGN, [self.a.device, "--bundle", str(self.bundle)],
                               self.a.jobs, fixed={1: self.weights}) as pool:
                sets = ([to_yc8x(x).reshape(-1), None, None] for x in self.in_ints)
                for (out,), dt in pool.imap(sets, outputs=[2]):
                    self.device_s += dt
                    yield out
            return
        for x in self.in_ints:
            tensors = [to_yc8x(x).reshape(-1), self.weights,
                       np.zeros(int(np.prod(OUT_SHAPE)), np.uint8)]
            self.device_s += self.offload.run(tensors, outputs=[2])
            yield tensors[2]


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(2)
    cfg = ptq_config(a.dataset, a.rounding, a.calib_images)
    bundle = Path(a.bundle) if a.bundle else BUILD / f"conv2x_{cfg['rounding']}.npz"
    stage, manifest = load_bundle(bundle, a.checkpoint, cfg)
    prep = prepare(a.checkpoint, cfg, a.data_dir, progress=not a.quiet)
    for i, (pb, bb) in enumerate(zip(prep.stage.blocks, stage.blocks)):
        for c_p, c_b in zip(pb.convs(), bb.convs()):
            if not (np.array_equal(c_p.weight, c_b.weight) and np.array_equal(c_p.bias, c_b.bias)
                    and c_p.shift == c_b.shift):
                raise BundleError(f"{bundle}: block{i} differs from the Brevitas model "
                                  "recalibrated from the same checkpoint and config")
    ds = eval_dataset(a.dataset, "test", a.data_dir, a.images)
    offload, where = choose_offload(a, bundle)
    weights = np.concatenate([stage.weight_blob(i) for i in range(3)])
    x_all = torch.from_numpy(to_float_tensor_input(ds.images))
    n = len(ds)
    print(f"{n} test images from {ds.source}; offload on {where}; rounding {stage.rounding.value}")

    qm, fm = prep.quant_model, prep.float_model
    s_out = 2.0 ** stage.scales_log2["block2.relu3"]

    # Host side of the offloaded path: stem + Brevitas input quantizer (batched), YCXC8
    # layout in and out, head. Timed separately from the device/emulator call.
    t0 = time.perf_counter()
    in_ints = np.concatenate([stage_input_ints(qm, x_all[i:i + CHUNK])
                              for i in range(0, n, CHUNK)])
    t_host = time.perf_counter() - t0
    out_dev = np.empty((n,) + OUT_SHAPE, np.uint8)
    t0 = time.perf_counter()
    runs = OffloadedRuns(a, offload, bundle, in_ints, weights)
    for k, act_out in enumerate(tqdm(runs, total=n, desc=f"images ({offload.kind})",
                                     disable=a.quiet)):
        out_dev[k] = from_yc8x(act_out.reshape(OUT_SHAPE[1], OUT_SHAPE[0] // 8, OUT_SHAPE[2], 8),
                               OUT_SHAPE[0])
    t_wall = time.perf_counter() - t0
    t_dev = runs.device_s
    t_host += t_wall - t_dev if a.jobs == 1 else 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = {"offload": head_predictions(qm, out_dev, s_out)}
    t_host += time.perf_counter() - t0

    # References (not timed): float model, Brevitas fake-quant model.
    fq_out = np.empty_like(out_dev)
    with torch.no_grad():
        pred["float"] = np.concatenate([fm(x_all[i:i + CHUNK]).argmax(1).numpy()
                                        for i in range(0, n, CHUNK)])
        fq_pred = []
        for i in range(0, n, CHUNK):
            qout = qm.stage(qm.stage_input(x_all[i:i + CHUNK]))
            fq_out[i:i + CHUNK] = torch.round(qout.value / qout.scale).numpy().astype(np.uint8)
            fq_pred.append(qm.head(qout.value).argmax(1).numpy())
        pred["fake-quant"] = np.concatenate(fq_pred)

    gold = np.concatenate([golden_stage(stage, in_ints[i:i + CHUNK])
                           for i in range(0, n, CHUNK)])
    mism = int(np.count_nonzero(gold != out_dev))
    mism_fq = int(np.count_nonzero(fq_out != out_dev))
    labels = ds.labels
    acc = {k: 100.0 * float(np.mean(v == labels)) for k, v in pred.items()}
    agree = 100.0 * float(np.mean(pred["offload"] == pred["fake-quant"]))
    agree_f = 100.0 * float(np.mean(pred["offload"] == pred["float"]))

    if a.save_io:
        save_io(a.save_io, manifest["content_sha256"], in_ints, out_dev, labels, pred)

    print()
    print(f"{'':32s}{'value':>12s}")
    print(f"{'images':32s}{n:>12d}")
    print(f"{'accuracy float (top-1 %)':32s}{acc['float']:>12.2f}")
    print(f"{'accuracy fake-quant (top-1 %)':32s}{acc['fake-quant']:>12.2f}")
    print(f"{'accuracy ' + offload.kind + ' (top-1 %)':32s}{acc['offload']:>12.2f}")
    print(f"{'mismatches vs golden (elements)':32s}{mism:>12d}")
    print(f"{'mismatches vs Brevitas (elem.)':32s}{mism_fq:>12d}")
    print(f"{'top-1 agreement w/ Brevitas (%)':32s}{agree:>12.2f}")
    print(f"{'top-1 agreement w/ float (%)':32s}{agree_f:>12.2f}")
    print(f"{'host time / image (ms)':32s}{1e3 * t_host / n:>12.2f}")
    print(f"{offload.kind + ' time / image (ms)':32s}{1e3 * t_dev / n:>12.2f}")
    if a.jobs > 1 and offload.kind == "emulator":
        print(f"{'wall time / image (ms)':32s}{1e3 * t_wall / n:>12.2f}"
              f"   ({a.jobs} emulator processes, start-up included)")
    ok = mism == 0 and agree >= AGREEMENT_MIN
    if ok:
        print("PASS!")
        return 0
    print(f"FAIL: {mism} mismatching elements, agreement {agree:.2f}% (need 0 and "
          f">= {AGREEMENT_MIN}%)")
    return 1


if __name__ == "__main__":
    run_cli(main, (BundleError, CheckpointError, DatasetError, EmulationError, OffloadError,
                   QuantError), 2)
