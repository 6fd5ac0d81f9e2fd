"""Fuzz targets for every file reader (hypothesis, derandomized so CI is reproducible).

Random byte flips, truncations, insertions and deletions of a small valid file (and, for
the zip-based formats, mutations inside one member with a valid CRC, and random values
edited into a bundle manifest with its hash recomputed) must end in the reader's own error
type or a correct load, never in another exception.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from common.bundle import MANIFEST_HASH_KEY, MANIFEST_KEY, SCHEMA, BundleError, read_bundle
from common.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from common.datasets import DatasetError, idx_bytes, read_cifar_batch, read_idx, read_svhn_mat
from functools import partial

from common import pipeline
from ptq_conv2x.network import NETWORK

load_bundle = partial(pipeline.load_bundle, NETWORK)
from test_bad_input_files import (make_conv2x_bundle, manifest_sha256, members, rewrite_bundle,
                                  write_members)

# CI: a fixed, derandomized set of examples per target. FUZZ_EXAMPLES=N runs N random
# (not derandomized) examples per target instead, for a longer hunt.
_N = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_N or 100, deadline=None, derandomize=not _N, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")

# one mutation: (kind, position (taken modulo the length), byte / bytes / length)
_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2 ** 32), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 2 ** 32), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 2 ** 32), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 2 ** 32), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 2 ** 32), st.just(0)),
)
mutations = st.lists(_op, min_size=1, max_size=4)


def mutate(raw: bytes, ops) -> bytes:
    b = bytearray(raw)
    for kind, pos, arg in ops:
        i = pos % (len(b) + 1)
        if kind == "flip" and i < len(b):
            b[i] ^= arg
        elif kind == "set" and i < len(b):
            b[i] = arg
        elif kind == "insert":
            b[i:i] = arg
        elif kind == "delete":
            del b[i:i + arg]
        elif kind == "truncate":
            del b[i:]
    return bytes(b)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------ bundles
@pytest.fixture(scope="module")
def conv2x_bundle(work):
    return make_conv2x_bundle(work, "valid.npz")


def _load_bundle_or_error(p: Path) -> None:
    try:
        stage, m = load_bundle(p)
    except BundleError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    assert len(stage.blocks) == 3 and m["schema"] == SCHEMA


def test_fuzz_bundle_bytes(conv2x_bundle, work):
    raw = conv2x_bundle[0].read_bytes()

    @FUZZ
    @given(mutations)
    def run(ops):
        p = work / "fz.npz"
        p.write_bytes(mutate(raw, ops))
        _load_bundle_or_error(p)
    run()


def test_fuzz_bundle_member_with_valid_crc(conv2x_bundle, work):
    """Mutations inside the manifest or an .npy header, re-zipped with correct CRCs."""
    mem = members(conv2x_bundle[0])
    names = [MANIFEST_KEY + ".npy", "rtp.npy", "wts_block0.npy", "bias.block2.conv3.npy"]

    @FUZZ
    @given(st.sampled_from(names), mutations, st.booleans())
    def run(name, ops, header_only):
        m = dict(mem)
        raw = m[name]
        if header_only:   # confine the mutation to the 128-byte .npy header
            m[name] = mutate(raw[:128], ops) + raw[128:]
        else:
            m[name] = mutate(raw, ops)
        _load_bundle_or_error(write_members(work / "fzm.npz", m))
    run()


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6)


def _paths(m, prefix=()):
    """Every key path into a manifest (dict keys and list indices)."""
    items = m.items() if isinstance(m, dict) else enumerate(m) if isinstance(m, list) else []
    for k, v in items:
        yield prefix + (k,)
        yield from _paths(v, prefix + (k,))


def test_fuzz_bundle_manifest_values_rehashed(conv2x_bundle, work):
    """Random JSON values put at random places of the manifest, hash recomputed: the
    conv2x validation must refuse them (or the value is one the run accepts)."""
    src = conv2x_bundle[0]
    with np.load(src, allow_pickle=False) as z:
        manifest = json.loads(z[MANIFEST_KEY].tobytes())
    paths = sorted(p for p in _paths(manifest) if p[0] not in (MANIFEST_HASH_KEY,))

    @FUZZ
    @given(st.sampled_from(paths), _json, st.booleans())
    def run(path, value, delete):
        def edit(m):
            d = m
            for k in path[:-1]:
                d = d[k]
            if delete and isinstance(d, dict):
                del d[path[-1]]
            else:
                d[path[-1]] = value
            return m
        p = rewrite_bundle(src, work / "fzv.npz", edit)
        _load_bundle_or_error(p)
    run()


def test_fuzz_generic_bundle(work):
    from common.bundle import write_bundle
    src = work / "generic.npz"
    write_bundle(src, {"schema": SCHEMA}, {"a": np.arange(6, dtype=np.int16).reshape(2, 3),
                                          "f": np.linspace(0, 1, 5, dtype=np.float32)})
    raw = src.read_bytes()

    @FUZZ
    @given(mutations)
    def run(ops):
        p = work / "fzg.npz"
        p.write_bytes(mutate(raw, ops))
        try:
            m, a = read_bundle(p, SCHEMA)
        except BundleError:
            return
        assert sorted(a) == ["a", "f"] and m[MANIFEST_HASH_KEY] == manifest_sha256(m)
    run()


# ------------------------------------------------------------------ checkpoints
class TinyNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.conv = nn.Conv2d(in_channels, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, num_classes)


def test_fuzz_checkpoint_bytes(work):
    torch.manual_seed(0)
    src = work / "tiny.pt"
    save_checkpoint(src, TinyNet(), {"epochs": 1})
    raw = src.read_bytes()
    mem = members(src)
    pkl = next(k for k in mem if k.endswith("data.pkl"))

    @FUZZ
    @given(mutations, st.booleans())
    def run(ops, in_pickle):
        p = work / "fz.pt"
        if in_pickle:   # the pickle itself, re-zipped with a valid CRC
            write_members(p, {**mem, pkl: mutate(mem[pkl], ops)})
        else:
            p.write_bytes(mutate(raw, ops))
        try:
            model, meta = load_checkpoint(p, TinyNet)
        except CheckpointError as e:
            assert "\n" not in str(e) and str(p) in str(e)
            return
        assert isinstance(model, TinyNet)
        assert all(torch.isfinite(t).all() for t in model.state_dict().values()
                   if t.is_floating_point())
    run()


# ------------------------------------------------------------------ datasets
def _dataset_case(read, p: Path, data: bytes, check) -> None:
    p.write_bytes(data)
    try:
        out = read(p)
    except DatasetError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    check(out)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_fuzz_idx(work, gz):
    a = np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    raw = idx_bytes(a)
    raw = gzip.compress(raw) if gz else raw

    def check(x):
        assert x.dtype == np.uint8 and x.ndim in (1, 3)

    @FUZZ
    @given(mutations)
    def run(ops):
        _dataset_case(read_idx, work / ("fz.idx" + (".gz" if gz else "")), mutate(raw, ops), check)
    run()


@pytest.mark.parametrize("protocol", [2, 5])
def test_fuzz_cifar(work, protocol):
    data = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    raw = pickle.dumps({b"batch_label": b"b", b"labels": [1, 2, 3], b"data": data,
                        b"filenames": [b"a", b"b", b"c"]}, protocol=protocol)

    def check(out):
        x, y = out
        assert x.dtype == np.uint8 and x.shape[1:] == (3072,) and len(y) == len(x) >= 1
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() <= 9

    @FUZZ
    @given(mutations)
    def run(ops):
        _dataset_case(read_cifar_batch, work / "fz_batch", mutate(raw, ops), check)
    run()


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_fuzz_svhn(work, compress):
    from scipy.io import savemat
    buf = io.BytesIO()
    savemat(buf, {"X": np.random.default_rng(1).integers(0, 256, (32, 32, 3, 2), dtype=np.uint8),
                  "y": np.array([[10], [3]], np.uint8)}, do_compression=compress)
    raw = buf.getvalue()

    def check(out):
        x, y = out
        assert x.dtype == np.uint8 and x.shape[:3] == (32, 32, 3) and len(y) == x.shape[3] >= 1
        assert y.min() >= 1 and y.max() <= 10

    @FUZZ
    @given(mutations)
    def run(ops):
        _dataset_case(read_svhn_mat, work / "fz_32x32.mat", mutate(raw, ops), check)
    run()


def test_mutate_helper():
    assert mutate(b"abcd", [("truncate", 2, 0)]) == b"ab"
    assert mutate(b"abcd", [("insert", 1, b"XY")]) == b"aXYbcd"
    assert mutate(b"abcd", [("delete", 1, 2)]) == b"ad"
    assert mutate(b"abcd", [("flip", 6, 1)]) == b"accd"   # position taken modulo len + 1
