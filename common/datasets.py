"""Small image-dataset readers that need no torchvision.

Formats: IDX (MNIST, Fashion-MNIST; plain or .gz), CIFAR-10 python pickle batches,
SVHN cropped-digit .mat files. Every loader returns ``(images, labels)`` with
``images`` uint8 of shape (N, H, W) for grey-scale sets or (N, H, W, 3) for colour
sets, and ``labels`` int64 of shape (N,).

Where data comes from, in order: a directory the user names (``data_dir``); the
standard system locations (Debian's ``dataset-fashion-mnist`` installs under
/usr/share/datasets/fashion-mnist); the small offline subsets committed under
``data/`` (real images, see data/make_embedded.py).
"""
from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DIR = REPO_ROOT / "data"

IDX_MAGIC_UBYTE = 0x08
SYSTEM_DIRS = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
    "mnist": [Path("/usr/share/datasets/mnist")],
    "cifar10": [Path("/usr/share/datasets/cifar-10-batches-py")],
    "svhn": [Path("/usr/share/datasets/svhn")],
}
DATASETS = tuple(SYSTEM_DIRS)   # names the readers know
HOW_TO_GET = {
    "fashion-mnist": "install the Debian package dataset-fashion-mnist "
                     "(apt-get install dataset-fashion-mnist) or pass --data-dir with the "
                     "four *-idx?-ubyte[.gz] files",
    "mnist": "pass --data-dir with the four MNIST *-idx?-ubyte[.gz] files",
    "cifar10": "pass --data-dir with the extracted cifar-10-batches-py folder "
               "(data_batch_1..5, test_batch)",
    "svhn": "pass --data-dir with train_32x32.mat / test_32x32.mat",
}
IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


class DatasetError(RuntimeError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    """Images (uint8, N x H x W [x 3]) and labels (int64, N), with where they came from."""

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.labels)


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file of unsigned bytes (magic 0x00000801 labels, 0x00000803 images)."""
    path = Path(path)
    try:
        with _open_maybe_gz(path) as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path}: cannot read ({e}); the file is corrupt or truncated") from None
    if len(raw) < 4:
        raise DatasetError(f"{path}: truncated: {len(raw)} bytes, no IDX header")
    zero, dtype_code, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype_code != IDX_MAGIC_UBYTE or ndim not in (1, 3):
        raise DatasetError(
            f"{path}: bad magic number 0x{int.from_bytes(raw[0:4], 'big'):08x}; expected "
            "0x00000801 (labels) or 0x00000803 (images): not an IDX file of unsigned bytes")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated header ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    have = len(raw) - header
    if have != expected:
        what = "truncated" if have < expected else "has trailing bytes"
        raise DatasetError(
            f"{path}: {what}: header says {dims} = {expected} bytes of data, file holds {have}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array (magic 0x0000080N, big-endian dims)."""
    head = bytes([0, 0, IDX_MAGIC_UBYTE, a.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in a.shape)
    return head + np.ascontiguousarray(a, dtype=np.uint8).tobytes()


def _find_idx(directory: Path, split: str, kind: str) -> Path | None:
    stem = IDX_NAMES[(split, kind)]
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (directory / cand).is_file():
            return directory / cand
    return None


def load_idx_pair(directory: str | os.PathLike, split: str) -> Dataset:
    """Images and labels of one split from a folder of IDX files; counts must agree."""
    directory = Path(directory)
    ip, lp = _find_idx(directory, split, "images"), _find_idx(directory, split, "labels")
    if ip is None or lp is None:
        missing = IDX_NAMES[(split, "images" if ip is None else "labels")]
        raise DatasetError(f"{directory}: no {missing}[.gz] in this folder")
    images, labels = read_idx(ip), read_idx(lp)
    if images.ndim != 3:
        raise DatasetError(f"{ip}: expected a 3-D image file, got shape {images.shape}")
    if labels.ndim != 1:
        raise DatasetError(f"{lp}: expected a 1-D label file, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(
            f"{ip} holds {len(images)} images but {lp} holds {len(labels)} labels: wrong counts")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{lp}: label {int(labels.max())} out of range 0..9")
    return Dataset(images, labels.astype(np.int64), str(directory))


def load_cifar10(directory: str | os.PathLike, split: str) -> Dataset:
    """CIFAR-10 python batches (data_batch_1..5 / test_batch) -> (N, 32, 32, 3) uint8."""
    directory = Path(directory)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    imgs, labs = [], []
    for name in names:
        p = directory / name
        try:
            with open(p, "rb") as f:
                # CIFAR batches are pickles by format; the user chose this folder.
                d = pickle.load(f, encoding="bytes")
            data = np.asarray(d[b"data"], dtype=np.uint8)
            lab = np.asarray(d[b"labels"], dtype=np.int64)
        except FileNotFoundError:
            raise DatasetError(f"{p}: file not found; {HOW_TO_GET['cifar10']}") from None
        except Exception as e:  # noqa: BLE001 - any unpickling failure means corrupt
            raise DatasetError(f"{p}: not a CIFAR-10 batch ({e})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(lab):
            raise DatasetError(f"{p}: expected N x 3072 data and N labels, got "
                               f"{data.shape} and {lab.shape}")
        imgs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labs.append(lab)
    return Dataset(np.concatenate(imgs), np.concatenate(labs), str(directory))


def load_svhn(directory: str | os.PathLike, split: str) -> Dataset:
    """SVHN cropped digits (train_32x32.mat / test_32x32.mat) -> (N, 32, 32, 3); label 10 -> 0."""
    from scipy.io import loadmat

    p = Path(directory) / f"{split}_32x32.mat"
    try:
        m = loadmat(p)
        x, y = m["X"], m["y"].reshape(-1)
    except FileNotFoundError:
        raise DatasetError(f"{p}: file not found; {HOW_TO_GET['svhn']}") from None
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{p}: not an SVHN .mat file ({e})") from None
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise DatasetError(f"{p}: expected X of 32x32x3xN and N labels, got {x.shape}, {y.shape}")
    y = y.astype(np.int64) % 10
    return Dataset(np.ascontiguousarray(x.transpose(3, 0, 1, 2), dtype=np.uint8), y, str(p))


def _load_from_dir(name: str, directory: Path, split: str) -> Dataset:
    loader = {"fashion-mnist": load_idx_pair, "mnist": load_idx_pair,
              "cifar10": load_cifar10, "svhn": load_svhn}[name]
    try:
        return loader(directory, split)
    except DatasetError as e:
        if "to obtain it" in str(e):
            raise
        raise DatasetError(f"{e}; to obtain it: {HOW_TO_GET[name]}") from None


def load_dataset(name: str, split: str, data_dir: str | os.PathLike | None = None,
                 allow_embedded: bool = True) -> Dataset:
    """Load ``split`` ("train"/"test") of ``name`` from data_dir, a system location, or data/.

    A user-given ``data_dir`` that fails is an error (never silently replaced).
    """
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    if name not in SYSTEM_DIRS:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(SYSTEM_DIRS)}")
    if data_dir is not None:
        d = Path(data_dir)
        if not d.is_dir():
            raise DatasetError(f"{d}: data directory does not exist; to obtain it: "
                           f"{HOW_TO_GET[name]}")
        return _load_from_dir(name, d, split)
    for d in SYSTEM_DIRS[name]:
        if d.is_dir():
            return _load_from_dir(name, d, split)
    emb = EMBEDDED_DIR / name
    if allow_embedded and emb.is_dir():
        ds = load_idx_pair(emb, split)
        return Dataset(ds.images, ds.labels, f"embedded subset {emb}")
    raise DatasetError(f"{name} ({split}) not found in {[str(p) for p in SYSTEM_DIRS[name]]}"
                       f"{' or ' + str(emb) if allow_embedded else ''}; to obtain it: "
                       f"{HOW_TO_GET[name]}")


def to_float_tensor_input(images: np.ndarray, pad_to: int = 32) -> np.ndarray:
    """uint8 images (N,H,W[,C]) -> float32 NCHW in [0,1], zero-padded centrally to pad_to."""
    x = images.astype(np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    h, w = x.shape[2:]
    if h > pad_to or w > pad_to:
        raise ValueError(f"images of {h}x{w} are larger than the {pad_to}x{pad_to} input")
    ph, pw = (pad_to - h) // 2, (pad_to - w) // 2
    return np.pad(x, ((0, 0), (0, 0), (ph, pad_to - h - ph), (pw, pad_to - w - pw)))
