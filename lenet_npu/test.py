#!/usr/bin/env python3
"""Host program: run the quantized LeNet-5 on the NPU (or the CPU emulator) and check it.

    python lenet_npu/test.py -x build/final.xclbin -i build/insts.bin -k MLIR_AIE
    python lenet_npu/test.py --emulate --images 100 [--batch 8] [--dataset fashion-mnist]

Brevitas input quantizer -> uint8 images, the whole network on the NPU or in the emulator
running lenet_npu/aie2.py (B images per call), argmax of the int32 logits on the host;
checked element by element against the integer golden model (see common.hostrun).
"""
from common.hostrun import run_host
from lenet_npu.network import NETWORK

if __name__ == "__main__":
    run_host(NETWORK)
