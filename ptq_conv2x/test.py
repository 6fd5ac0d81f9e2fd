#!/usr/bin/env python3
"""Host program: run the quantized conv2_x stage on the NPU (or the CPU emulator) and check it.

    python ptq_conv2x/test.py -x build/final.xclbin -i build/insts.bin -k MLIR_AIE
    python ptq_conv2x/test.py --emulate --images 100

Stem on the CPU, Brevitas input quantizer -> uint8 stage input, the stage on the NPU or
in the emulator running ptq_conv2x/aie2.py, head on the CPU; checked element by element
against the integer golden model (common.hostrun has the whole story).
"""
from common.hostrun import run_host
from ptq_conv2x.network import NETWORK

if __name__ == "__main__":
    run_host(NETWORK)
