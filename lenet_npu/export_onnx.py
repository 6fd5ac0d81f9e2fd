"""Export the quantized LeNet-5 as ONNX QCDQ (Brevitas) and check it with ONNX Runtime.

    python -m lenet_npu.export_onnx [--dataset fashion-mnist] --out lenet_npu/build/lenet_qcdq.onnx

Graph input: the image (N, C, H, W) in [0, 1]; output: the logits (int32 accumulators
times their scale); see common/export_onnx.py.
"""
from common.export_onnx import run_export
from lenet_npu.network import NETWORK

if __name__ == "__main__":
    run_export(NETWORK)
