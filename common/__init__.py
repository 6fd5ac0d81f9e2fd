"""Shared pieces of the NPU PTQ deployment pipeline (used by ptq_conv2x and lenet_npu)."""

import warnings as _warnings

# Brevitas warns on import that an optional accelerator package is absent; it is not used
# here, and every command promises one line on stderr for an error, nothing else.
_warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")
_warnings.filterwarnings("ignore", message="ONNX opset version set to")
