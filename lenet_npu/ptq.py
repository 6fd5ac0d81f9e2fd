"""Post-training quantization of LeNet-5 with Brevitas -> deploy bundle.

    python -m lenet_npu.ptq [--dataset mnist|fashion-mnist|cifar10|svhn] [--checkpoint CK] \
        [--rounding half_even|half_up] [--calib-images 1000] --out lenet_npu/build/b.npz
"""
from common.pipeline import run_ptq
from lenet_npu.network import NETWORK

if __name__ == "__main__":
    run_ptq(NETWORK)
