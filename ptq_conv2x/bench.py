"""conv2_x benchmark entry (run by `make bench` through common.bench).

Rows: float vs int8 top-1 on the whole Fashion-MNIST test set (int8 = the Brevitas
fake-quant model, which the integer pipeline matches bit for bit: checked here on the
emulated images); images/s of the full-design emulation and of the integer golden model
(common.golden_torch, and the numpy reference formulas common.golden), each as a ratio to
the float PyTorch forward of the same conv2_x stage in the same run;
the emulator's NPU time estimate next to the 12-tile compute floor. The emulation is
measured in one process and spread over EMU_JOBS processes (one image per run in both),
interleaved with the float and golden passes.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from common import golden
from common.bench import best_time
from common.datasets import to_float_tensor_input
from common.emu.pool import EmulationPool
from common.host import EmulatedOffload
from common.kernels.host import engine_name
from common.layouts import from_yc8x, to_yc8x
from common.pipeline import eval_dataset, prepare, ptq_config, save_bundle
from ptq_conv2x.network import NETWORK
from ptq_conv2x.stage import OUT_SHAPE, golden_stage

BUILD = NETWORK.build_dir
DEFAULT_CHECKPOINT = NETWORK.checkpoint_for(NETWORK.default_dataset)

NPU1_MACS_PER_CYCLE = 256
NPU1_GHZ = 1.0
TILES = 12
EMU_IMAGES = 20
EMU_JOBS = 2          # = torch threads of the float forward
ROUNDS = 5            # speed figures: best of 5 interleaved passes over EMU_IMAGES images
CHUNK = 24          # images per batched forward: tensors stay under glibc's mmap threshold


def _top1(fn, x: torch.Tensor, labels: np.ndarray) -> float:
    with torch.no_grad():
        pred = np.concatenate([fn(x[i:i + CHUNK]).argmax(1).numpy()
                               for i in range(0, len(x), CHUNK)])
    return 100.0 * float(np.mean(pred == labels))


def _stage_out(flat: np.ndarray) -> np.ndarray:
    """Flat YCXC8 stage output -> CHW uint8."""
    return from_yc8x(flat.reshape(OUT_SHAPE[1], OUT_SHAPE[0] // 8, OUT_SHAPE[2], 8),
                     OUT_SHAPE[0])


def run() -> list[dict]:
    torch.set_num_threads(EMU_JOBS)
    cfg = ptq_config(NETWORK)
    prep = prepare(NETWORK, DEFAULT_CHECKPOINT, cfg, progress=False)
    qm, fm, stage = prep.quant_model, prep.float_model, prep.stage
    ds = eval_dataset(cfg["dataset"], "test", None, None)
    x = torch.from_numpy(to_float_tensor_input(ds.images))
    rows = []
    t0 = time.perf_counter()
    acc_f = _top1(fm, x, ds.labels)
    t_f = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc_q = _top1(qm, x, ds.labels)
    t_q = time.perf_counter() - t0
    note = f"{len(ds)} test images from {ds.source}"
    rows += [
        {"name": "conv2x float top-1", "value": acc_f, "unit": "%", "note": note},
        {"name": "conv2x int8 top-1 (Brevitas = integer path)", "value": acc_q, "unit": "%",
         "note": f"rounding {cfg['rounding']}"},
        {"name": "conv2x int8 - float", "value": acc_q - acc_f, "unit": "points",
         "note": "target: within 0.3 points"},
        {"name": "float model forward", "value": len(ds) / t_f, "unit": "img/s", "note": ""},
        {"name": "fake-quant model forward", "value": len(ds) / t_q, "unit": "img/s", "note": ""},
    ]

    # The same stage on the same images: float torch, integer golden model, emulation in
    # one process and in EMU_JOBS processes. The machine's speed drifts (shared VM), so
    # the passes are interleaved in ROUNDS rounds and each figure is its best round.
    xs = x[:EMU_IMAGES]
    with torch.no_grad():
        stem = fm.stem(xs)
        q = qm.stage_input(xs)
        ins = torch.round(q.value / q.scale).to(torch.int64).numpy().astype(np.int8)
    gold = golden_stage(stage, ins)
    gold_mism = int(np.count_nonzero(gold != golden_stage(stage, ins, golden)))
    bundle = BUILD / "bench_bundle.npz"
    save_bundle(NETWORK, bundle, stage, DEFAULT_CHECKPOINT, cfg)
    off = EmulatedOffload(BUILD.parent / "aie2.py", ["npu", "--bundle", str(bundle)])
    weights = stage.weight_blob()
    sets = [[to_yc8x(ins[k]).reshape(-1), weights, np.zeros(int(np.prod(OUT_SHAPE)), np.uint8)]
            for k in range(EMU_IMAGES)]
    pool_sets = [[s[0], None, None] for s in sets]
    outs: list = []
    with EmulationPool(BUILD.parent / "aie2.py", ["npu", "--bundle", str(bundle)],
                       EMU_JOBS, fixed={1: weights}) as pool:
        def pooled() -> None:
            outs[:] = [o for (o,), _ in pool.imap(pool_sets, [2], chunksize=2)]

        def float_stage() -> None:
            with torch.no_grad():
                fm.stage(stem)
        passes = {"float": float_stage, "golden": lambda: golden_stage(stage, ins),
                  "numpy": lambda: golden_stage(stage, ins, golden),
                  "emu": lambda: [off.run(s, [2]) for s in sets], "pool": pooled}
        for fn in passes.values():                  # warm-up (pool: start-up, loading)
            fn()
        times = {k: float("inf") for k in passes}
        for _ in range(ROUNDS):
            for k, fn in passes.items():
                times[k] = min(times[k], best_time(fn, 1, warmup=False))
    mism = sum(int(np.count_nonzero(_stage_out(s[2]) != gold[k])) for k, s in enumerate(sets))
    mism += sum(int(np.count_nonzero(_stage_out(o) != gold[k])) for k, o in enumerate(outs))
    ips = {k: EMU_IMAGES / t for k, t in times.items()}
    rows += [
        {"name": f"conv2x stage float torch (batch {EMU_IMAGES}, {EMU_JOBS} threads)",
         "value": ips["float"],
         "unit": "img/s", "note": ""},
        {"name": f"conv2x integer golden model (torch, batch {EMU_IMAGES})",
         "value": ips["golden"], "unit": "img/s",
         "note": f"{ips['float'] / ips['golden']:.2f}x the float time (target <= 1.5x); "
                 f"{gold_mism} mismatches vs the numpy reference"},
        {"name": f"conv2x integer golden reference (numpy, batch {EMU_IMAGES})",
         "value": ips["numpy"],
         "unit": "img/s", "note": f"{ips['float'] / ips['numpy']:.1f}x slower than float"},
        {"name": "conv2x full-design emulation (1 process)", "value": ips["emu"],
         "unit": "img/s", "note": f"{ips['float'] / ips['emu']:.1f}x slower than float "
                                  f"(target <= 5x); host kernels: {engine_name()} engine"},
        {"name": f"conv2x full-design emulation ({EMU_JOBS} processes)", "value": ips["pool"],
         "unit": "img/s", "note": f"{ips['float'] / ips['pool']:.1f}x slower than float; "
                                  f"{mism} mismatches vs golden in both emulations"},
    ]
    summary = off.summary
    total_macs = sum(summary.tile_macs.values())
    floor_us = total_macs / (TILES * NPU1_MACS_PER_CYCLE * NPU1_GHZ * 1e3)
    rows += [
        {"name": "emulator NPU time estimate (NPU1, 1 GHz)", "value": summary.npu_time_s * 1e6,
         "unit": "us/img", "note": "max over tiles of MACs / 256 per cycle"},
        {"name": "12-tile compute floor (NPU1, 1 GHz)", "value": floor_us,
         "unit": "us/img", "note": f"{total_macs / 1e6:.1f} M MACs / (12 x 256)"},
    ]
    return rows
