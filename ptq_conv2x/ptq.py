"""Post-training quantization of the conv2_x stage with Brevitas -> deploy bundle.

    python -m ptq_conv2x.ptq [--checkpoint CK] [--rounding half_even|half_up] \
        [--calib-images 256] [--data-dir DIR] --out ptq_conv2x/build/conv2x_bundle.npz
"""
from common.pipeline import run_ptq
from ptq_conv2x.network import NETWORK

if __name__ == "__main__":
    run_ptq(NETWORK)
