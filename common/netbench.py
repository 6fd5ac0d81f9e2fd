"""Benchmark rows of one network (run by `make bench` for every registered network).

Rows: float vs int8 top-1 on the whole test set of each dataset the network ships a
checkpoint for (int8 = the Brevitas fake-quant model, which the integer path matches bit
for bit) and the share of images whose int8 prediction equals the float one; images/s of
the float PyTorch forward of the offloaded layers, of the integer golden model (torch and
the numpy reference) and of the full-design emulation (one process and EMU_JOBS processes,
both including the layout conversion to and from the device tensors), interleaved on the
same images; where the 1-process emulation's time goes (kernels, fifo bookkeeping, layout
conversion, run set-up; from a profiled run, see emu_time_split); the emulator's NPU time per image at batch 1 and at the
design's default batch B with the stated dispatch and weight-transfer costs, next to the
compute floor.

Assumptions of the NPU time model (not measured here: no NPU on this machine):
DISPATCH_US per design call (host runtime / XRT command submission) and the weight blob
streamed once per call at SHIM_GBPS per shim DMA channel, split evenly over the
network's ``weight_streams`` channels (conv2x: one per column); compute = the emulator's
lower bound, the busiest tile's MACs / MACs per cycle at 1 GHz. Transfers, dispatch and
compute are added, not overlapped (an upper estimate).
"""
from __future__ import annotations

import numpy as np
import torch

from common import golden
from common.bench import best_time
from common.datasets import DatasetError
from common.network import Network

EMU_IMAGES = 24       # images of the speed passes (a multiple of LeNet's default B = 8)
EMU_JOBS = 2          # = torch threads of the float forward
ROUNDS = 5            # speed figures: best of ROUNDS interleaved passes
CHUNK = 24            # images per batched forward
DISPATCH_US = 30.0    # assumed host dispatch cost per call
SHIM_GBPS = 4.0       # assumed weight-stream bandwidth: one shim DMA channel, 4 B/cycle at 1 GHz


def _predict(fn, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([fn(x[i:i + CHUNK]).argmax(1).numpy()
                               for i in range(0, len(x), CHUNK)])


def accuracy_rows(net: Network, dataset: str) -> list[dict]:
    """Float vs int8 top-1 and same-as-float share on the full test set of ``dataset``."""
    from common.pipeline import eval_dataset, prepare, ptq_config

    cfg = ptq_config(net, dataset)
    prep = prepare(net, net.checkpoint_for(dataset), cfg, progress=False)
    ds = eval_dataset(dataset, "test", None, None)
    x = net.input_tensor(ds.images)
    pf, pq = _predict(prep.float_model, x), _predict(prep.quant_model, x)
    acc_f = 100.0 * float(np.mean(pf == ds.labels))
    acc_q = 100.0 * float(np.mean(pq == ds.labels))
    tag = f"{net.name} {dataset}"
    levers = f"; levers: {', '.join(cfg['levers']) or 'none'}" if "levers" in cfg else ""
    return [
        {"name": f"{tag} float top-1", "value": acc_f, "unit": "%",
         "note": f"{len(ds)} test images from {ds.source}"},
        {"name": f"{tag} int8 top-1 (Brevitas = integer path)", "value": acc_q, "unit": "%",
         "note": f"rounding {cfg['rounding']}{levers}"},
        {"name": f"{tag} int8 - float", "value": acc_q - acc_f, "unit": "points", "note": ""},
        {"name": f"{tag} int8 prediction = float prediction", "value":
         100.0 * float(np.mean(pf == pq)), "unit": "%", "note": ""},
    ]


def speed_rows(net: Network) -> list[dict]:
    """Float offloaded layers vs golden vs emulation on the same images; NPU time model."""
    from common.emu.pool import EmulationPool
    from common.offload import EmulatedOffload
    from common.kernels.host import engine_name
    from common.pipeline import eval_dataset, prepare, ptq_config, save_bundle

    dataset = net.default_dataset
    cfg = ptq_config(net, dataset)
    checkpoint = net.checkpoint_for(dataset)
    prep = prepare(net, checkpoint, cfg, progress=False)
    qm, fm, stage = prep.quant_model, prep.float_model, prep.stage
    x = net.input_tensor(eval_dataset(dataset, "test", None, EMU_IMAGES).images)
    before, offloaded = net.float_split(fm)
    with torch.no_grad():
        x_off = before(x)
        ins = qm.offload_input(x)
    gold = stage.golden(ins)
    gold_mism = int(np.count_nonzero(gold != stage.golden(ins, golden)))
    bundle = net.build_dir / "bench_bundle.npz"
    save_bundle(net, bundle, stage, checkpoint, cfg)
    b = net.images_per_call
    args = net.design_args("npu", bundle, b)
    off = EmulatedOffload(net.design, args)
    weights = stage.weight_blob()
    starts = range(0, EMU_IMAGES, b)
    got: list = []
    got_pool: list = []
    with EmulationPool(net.design, args, EMU_JOBS, fixed={1: weights}) as pool:
        # Both emulation passes include the layout conversion (device_inputs/from_device).
        def emu() -> None:
            got[:] = []
            for i in starts:
                s = [stage.device_inputs(ins[i:i + b], b), weights, stage.device_outputs(b)]
                off.run(s, [2])
                got.append(stage.from_device(s[2], min(b, EMU_IMAGES - i)))

        def pooled() -> None:
            sets = [[stage.device_inputs(ins[i:i + b], b), None, None] for i in starts]
            got_pool[:] = [stage.from_device(o, min(b, EMU_IMAGES - i))
                           for i, ((o,), _) in zip(starts, pool.imap(sets, [2]))]

        def float_part() -> None:
            with torch.no_grad():
                offloaded(x_off)
        passes = {"float": float_part, "golden": lambda: stage.golden(ins),
                  "numpy": lambda: stage.golden(ins, golden), "emu": emu, "pool": pooled}
        for fn in passes.values():                  # warm-up (pool: start-up, loading)
            fn()
        times = {k: float("inf") for k in passes}
        split: dict = {}
        for _ in range(ROUNDS):
            for k, fn in passes.items():
                times[k] = min(times[k], best_time(fn, 1, warmup=False))
            t = emu_time_split(off, stage, ins, weights, b)
            if not split or sum(t.values()) < sum(split.values()):
                split = t
    mism = int(np.count_nonzero(np.concatenate(got) != gold)) + \
        int(np.count_nonzero(np.concatenate(got_pool) != gold))
    ips = {k: EMU_IMAGES / t for k, t in times.items()}
    r = {k: ips["float"] / v for k, v in ips.items()}
    tag = net.name
    rows = [
        {"name": f"{tag} offloaded layers, float torch ({EMU_JOBS} threads)",
         "value": ips["float"], "unit": "img/s", "note": f"batch {EMU_IMAGES}"},
        {"name": f"{tag} integer golden model (torch)", "value": ips["golden"], "unit": "img/s",
         "note": f"{r['golden']:.2f}x the float time (target <= 1.5x); {gold_mism} "
                 "mismatches vs the numpy reference"},
        {"name": f"{tag} integer golden reference (numpy)", "value": ips["numpy"],
         "unit": "img/s", "note": f"{r['numpy']:.1f}x the float time"},
        {"name": f"{tag} full-design emulation (1 process)", "value": ips["emu"],
         "unit": "img/s", "note": f"{r['emu']:.2f}x the float time (target <= 2.0x); {b} "
                                  f"image(s) per call; host kernels: {engine_name()} engine; "
                                  "incl. layout conversion"},
    ]
    total = sum(split.values())
    for key, what in SPLIT_ROWS:
        rows.append({"name": f"{tag} emulation time: {key}",
                     "value": split[key] / EMU_IMAGES * 1e3, "unit": "ms/img",
                     "note": f"{split[key] / total:.0%} of a profiled 1-process emulation "
                             f"({total / EMU_IMAGES * 1e3:.2f} ms/img); {what}"})
    rows.append({"name": f"{tag} full-design emulation ({EMU_JOBS} processes)",
                 "value": ips["pool"], "unit": "img/s",
                 "note": f"{r['pool']:.2f}x the float time; {mism} mismatches vs golden in "
                         "both emulations"})
    return rows + npu_time_rows(net, bundle, weights.nbytes)


SPLIT_ROWS = [
    ("kernels", "C++ host kernels (common/kernels via common/kernels/host.py, ctypes call "
                "and its argument check included)"),
    ("fifo bookkeeping", "core code between kernel calls: acquire/release, object hand-offs "
                         "and copies between tiles and memtiles, party switches"),
    ("layout conversion", "device_inputs/from_device and the runtime sequence's fill/drain "
                          "copies"),
    ("run set-up", "per call: shim modules, endpoint state, parties, argument binding"),
]


def emu_time_split(off, stage, ins: np.ndarray, weights: np.ndarray,
                   b: int) -> dict[str, float]:
    """Seconds of one profiled 1-process emulation of ``ins`` in calls of ``b`` images
    (as the emu pass), split as SPLIT_ROWS: kernels and host DMA copies timed inside the run
    (RunStats with profile=True), layout conversion around it, fifo bookkeeping = the
    rest of the time the parties ran, set-up = the rest of the call."""
    from time import perf_counter

    d, n = off.design, len(ins)
    t = {k: 0.0 for k, _ in SPLIT_ROWS}
    for i in range(0, n, b):
        t0 = perf_counter()
        s = [stage.device_inputs(ins[i:i + b], b), weights, stage.device_outputs(b)]
        t1 = perf_counter()
        d.run(*s, timeout=off.timeout, profile=True)
        t2 = perf_counter()
        stage.from_device(s[2], min(b, n - i))
        t3 = perf_counter()
        st = d.last_stats
        t["kernels"] += st.kernel_s
        t["fifo bookkeeping"] += st.loop_s - st.kernel_s - st.dma_s
        t["layout conversion"] += (t1 - t0) + (t3 - t2) + st.dma_s
        t["run set-up"] += (t2 - t1) - st.loop_s
    return t


def npu_time_rows(net: Network, bundle, weight_bytes: int) -> list[dict]:
    """Modelled NPU time per image at batch 1 and at the default batch, and the floor."""
    from common import emu

    rows = []
    batches = sorted({1, net.images_per_call})
    for b in batches:
        d = emu.load_design(str(net.design), net.design_args("npu", bundle, b))
        d.run(*d.random_inputs())
        s = d.summary()
        compute_us = s.npu_time_s * 1e6
        weights_us = weight_bytes / (SHIM_GBPS * 1e3 * net.weight_streams)
        per_image = (compute_us + DISPATCH_US + weights_us) / b
        if b == batches[0]:
            macs = sum(s.tile_macs.values()) / b
            tiles = len(s.tile_macs)
            floor_us = macs / (tiles * s.macs_per_cycle * 1e3)
            rows.append({"name": f"{net.name} {tiles}-tile compute floor (NPU1, 1 GHz)",
                         "value": floor_us, "unit": "us/img",
                         "note": f"{macs / 1e6:.2f} M MACs / ({tiles} x {s.macs_per_cycle})"})
        rows.append({"name": f"{net.name} modelled NPU time, batch {b}", "value": per_image,
                     "unit": "us/img",
                     "note": f"compute {compute_us / b:.2f} + dispatch {DISPATCH_US / b:.2f} + "
                             f"weights {weights_us / b:.2f} ({weight_bytes} B over "
                             f"{net.weight_streams} x {SHIM_GBPS} GB/s); assumed: "
                             f"{DISPATCH_US:.0f} us per call; x{per_image / floor_us:.2f} "
                             "the floor"})
    return rows


def run_network(net: Network) -> list[dict]:
    """Every row of ``net`` (accuracy for each shipped checkpoint whose data is here)."""
    torch.set_num_threads(EMU_JOBS)
    rows: list[dict] = []
    for dataset in net.checkpoints:
        try:
            rows += accuracy_rows(net, dataset)
        except DatasetError as e:
            rows.append({"name": f"{net.name} {dataset} accuracy", "value": "skipped",
                         "unit": "", "note": str(e).splitlines()[0][:120]})
    return rows + speed_rows(net)
