"""Export the quantized conv2_x stage as ONNX QCDQ (Brevitas) and check it with ONNX Runtime.

    python -m ptq_conv2x.export_onnx --out ptq_conv2x/build/conv2x_stage_qcdq.onnx

Graph input: the float stem output (N, 64, 32, 32); output: the dequantized uint8 stage
output (N, 256, 32, 32); see common/export_onnx.py.
"""
from common.export_onnx import run_export
from ptq_conv2x.network import NETWORK

if __name__ == "__main__":
    run_export(NETWORK)
