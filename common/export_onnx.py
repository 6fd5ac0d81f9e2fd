"""QCDQ ONNX export (Brevitas) of a network's offloaded part, checked with ONNX Runtime.

    python -m ptq_conv2x.export_onnx --out build/conv2x_qcdq.onnx   (or lenet_npu)

Graph input: the float input of the offloaded part (``onnx_input`` of the quantized model;
conv2x: its stem output, LeNet: the image); output: its dequantized output (conv2x: the
uint8 stage output; LeNet: the int32 logits times their scale). ONNX QuantizeLinear
rounds half to even, so the export equals the integer pipeline exactly in the half_even
mode, checked here on --check-images test images against the integer golden model;
half_up has no QCDQ equivalent and is refused.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from common.cli import ArgumentParser, int_at_least, output_file, run_cli
from common.network import Network
from common.quant import RoundingMode


def export(qm, example, out: str | os.PathLike) -> None:
    """Write the QCDQ ONNX model of ``qm.onnx_module()`` atomically (temp, then rename)."""
    from brevitas.export import export_onnx_qcdq

    if qm.rounding is not RoundingMode.HALF_EVEN:
        raise ValueError("QCDQ export needs rounding half_even (ONNX QuantizeLinear rounds "
                         "half to even); this model uses " + qm.rounding.value)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        export_onnx_qcdq(qm.onnx_module().eval(), args=example, export_path=tmp, dynamo=False,
                         input_names=["offload_in"], output_names=["offload_out"],
                         dynamic_axes={"offload_in": {0: "n"}, "offload_out": {0: "n"}})
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ort_ints(path: str | os.PathLike, x: np.ndarray, scale: float) -> np.ndarray:
    """Run the exported graph in ONNX Runtime; returns output / scale rounded (int64)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    return np.round(y / scale).astype(np.int64)


def export_main(net: Network, argv: list[str] | None = None) -> int:
    from common.datasets import load_dataset
    from common.pipeline import prepare, ptq_config

    p = ArgumentParser(prog=f"{net.folder.name}.export_onnx",
                       description=f"QCDQ ONNX export of {net.name}, checked by ONNX Runtime")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--dataset", default=net.default_dataset, choices=net.datasets)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--check-images", type=int_at_least(1), default=20)
    p.add_argument("--out", required=True, type=output_file)
    a = p.parse_args(argv)
    checkpoint = a.checkpoint or str(net.checkpoint_for(a.dataset))
    prep = prepare(net, checkpoint, ptq_config(net, a.dataset), a.data_dir)
    qm = prep.quant_model
    x = net.input_tensor(load_dataset(a.dataset, "test", a.data_dir).images[:a.check_images])
    x_in = qm.onnx_input(x)
    export(qm, x_in[:1], a.out)
    got = ort_ints(a.out, x_in.numpy(), qm.output_scale())
    want = prep.stage.golden(qm.offload_input(x))
    mism = int(np.count_nonzero(got != want))
    print(f"wrote {a.out}; ONNX Runtime vs integer golden on {len(x)} images "
          f"({a.dataset}): {mism} mismatching elements")
    return 0 if mism == 0 else 1


def run_export(net: Network) -> None:
    """Entry point of a network's ``export_onnx`` module."""
    run_cli(lambda: export_main(net, sys.argv[1:]))
