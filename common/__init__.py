"""Shared pieces of the NPU PTQ deployment pipeline (used by ptq_conv2x and lenet_npu)."""
