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
import io
import math
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DIR = REPO_ROOT / "data"

IDX_MAGIC_UBYTE = 0x08
DEFLATE_MAX_RATIO = 1032   # deflate never expands more than ~1032:1 (bounds gzip members)
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


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file of unsigned bytes (magic 0x00000801 labels, 0x00000803 images).

    The header's element count is checked against the bytes the file can hold before
    anything is allocated (for .gz files: at most DEFLATE_MAX_RATIO x the file size), and
    a .gz is read in chunks, never past that count.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DatasetError(f"{path}: truncated: {len(head)} bytes, no IDX header")
            zero, dtype_code, ndim = int.from_bytes(head[0:2], "big"), head[2], head[3]
            if zero != 0 or dtype_code != IDX_MAGIC_UBYTE or ndim not in (1, 3):
                raise DatasetError(
                    f"{path}: bad magic number 0x{int.from_bytes(head, 'big'):08x}; expected "
                    "0x00000801 (labels) or 0x00000803 (images): not an IDX file of unsigned "
                    "bytes")
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DatasetError(f"{path}: truncated header ({4 + len(raw_dims)} bytes)")
            dims = tuple(int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            expected = math.prod(dims)
            header = 4 + 4 * ndim
            bound = size - header if path.suffix != ".gz" else DEFLATE_MAX_RATIO * size
            if expected > bound:
                raise DatasetError(f"{path}: truncated: header says {dims} = {expected} bytes "
                                   f"of data, the file can hold at most {max(bound, 0)}")
            data = bytearray()
            while len(data) <= expected:
                chunk = f.read(min(expected + 1 - len(data), 1 << 24))
                if not chunk:
                    break
                data += chunk
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: cannot read ({e}); the file is corrupt or truncated") \
            from None
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(f"{path}: {what}: header says {dims} = {expected} bytes of data, "
                           f"file holds {'more' if len(data) > expected else len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array (magic 0x0000080N, big-endian dims)."""
    head = bytes([0, 0, IDX_MAGIC_UBYTE, a.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in a.shape)
    return head + np.ascontiguousarray(a, dtype=np.uint8).tobytes()


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else "no details"


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
    if len(labels) == 0:
        raise DatasetError(f"{lp}: holds no labels (0 items)")
    if labels.max() > 9:
        raise DatasetError(f"{lp}: label {int(labels.max())} out of range 0..9")
    return Dataset(images, labels.astype(np.int64), str(directory))


class _NdarrayRef:
    """Stands for numpy.ndarray inside a CIFAR pickle: usable only as _reconstruct's
    subtype (calling numpy.ndarray from a pickle could allocate any size)."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError("a call of numpy.ndarray refused")


def _empty_bytes(*args) -> bytes:
    """How pickles of protocols 0-2 made by Python 3 store b'' (``bytes()``); nothing else."""
    if args:
        raise pickle.UnpicklingError("bytes() with arguments refused")
    return b""


def _reconstruct(subtype, shape, dtype) -> np.ndarray:
    """numpy's pickle helper, admitted only as numpy itself uses it: an empty ndarray that
    ``__setstate__`` then fills (which checks the data's size against the shape)."""
    if subtype is not _NdarrayRef or math.prod(shape) != 0:
        raise pickle.UnpicklingError("numpy _reconstruct called with unusual arguments")
    return np._core.multiarray._reconstruct(np.ndarray, shape, dtype)


def _dtype(*args) -> np.dtype:
    """numpy.dtype without object dtypes (object arrays could hold anything)."""
    d = np.dtype(*args)
    if d.hasobject:
        raise pickle.UnpicklingError("object dtype refused")
    return d


def _frombuffer(buf, dtype, shape, order) -> np.ndarray:
    """Protocol-5 numpy arrays: the data is in the pickle; its size must match the shape."""
    return np._core.numeric._frombuffer(buf, _dtype(dtype), shape, order)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What pickles of protocols 2-4 call to rebuild bytes; nothing but latin-1 allowed."""
    if not isinstance(text, str) or not isinstance(encoding, str) \
            or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} refused")
    return text.encode("latin1")


# Globals a CIFAR-10 batch pickle may name (numpy 1 and 2 module names): numpy array
# reconstruction (_frombuffer is how protocol 5 stores arrays) and bytes (latin-1 / empty).
_CIFAR_GLOBALS = {
    **{(mod, "_reconstruct"): _reconstruct
       for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "_frombuffer"): _frombuffer for mod in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NdarrayRef,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that admits only the globals of ``_CIFAR_GLOBALS``: no code can run."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return _CIFAR_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(f"{self.path}: refused: the pickle names {module}.{name}, "
                               "which a CIFAR-10 batch never holds; not loaded") from None


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (data uint8 (N, 3072), labels int64 (N,)), N >= 1.

    The pickle is read with a restricted unpickler (numpy arrays and plain data only)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{p}: file not found; {HOW_TO_GET['cifar10']}") from None
    except OSError as e:
        raise DatasetError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        d = _CifarUnpickler(io.BytesIO(raw), p).load()
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001 - only numpy and plain data can run: a corrupt file
        raise DatasetError(f"{p}: not a CIFAR-10 batch ({type(e).__name__}: "
                           f"{_first_line(e)})") from None
    if not isinstance(d, dict):
        raise DatasetError(f"{p}: not a CIFAR-10 batch (a pickled {type(d).__name__}, "
                           "expected a dict)")
    data, lab = d.get(b"data"), d.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072 or len(data) == 0:
        what = (f"{data.dtype}{list(data.shape)}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise DatasetError(f"{p}: b'data' is {what}, expected uint8 [N, 3072] with N >= 1")
    if isinstance(lab, list) and all(type(v) is int for v in lab):
        lab = np.array(lab, dtype=np.int64) if all(0 <= v <= 9 for v in lab) else None
    elif isinstance(lab, np.ndarray) and lab.dtype.kind in "iu" and lab.ndim == 1 \
            and (lab.size == 0 or (lab.min() >= 0 and lab.max() <= 9)):
        lab = lab.astype(np.int64)
    else:
        lab = None
    if lab is None:
        raise DatasetError(f"{p}: b'labels' is not a list of ints in 0..9")
    if len(lab) != len(data):
        raise DatasetError(f"{p}: b'data' holds {len(data)} images but b'labels' {len(lab)} "
                           "labels")
    return data, lab


def load_cifar10(directory: str | os.PathLike, split: str) -> Dataset:
    """CIFAR-10 python batches (data_batch_1..5 / test_batch) -> (N, 32, 32, 3) uint8."""
    directory = Path(directory)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    imgs, labs = [], []
    for name in names:
        data, lab = read_cifar_batch(directory / name)
        imgs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labs.append(lab)
    return Dataset(np.concatenate(imgs), np.concatenate(labs), str(directory))


# MATLAB v5 MAT-file (the format of SVHN's .mat files), read here rather than with
# scipy.io.loadmat: scipy's compiled reader (1.17) crashes (SIGSEGV/SIGBUS) on some corrupt
# files (e.g. an unknown data type code in an array's tag), and a data file must never crash
# the process. Only what SVHN needs is decoded: numeric (non-complex) arrays; other variables
# are skipped by their byte counts. Layout: 128-byte header (text, version 0x0100, endian
# "IM"), then data elements: an 8-byte tag (type, byte count; or a 4-byte "small" tag with
# the count in the upper 16 bits), miCOMPRESSED (zlib) holding one miMATRIX, or miMATRIX:
# sub-elements array flags (class in the low byte), dimensions (int32), name (int8),
# real part (any numeric storage type), each padded to 8 bytes; data in Fortran order.
_MAT_CLASSES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double",
                7: "single", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32",
                13: "uint32", 14: "int64", 15: "uint64", 16: "function_handle", 17: "opaque"}
_MAT_NUMERIC = {"double": "f8", "single": "f4", "int8": "i1", "uint8": "u1", "int16": "i2",
                "uint16": "u2", "int32": "i4", "uint32": "u4", "int64": "i8", "uint64": "u8"}
_MI_NUMERIC = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
               12: "i8", 13: "u8"}
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 14, 15
_MAT_HEADER_MAX = 4096   # bytes of an array's header (flags, dims, name, data tag) we accept


@dataclass
class _MatVar:
    """One variable of a MAT file: class name, dims and, when decoded, its values."""

    cls: str
    dims: tuple[int, ...]
    data: np.ndarray | None   # decoded (Fortran order) only when asked for


class _MatFile:
    """Strict MAT v5 reader over the file's bytes; errors are DatasetError naming the file."""

    def __init__(self, path: Path, raw: bytes):
        self.path, self.raw = path, raw
        if len(raw) < 128:
            self.fail("truncated: no 128-byte MAT header")
        if raw[126:128] not in (b"IM", b"MI"):
            self.fail("not a MATLAB v5 .mat file (no endian indicator in the header)")
        self.e = "<" if raw[126:128] == b"IM" else ">"
        version = int.from_bytes(raw[124:126], "little" if self.e == "<" else "big")
        if version == 0x0200:
            self.fail("a MATLAB v7.3 (HDF5) file; SVHN's own .mat files are v5: save it "
                      "with -v7 or use the original download")
        if version != 0x0100:
            self.fail(f"MAT version 0x{version:04x}, expected 0x0100 (MATLAB v5)")

    def fail(self, what: str):
        raise DatasetError(f"{self.path}: not an SVHN .mat file: {what}")

    def u32(self, buf, pos: int) -> int:
        return int.from_bytes(buf[pos:pos + 4], "little" if self.e == "<" else "big")

    def tag(self, buf, pos: int, what: str, whole: bool = True) -> tuple[int, int, int, int]:
        """(type, byte count, data start, next element) of the element at ``pos``;
        ``whole``: its data must lie within ``buf``."""
        if pos + 8 > len(buf):
            self.fail(f"truncated at {what}")
        first = self.u32(buf, pos)
        if first >> 16:   # small element: count in the upper half, data in the next 4 bytes
            n = first >> 16
            if n > 4:
                self.fail(f"bad small-element tag at {what}")
            return first & 0xFFFF, n, pos + 4, pos + 8
        n = self.u32(buf, pos + 4)
        if whole and pos + 8 + n > len(buf):
            self.fail(f"truncated at {what} (declares {n} bytes)")
        return first, n, pos + 8, pos + 8 + n + (-n % 8)

    def variables(self, want: set[str]) -> dict[str, _MatVar]:
        """Every top-level variable; data decoded only for numeric variables in ``want``."""
        out: dict[str, _MatVar] = {}
        pos = 128
        while pos < len(self.raw):
            kind, n, start, _ = self.tag(self.raw, pos, f"element at byte {pos}")
            if kind == _MI_COMPRESSED:
                name, var = self._compressed(self.raw[start:start + n], want, pos)
            elif kind == _MI_MATRIX:
                name, var = self._matrix(self.raw[start:start + n], want, pos)
            else:
                self.fail(f"data element of type {kind} at byte {pos}, expected a matrix")
            if name in out:
                self.fail(f"variable {name!r} appears twice")
            out[name] = var
            pos = start + n
        return out

    def _compressed(self, comp: bytes, want: set[str], pos: int) -> tuple[str, _MatVar]:
        """A miCOMPRESSED element: its matrix header first, the data only when wanted."""
        d = zlib.decompressobj()
        try:
            head = d.decompress(comp, _MAT_HEADER_MAX)
            kind, n, _, _ = self.tag(head, 0, f"compressed element at byte {pos}", whole=False)
            if kind != _MI_MATRIX:
                self.fail(f"compressed element at byte {pos} holds type {kind}, not a matrix")
            name, var = self._matrix(head[8:], set(), pos)
            if name not in want or var.cls not in _MAT_NUMERIC:
                return name, var
            if n > DEFLATE_MAX_RATIO * len(comp) + _MAT_HEADER_MAX:
                self.fail(f"variable {name} declares {n} bytes, more than its compressed "
                          "data can hold")
            more = 8 + n - len(head)   # max_length 0 would mean "no limit"
            body = head[:8 + n] if more <= 0 else head + d.decompress(d.unconsumed_tail, more)
        except zlib.error as e:
            self.fail(f"corrupt compressed data at byte {pos} ({e})")
        if len(body) != 8 + n:
            self.fail(f"variable {name}: compressed data truncated")
        return self._matrix(body[8:], want, pos)

    def _matrix(self, buf: bytes, want: set[str], pos: int) -> tuple[str, _MatVar]:
        """Name and variable of a miMATRIX content (after its tag); the data is decoded
        only for numeric variables in ``want`` (else ``buf`` may hold just the header)."""
        at = f"matrix at byte {pos}"
        kind, n, s, nxt = self.tag(buf, 0, at + ": array flags")
        if kind != _MI_UINT32 or n != 8:
            self.fail(f"{at}: bad array flags sub-element")
        flags = self.u32(buf, s)
        cls = _MAT_CLASSES.get(flags & 0xFF, f"class {flags & 0xFF}")
        kind, n, s, nxt = self.tag(buf, nxt, at + ": dimensions")
        if kind != _MI_INT32 or n % 4 or not 8 <= n <= 128:
            self.fail(f"{at}: bad dimensions sub-element")
        dims = tuple(int(v) for v in np.frombuffer(buf, self.e + "i4", n // 4, s))
        if min(dims) < 0:
            self.fail(f"{at}: negative dimension in {list(dims)}")
        kind, n, s, nxt = self.tag(buf, nxt, at + ": name")
        if kind != _MI_INT8 or n > 63:
            self.fail(f"{at}: bad name sub-element")
        try:
            name = bytes(buf[s:s + n]).decode("ascii")
        except UnicodeDecodeError:
            self.fail(f"{at}: variable name is not ASCII")
        if cls not in _MAT_NUMERIC or name not in want:
            return name, _MatVar(cls, dims, None)
        if flags & 0x800:
            self.fail(f"variable {name} is complex, expected real numbers")
        kind, n, s, nxt = self.tag(buf, nxt, f"variable {name}: data")
        if kind not in _MI_NUMERIC:
            self.fail(f"variable {name}: data of type {kind}, not a numeric type")
        code, count = _MI_NUMERIC[kind], math.prod(dims)
        if n != count * int(code[1]):
            self.fail(f"variable {name}: data holds {n} bytes, {list(dims)} {cls} values "
                      f"stored as {code} need {count * int(code[1])}")
        stored = np.frombuffer(buf, self.e + code, count, s)
        data = stored.astype(_MAT_NUMERIC[cls])
        if code != _MAT_NUMERIC[cls] and not np.array_equal(data, stored):
            self.fail(f"variable {name}: stored values do not fit its class {cls}")
        return name, _MatVar(cls, dims, data.reshape(dims, order="F"))


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN cropped-digit .mat -> (X uint8 (32, 32, 3, N), y int64 (N,) in 1..10), N >= 1.

    Read with a strict MAT v5 reader (see above); variable classes and shapes are checked
    before their data is decoded; MATLAB v7.3 (HDF5) files are refused."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: {'is a directory' if p.is_dir() else 'file not found'}; "
                           f"{HOW_TO_GET['svhn']}")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DatasetError(f"{p}: cannot read ({e.strerror or e})") from None
    mat = _MatFile(p, raw)
    info = mat.variables(want=set())   # headers only: classes and dims
    x_info, y_info = info.get("X"), info.get("y")
    if x_info is None or y_info is None:
        raise DatasetError(f"{p}: variables {sorted(info)[:8]}, expected X and y")
    xs = x_info.dims + (1,) * (len(x_info.dims) == 3)   # MATLAB drops a trailing 1
    if len(xs) != 4 or xs[:3] != (32, 32, 3) or x_info.cls != "uint8" or xs[3] == 0:
        raise DatasetError(f"{p}: variable X is {x_info.cls} {list(x_info.dims)}, expected "
                           "uint8 [32, 32, 3, N] with N >= 1")
    ys = y_info.dims
    if y_info.cls not in _MAT_NUMERIC or len(ys) != 2 or 1 not in ys or math.prod(ys) != xs[3]:
        raise DatasetError(f"{p}: variable y is {y_info.cls} {list(ys)}, expected {xs[3]} "
                           "numeric labels")
    data = mat.variables(want={"X", "y"})
    x, y = data["X"].data.reshape(xs, order="F"), data["y"].data.reshape(-1, order="F")
    bad = ~np.isin(y, np.arange(1, 11))
    if bad.any():
        raise DatasetError(f"{p}: variable y holds {int(bad.sum())} label(s) outside 1..10 "
                           f"(first: {y[bad][0].item()})")
    return x, y.astype(np.int64)


def load_svhn(directory: str | os.PathLike, split: str) -> Dataset:
    """SVHN cropped digits (train_32x32.mat / test_32x32.mat) -> (N, 32, 32, 3); label 10 -> 0."""
    p = Path(directory) / f"{split}_32x32.mat"
    x, y = read_svhn_mat(p)
    return Dataset(np.ascontiguousarray(x.transpose(3, 0, 1, 2)), y % 10, str(p))


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
