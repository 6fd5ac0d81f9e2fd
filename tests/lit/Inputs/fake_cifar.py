"""Write small synthetic CIFAR-10 python batches into DIR (5 x 200 training images, 200
test images): noise plus a bright bar whose position and colour channel give the class,
so that one epoch learns something. Used by cifar10.test."""
import pickle
import sys
from pathlib import Path

import numpy as np


def batch(rng: np.random.Generator, n: int) -> dict:
    labels = rng.integers(0, 10, n)
    x = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = (k // 5) * 16, (k % 5) * 6
        x[i, k % 3, r:r + 12, c:c + 6] = 230
    return {b"data": x.reshape(n, 3072), b"labels": labels.tolist()}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(out / name, "wb") as f:
            pickle.dump(batch(rng, 200), f)
