# aie.iron.algorithms inside @iron.jit generators: an element lambda and a library kernel
# spread over the device's columns.
import sys

import numpy as np

import aie.iron as iron
from aie.iron import CompileTime, In, Out
from aie.iron.algorithms import transform, transform_parallel
from aie.utils.hostruntime import set_current_device
from aie.iron.device import NPU1
from aie.utils.verify import assert_pass


@iron.jit
def plus_one(a: In, b: Out, *, n: CompileTime[int]):
    return transform(lambda x: x + 1, np.ndarray[(n,), np.dtype[np.int32]], tile_size=16)


@iron.jit
def copy_cols(a: In, b: Out, *, n: CompileTime[int]):
    k = iron.kernels.passthrough(tile_size=32, dtype=np.int32)
    return transform_parallel(k, np.ndarray[(n,), np.dtype[np.int32]], tile_size=32)


if __name__ == "__main__":
    set_current_device(NPU1())
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    a = iron.arange(n, dtype=np.int32)
    b = iron.zeros(n, dtype=np.int32)
    plus_one(a, b, n=n)
    assert_pass(b.numpy(), a.numpy() + 1)
    c = iron.zeros(n, dtype=np.int32)
    copy_cols(a, c, n=n)
    assert_pass(c.numpy(), a.numpy())
