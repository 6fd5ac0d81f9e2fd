"""Host program of every network: run its offloaded part on the NPU (or the CPU emulator)
and check it.

For every batch of images: the CPU part before the offload and the Brevitas input
quantizer give the integer input; the offloaded part runs on the NPU (pyxrt) or in the
emulator running the network's aie2.py; the rest of the network runs on the CPU. The
offloaded output must equal the integer golden model (same bundle) in every element;
predictions are compared with the Brevitas fake-quant model, the float model and the
label. Prints PASS! only when every output is bit-exact and top-1 agreement with Brevitas
is at least AGREEMENT_MIN; otherwise FAIL and exit status 1. Bad input: one line on
stderr, exit status 2.
"""
from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from common.atomic import atomic_write_bytes
from common.cli import ArgumentParser, int_at_least, output_file, run_cli
from common.network import Network

AGREEMENT_MIN = 99.0
CHUNK = 24          # images per batched CPU forward (tensors under glibc's mmap threshold)


def parse_args(net: Network, argv: list[str] | None):
    p = ArgumentParser(prog=f"{net.folder.name}/test.py",
                       description=f"run {net.name} on the NPU or the CPU emulator and "
                                   "check it bit-exact")
    build = net.build_dir
    p.add_argument("-x", "--xclbin", default=str(build / "final.xclbin"))
    p.add_argument("-i", "--instr", default=str(build / "insts.bin"))
    p.add_argument("-k", "--kernel", default="MLIR_AIE")
    p.add_argument("--emulate", action="store_true",
                   help="run the design in the CPU emulator even if an NPU is present")
    p.add_argument("--device", default="npu", choices=["npu", "npu2"])
    p.add_argument("--images", type=int_at_least(1), default=300, help="test images to run")
    p.add_argument("--batch", type=int_at_least(1), default=net.images_per_call,
                   help=f"images per design call (default {net.images_per_call})")
    p.add_argument("--dataset", default=net.default_dataset, choices=net.datasets)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--checkpoint", default=None,
                   help="float checkpoint (default: the shipped one for --dataset)")
    p.add_argument("--bundle", default=None, help="deploy bundle (default: "
                   f"{build.relative_to(net.folder.parent)}/{net.name}_<rounding>.npz)")
    p.add_argument("--rounding", default="half_even", choices=["half_even", "half_up"])
    p.add_argument("--calib-images", type=int_at_least(1), default=net.calib_images,
                   help="calibration images the bundle was made with (checked)")
    p.add_argument("--jobs", type=int_at_least(1), default=1,
                   help="emulator only: worker processes running calls in parallel (each "
                   "starts in a few seconds; pays off for long runs)")
    p.add_argument("--save-io", default=None, metavar="FILE.npz", type=output_file,
                   help="also write the integer inputs and outputs of the offloaded part, "
                   "labels and predictions, to check with another reference")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    if a.batch != net.images_per_call and net.images_per_call == 1:
        p.error(f"argument --batch: the {net.name} design takes one image per call")
    a.checkpoint = a.checkpoint or str(net.checkpoint_for(a.dataset))
    return a


def choose_offload(net: Network, a, bundle: Path):
    """The NPU when a device, pyxrt and the built xclbin are there (and no --emulate);
    otherwise the CPU emulator running the same aie2.py, saying why."""
    from common import hw
    from common.offload import EmulatedOffload, XrtOffload

    if a.emulate:
        why = "--emulate given"
    elif not hw.has_ryzen_ai_npu():
        why = "no Ryzen AI NPU / pyxrt on this machine"
    elif not Path(a.xclbin).is_file():
        why = f"{a.xclbin} not built (run make with mlir-aie installed)"
    else:
        return XrtOffload(a.xclbin, a.instr, a.kernel), "NPU (pyxrt)"
    return (EmulatedOffload(net.design, net.design_args(a.device, bundle, a.batch)),
            f"CPU emulator ({why})")


def save_io(path: str, bundle_sha256: str, offload_in: np.ndarray, offload_out: np.ndarray,
            labels: np.ndarray, pred: dict[str, np.ndarray]) -> None:
    """Write (atomically) what an independent reference needs to re-check a run:
    ``stage_in`` and ``stage_out``: the integer input and output of the offloaded part
    (NCHW / (N, classes)), ``labels`` and ``pred_<offload|float|fake_quant>`` int64 (N,),
    and ``bundle_sha256`` (content hash of the bundle the run used)."""
    buf = io.BytesIO()
    np.savez(buf, stage_in=offload_in, stage_out=offload_out, labels=labels.astype(np.int64),
             bundle_sha256=np.array(bundle_sha256),
             **{f"pred_{k.replace('-', '_')}": v.astype(np.int64) for k, v in pred.items()})
    atomic_write_bytes(path, buf.getvalue())


class OffloadedRuns:
    """Iterator over the offloaded outputs (integer arrays, one per image) in order;
    ``device_s`` sums the device/emulator seconds of the calls. With ``jobs`` > 1 the
    emulated calls go to an EmulationPool of that many processes."""

    def __init__(self, net: Network, a, offload, bundle: Path, stage, in_ints: np.ndarray):
        self.net, self.a, self.offload, self.bundle = net, a, offload, bundle
        self.stage, self.in_ints = stage, in_ints
        self.weights = stage.weight_blob()
        self.device_s = 0.0
        self.host_s = 0.0      # layout conversion to and from the device tensors

    def _calls(self) -> Iterator[tuple[int, np.ndarray]]:
        b = self.a.batch
        for i in range(0, len(self.in_ints), b):
            chunk = self.in_ints[i:i + b]
            t0 = time.perf_counter()
            x = self.stage.device_inputs(chunk, b)
            self.host_s += time.perf_counter() - t0
            yield len(chunk), x

    def _outputs(self, out: np.ndarray, n: int) -> list[np.ndarray]:
        t0 = time.perf_counter()
        images = list(self.stage.from_device(out, n))
        self.host_s += time.perf_counter() - t0
        return images

    def __iter__(self):
        b, st = self.a.batch, self.stage
        if self.a.jobs > 1 and self.offload.kind == "emulator":
            from common.emu.pool import EmulationPool

            calls = list(self._calls())
            with EmulationPool(self.net.design,
                               self.net.design_args(self.a.device, self.bundle, b),
                               self.a.jobs, fixed={1: self.weights}) as pool:
                sets = ([x, None, None] for _, x in calls)
                for (n, _), ((out,), dt) in zip(calls, pool.imap(sets, outputs=[2])):
                    self.device_s += dt
                    yield from self._outputs(out, n)
            return
        for n, x in self._calls():
            tensors = [x, self.weights, st.device_outputs(b)]
            self.device_s += self.offload.run(tensors, outputs=[2])
            yield from self._outputs(tensors[2], n)


class Beside(threading.Thread):
    """``fn()`` in a daemon thread, so that the offloaded runs (the emulator: one core;
    the NPU: waiting) go on while the main thread computes the reference checks; ``join``
    returns its result or raises its error. A daemon: Ctrl-C in the main thread ends the
    program without waiting for it."""

    def __init__(self, fn) -> None:
        super().__init__(name="offload", daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by join
            self.error = e

    def join(self, timeout: float | None = None):
        super().join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


def _batched(fn, x, n: int) -> np.ndarray:
    return np.concatenate([fn(x[i:i + CHUNK]) for i in range(0, n, CHUNK)])


def host_main(net: Network, argv: list[str] | None = None) -> int:
    import torch
    from tqdm import tqdm

    from common.bundle import BundleError
    from common.checkpoint import CheckpointError
    from common.pipeline import eval_dataset, prepare, ptq_config, restore

    a = parse_args(net, argv)
    torch.set_num_threads(2)
    if not Path(a.checkpoint).is_file():
        raise CheckpointError(f"{a.checkpoint}: checkpoint not found"
                              + (" (it is a directory)" if Path(a.checkpoint).is_dir() else ""))
    cfg = ptq_config(net, a.dataset, a.rounding, a.calib_images)
    bundle = Path(a.bundle) if a.bundle else net.bundle_path(a.dataset, cfg["rounding"])
    stage, manifest, prep = restore(net, a.checkpoint, bundle, cfg)
    if prep is None:        # a bundle without the quantizer state: calibrate again
        prep = prepare(net, a.checkpoint, cfg, a.data_dir, progress=not a.quiet)
        if not np.array_equal(prep.stage.weight_blob(), stage.weight_blob()) or \
                prep.stage.bundle_content()[0] != stage.bundle_content()[0]:
            raise BundleError(f"{bundle}: differs from the Brevitas model recalibrated from "
                              "the same checkpoint and config")
    ds = eval_dataset(a.dataset, "test", a.data_dir, a.images)
    offload, where = choose_offload(net, a, bundle)
    x_all = net.input_tensor(ds.images)
    n = len(ds)
    print(f"{n} test images from {ds.source}; offload on {where}; rounding {stage.rounding.value}")
    qm, fm = prep.quant_model, prep.float_model

    # Host side of the offloaded path (timed apart from the device/emulator calls); the
    # offloaded runs go on beside the reference checks (float model, Brevitas fake-quant
    # model, golden model), which use one torch thread while they run, two after.
    with torch.no_grad():
        t0 = time.perf_counter()
        in_ints = _batched(qm.offload_input, x_all, n)
        t_host = time.perf_counter() - t0
        runs = OffloadedRuns(net, a, offload, bundle, stage, in_ints)
        bar = tqdm(total=n, desc=f"images ({offload.kind})", disable=a.quiet)

        def collect() -> tuple[list[np.ndarray], float]:
            outs, t0 = [], time.perf_counter()
            for o in runs:
                outs.append(o)
                bar.update(1)
            return outs, time.perf_counter() - t0

        offloaded = Beside(collect)
        pf, fq, gold = [], [], []
        for i in range(0, n, CHUNK):
            for out, fn, x in ((pf, lambda v: fm(v).argmax(1).numpy(), x_all),
                               (fq, qm.reference, x_all), (gold, stage.golden, in_ints)):
                torch.set_num_threads(1 if offloaded.is_alive() else 2)
                out.append(fn(x[i:i + CHUNK]))
        outs, t_wall = offloaded.join()
        out_dev_a = np.stack(outs)
        torch.set_num_threads(2)
        bar.close()
        t_dev = runs.device_s
        t_host += runs.host_s
        t0 = time.perf_counter()
        pred = {"offload": qm.predict(out_dev_a)}
        t_host += time.perf_counter() - t0
    pred["float"] = np.concatenate(pf)
    fq_out = np.concatenate([r[0] for r in fq])
    pred["fake-quant"] = np.concatenate([r[1] for r in fq])
    gold = np.concatenate(gold)

    mism = int(np.count_nonzero(gold != out_dev_a))
    mism_fq = int(np.count_nonzero(fq_out != out_dev_a))
    labels = ds.labels
    acc = {k: 100.0 * float(np.mean(v == labels)) for k, v in pred.items()}
    agree = 100.0 * float(np.mean(pred["offload"] == pred["fake-quant"]))
    agree_f = 100.0 * float(np.mean(pred["offload"] == pred["float"]))

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
    if a.save_io:  # after the table, so a failed write does not lose it
        save_io(a.save_io, manifest["content_sha256"], in_ints, out_dev_a, labels, pred)
    if ok:
        print("PASS!")
        return 0
    print(f"FAIL: {mism} mismatching elements, agreement {agree:.2f}% (need 0 and "
          f">= {AGREEMENT_MIN}%)")
    return 1


def run_host(net: Network) -> None:
    """Entry point of a network's test.py: expected errors are one line, exit status 2."""
    from common.bundle import BundleError
    from common.checkpoint import CheckpointError
    from common.datasets import DatasetError
    from common.emu import EmulationError
    from common.offload import OffloadError
    from common.quant import QuantError

    run_cli(lambda: host_main(net, sys.argv[1:]),
            (BundleError, CheckpointError, DatasetError, EmulationError, OffloadError,
             QuantError, OSError, ValueError), 2)


__all__ = ["host_main", "run_host", "AGREEMENT_MIN"]
