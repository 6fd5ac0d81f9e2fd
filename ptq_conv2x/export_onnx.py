"""Export the quantized conv2_x stage as ONNX QCDQ (Brevitas) and check it with ONNX Runtime.

    python -m ptq_conv2x.export_onnx --out ptq_conv2x/build/conv2x_stage_qcdq.onnx

Graph input: the float stem output (N, 64, 32, 32); output: the dequantized uint8 stage
output (N, 256, 32, 32). ONNX QuantizeLinear rounds half to even, so the export equals the
integer pipeline exactly in the half_even mode (checked on the embedded test images when
exporting); the half_up mode has no QCDQ equivalent and is refused.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.cli import ArgumentParser, int_at_least, output_file, run_cli
from common.datasets import load_dataset, to_float_tensor_input
from common.quant import RoundingMode
from common.pipeline import prepare, ptq_config
from ptq_conv2x.network import NETWORK
from ptq_conv2x.stage import OUTPUT_SCALE, golden_stage

DEFAULT_CHECKPOINT = NETWORK.checkpoint_for(NETWORK.default_dataset)
from ptq_conv2x.quant_model import QuantConv2xNet


class QuantStage(nn.Module):
    """Stage input quantizer + three quantized blocks; returns the dequantized output."""

    def __init__(self, qm: QuantConv2xNet):
        super().__init__()
        self.qm = qm

    def forward(self, stem_out: torch.Tensor) -> torch.Tensor:
        return self.qm.stage(self.qm.in_q(stem_out)).value


def export_stage(qm: QuantConv2xNet, example: torch.Tensor, out: str | os.PathLike) -> None:
    """Write the QCDQ ONNX model of the stage atomically (temp file, then rename)."""
    from brevitas.export import export_onnx_qcdq

    if qm.rounding is not RoundingMode.HALF_EVEN:
        raise ValueError("QCDQ export needs rounding half_even (ONNX QuantizeLinear rounds "
                         "half to even); this model uses " + qm.rounding.value)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        export_onnx_qcdq(QuantStage(qm).eval(), args=example, export_path=tmp, dynamo=False,
                         input_names=["stem_out"], output_names=["stage_out"],
                         dynamic_axes={"stem_out": {0: "n"}, "stage_out": {0: "n"}})
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ort_stage_ints(path: str | os.PathLike, stem_out: np.ndarray, s_out: float) -> np.ndarray:
    """Run the exported stage in ONNX Runtime; returns the uint8 stage output (NCHW)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: stem_out.astype(np.float32)})[0]
    return np.round(y / s_out).astype(np.int64).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--check-images", type=int_at_least(1), default=20)
    p.add_argument("--out", required=True, type=output_file)
    a = p.parse_args(argv)
    prep = prepare(NETWORK, a.checkpoint, ptq_config(NETWORK), a.data_dir)
    qm = prep.quant_model
    x = torch.from_numpy(to_float_tensor_input(
        load_dataset("fashion-mnist", "test", a.data_dir).images[:a.check_images]))
    with torch.no_grad():
        stem = qm.stem(x)
        q = qm.in_q(stem)
        ins = torch.round(q.value / q.scale).to(torch.int64).numpy().astype(np.int8)
    export_stage(qm, stem[:1], a.out)
    got = ort_stage_ints(a.out, stem.numpy(), 2.0 ** prep.stage.scales_log2[OUTPUT_SCALE])
    mism = int(np.count_nonzero(got != golden_stage(prep.stage, ins)))
    print(f"wrote {a.out}; ONNX Runtime vs integer golden on {len(x)} images: "
          f"{mism} mismatching elements")
    return 0 if mism == 0 else 1


if __name__ == "__main__":
    run_cli(main)
