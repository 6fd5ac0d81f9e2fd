"""Dataset readers: real embedded data loads; corrupt files give errors naming the file."""
import gzip
import pickle

import numpy as np
import pytest

from common.datasets import (DatasetError, idx_bytes, load_cifar10, load_dataset,
                             load_idx_pair, load_svhn, read_idx, to_float_tensor_input)


def test_embedded_fashion_and_mnist_are_real_and_consistent():
    for name, n_test in (("fashion-mnist", 1000), ("mnist", 1000)):
        ds = load_dataset(name, "test", data_dir=f"data/{name}")
        assert ds.images.shape == (n_test, 28, 28) and ds.images.dtype == np.uint8
        assert ds.labels.shape == (n_test,) and set(np.unique(ds.labels)) == set(range(10))
        assert ds.images.std() > 20  # real pictures, not blank or constant


def _write(tmp_path, name, payload, gz=False):
    p = tmp_path / (name + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(payload) if gz else payload)
    return p


def test_idx_roundtrip_plain_and_gz(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for gz in (False, True):
        p = _write(tmp_path, f"x{gz}", idx_bytes(a), gz)
        np.testing.assert_array_equal(read_idx(p), a)


def test_idx_bad_magic_names_file(tmp_path):
    p = _write(tmp_path, "bad", b"\x00\x00\x09\x03" + b"\x00" * 20)
    with pytest.raises(DatasetError, match=r"bad.*bad magic number"):
        read_idx(p)


def test_idx_truncated_and_trailing(tmp_path):
    raw = idx_bytes(np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(_write(tmp_path, "t", raw[:-3]))
    with pytest.raises(DatasetError, match="trailing"):
        read_idx(_write(tmp_path, "u", raw + b"\x00"))
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_idx(_write(tmp_path, "v.gz", gzip.compress(raw)[:-10]))


def test_idx_count_mismatch(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 2, 2), np.uint8)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DatasetError, match="5 images but .* 4 labels"):
        load_idx_pair(tmp_path, "test")


def test_missing_dir_and_file_say_how_to_get(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "nope")
    with pytest.raises(DatasetError, match="no t10k-images.*to obtain it: install the Debian"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(4))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(1, np.uint8)))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte: truncated.*to obtain it"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)


def test_cifar_batches(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [1, 2, 3]}, f)
    ds = load_cifar10(tmp_path, "test")
    assert ds.images.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(ds.images[1, :, :, 0].reshape(-1), data[1, :1024])
    (tmp_path / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="data_batch_1: not a CIFAR-10 batch"):
        load_cifar10(tmp_path, "train")


def test_svhn_mat(tmp_path):
    from scipy.io import savemat
    x = np.random.default_rng(1).integers(0, 256, (32, 32, 3, 2), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [3]])})
    ds = load_svhn(tmp_path, "test")
    assert ds.images.shape == (2, 32, 32, 3) and list(ds.labels) == [0, 3]
    (tmp_path / "train_32x32.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match="train_32x32.mat: not an SVHN"):
        load_svhn(tmp_path, "train")


def test_pad_to_32():
    x = to_float_tensor_input(np.full((2, 28, 28), 255, np.uint8))
    assert x.shape == (2, 1, 32, 32) and x[:, :, 2:30, 2:30].min() == 1.0 and x.sum() == 2 * 784
