"""Bad input files and faulty writes: every reader raises its own error type with one line
naming the file (and key / layer / variable) and the problem; nothing in a data file runs
code; an atomic write leaves no temp file and no half-written output.

Readers: bundles (common.bundle, common.pipeline + ptq_conv2x.stage), checkpoints (common.checkpoint),
IDX / CIFAR-10 / SVHN (common.datasets); writer: common.atomic.
"""
from __future__ import annotations

import errno
import gzip
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from common.atomic import atomic_write_bytes
from common.bundle import (MANIFEST_HASH_KEY, MANIFEST_KEY, SCHEMA, BundleError, content_sha256,
                           manifest_sha256, read_bundle, write_bundle)
from common.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from common.datasets import (DatasetError, idx_bytes, load_idx_pair, read_cifar_batch, read_idx,
                             read_svhn_mat)
from common.quant import RoundingMode
from functools import partial

from common import pipeline
from common.intlayer import IntLayer as IntConv
from ptq_conv2x.network import NETWORK
from ptq_conv2x.stage import IntBlock, IntStage, _expected_convs, scale_keys

load_bundle, save_bundle = partial(pipeline.load_bundle, NETWORK), \
    partial(pipeline.save_bundle, NETWORK)
from ptq_conv2x.model import Conv2xNet

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ helpers
def raises_one_line(exc: type[BaseException], fn, *args, names: tuple[str, ...] = (), **kw) -> str:
    """Call ``fn``; it must raise ``exc`` whose message is one line holding every name."""
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg.strip(), f"message is not one line: {msg!r}"
    for n in names:
        assert str(n) in msg, f"{n!r} not in {msg!r}"
    return msg


def no_temp_files(folder: Path) -> bool:
    return not list(Path(folder).glob(".*.tmp"))


class Marker:
    """Pickles into a call that creates ``path`` (os.system) if anything executes it."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class OpenMarker(Marker):
    def __reduce__(self):
        return (open, (str(self.path), "w"))


# --------------------------------------------------------------- conv2x bundle builders
def make_stage(seed: int = 0) -> IntStage:
    """A small valid conv2x IntStage of random integers with consistent shifts/scales."""
    rng = np.random.default_rng(seed)
    scales = {"stage_in": -4}
    for i in range(3):
        scales.update({f"block{i}.relu1": -4, f"block{i}.relu2": -4, f"block{i}.add": -3,
                       f"block{i}.relu3": -4})
    assert sorted(scales) == sorted(scale_keys())

    def conv(shape, shift):
        return IntConv(rng.integers(-127, 128, shape, dtype=np.int8),
                       rng.integers(-1000, 1000, shape[0]).astype(np.int32), shift)
    blocks = []
    for i in range(3):
        e = _expected_convs(i)
        proj = conv(e["proj"], 7) if "proj" in e else None
        # skip_in: 0 (block 0: projection) or add - previous relu3 = 1; out: relu3 - add = -1
        blocks.append(IntBlock(conv(e["conv1"], 7), conv(e["conv2"], 8), conv(e["conv3"], 6),
                               proj, 0 if proj else 1, -1))
    return IntStage(blocks, RoundingMode.HALF_EVEN, scales)


CFG = {"dataset": "fashion-mnist", "rounding": "half_even"}


def make_conv2x_bundle(folder: Path, name: str = "b.npz") -> tuple[Path, Path]:
    """(bundle, the dummy checkpoint it records) in ``folder``."""
    ck = folder / "dummy.pt"
    if not ck.exists():
        ck.write_bytes(b"dummy checkpoint bytes")
    path = folder / name
    save_bundle(path, make_stage(), ck, CFG)
    return path, ck


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_members(path: Path, mem: dict[str, bytes], compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as z:
        for k, v in mem.items():
            z.writestr(k, v)
    return path


def npy_bytes(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def rewrite_bundle(src: Path, dst: Path, edit=None, arrays_edit=None, rehash: bool = True) -> Path:
    """Copy of bundle ``src`` with ``edit(manifest)`` / ``arrays_edit(arrays)`` applied;
    with ``rehash`` the hashes are recomputed, as a deliberate editor would."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    m = json.loads(arrays.pop(MANIFEST_KEY).tobytes())
    if arrays_edit:
        arrays_edit(arrays)
        if rehash:
            m["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape)}
                           for k, v in arrays.items()}
            m["content_sha256"] = content_sha256(arrays)
    if edit:
        m = edit(m)
    if rehash and isinstance(m, dict):
        m[MANIFEST_HASH_KEY] = manifest_sha256(m)
    payload = {MANIFEST_KEY: np.frombuffer(json.dumps(m).encode(), np.uint8), **arrays}
    np.savez(dst, **payload)
    return dst


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_conv2x_bundle(tmp_path_factory.mktemp("bundle"))


# ------------------------------------------------------------------ bundles
def test_valid_conv2x_bundle_roundtrips(bundle):
    path, ck = bundle
    stage, m = load_bundle(path, ck, CFG)
    ref = make_stage()
    for b1, b2 in zip(stage.blocks, ref.blocks):
        for c1, c2 in zip(b1.convs(), b2.convs()):
            assert np.array_equal(c1.weight, c2.weight) and c1.shift == c2.shift
    assert m[MANIFEST_HASH_KEY] == manifest_sha256(m)


def _set(path: list, value):
    """Manifest edit setting ``m[path[0]][path[1]]... = value``."""
    def edit(m):
        d = m
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
        return m
    return edit


def _drop(path: list):
    def edit(m):
        d = m
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
        return m
    return edit


# (id, manifest edit, names the message must hold); hashes recomputed by the "editor"
VALUE_EDITS = [
    ("non_po2_scale", _set(["scales_log2", "block2.relu3"], 0.3), ["scales_log2.block2.relu3"]),
    ("scale_out_of_range", _set(["scales_log2", "block1.add"], 100), ["scales_log2.block1.add"]),
    ("scale_bool", _set(["scales_log2", "stage_in"], True), ["scales_log2.stage_in"]),
    ("output_scale_missing", _drop(["scales_log2", "block2.relu3"]), ["scales_log2", "block2.relu3"]),
    ("scales_not_object", _set(["scales_log2"], [1, 2]), ["scales_log2"]),
    ("conv_shift_40", _set(["convs", "block1.conv2", "shift"], 40),
     ["convs.block1.conv2.shift", "40"]),
    ("conv_shift_float", _set(["convs", "block0.conv1", "shift"], 7.5),
     ["convs.block0.conv1.shift"]),
    ("skip_shift_out_of_range", _set(["skip_in_shifts", 1], 40), ["skip_in_shifts[1]"]),
    ("out_shift_out_of_range", _set(["out_shifts", 2], -9), ["out_shifts[2]"]),
    ("out_shift_inconsistent", _set(["out_shifts", 2], 0), ["out_shifts[2]", "scales"]),
    ("skip_shifts_short", _set(["skip_in_shifts"], [1, 1]), ["skip_in_shifts"]),
    ("rounding_unknown", _set(["rounding"], "half_down"), ["rounding", "half_down"]),
    ("rounding_missing", _drop(["rounding"]), ["rounding"]),
    ("network_other", _set(["network"], "lenet"), ["lenet"]),
    ("conv_shape", _set(["convs", "block1.conv1", "shape"], [64, 128, 1, 1]),
     ["convs.block1.conv1.shape"]),
    ("conv_offset", _set(["convs", "block2.conv3", "offset"], 0), ["convs.block2.conv3.offset"]),
    ("conv_missing", _drop(["convs", "block2.conv3"]), ["convs.block2.conv3"]),
    ("conv_unexpected", _set(["convs", "block1.proj"], {}), ["block1.proj"]),
    ("input_int8", _set(["activations", "input", "dtype"], "int8"), ["activations", "int8"]),
    ("activations_missing", _drop(["activations"]), ["activations"]),
]


@pytest.mark.parametrize("edit,names", [v[1:] for v in VALUE_EDITS],
                         ids=[v[0] for v in VALUE_EDITS])
def test_bundle_values_validated(bundle, tmp_path, edit, names):
    path, ck = bundle
    bad = rewrite_bundle(path, tmp_path / "edited.npz", edit)
    raises_one_line(BundleError, load_bundle, bad, ck, CFG, names=(bad, *names))


def test_bundle_manifest_edit_without_rehash_is_caught(bundle, tmp_path):
    path, ck = bundle
    bad = rewrite_bundle(path, tmp_path / "e.npz", _set(["scales_log2", "block2.relu3"], -3),
                         rehash=False)
    raises_one_line(BundleError, load_bundle, bad, names=(bad, "manifest hash mismatch"))


def test_bundle_rtp_table_edited(bundle, tmp_path):
    path, _ = bundle

    def bump(a):
        a["rtp"] = a["rtp"].copy()
        a["rtp"][3, 1] += 1
    bad = rewrite_bundle(path, tmp_path / "rtp.npz", arrays_edit=bump)
    raises_one_line(BundleError, load_bundle, bad, names=(bad, "rtp", "RTP table"))


def test_bundle_bias_edited(bundle, tmp_path):
    path, _ = bundle

    def bump(a):
        a["bias.block1.conv2"] = a["bias.block1.conv2"] + 1
    bad = rewrite_bundle(path, tmp_path / "bias.npz", arrays_edit=bump)
    raises_one_line(BundleError, load_bundle, bad, names=(bad, "block1.conv2", "bias"))


@pytest.mark.parametrize("manifest,names", [
    (b"[1, 2, 3]", ["JSON list"]),
    (b"{not json", ["not valid JSON"]),
    (b"\xff\xfe", ["not valid JSON"]),
    (b'"text"', ["JSON str"]),
], ids=["list", "bad_json", "bad_utf8", "string"])
def test_bundle_manifest_not_an_object(tmp_path, manifest, names):
    p = tmp_path / "m.npz"
    np.savez(p, **{MANIFEST_KEY: np.frombuffer(manifest, np.uint8), "a": np.zeros(3, np.int8)})
    raises_one_line(BundleError, read_bundle, p, SCHEMA, names=(p, *names))


def _small_bundle(folder: Path) -> Path:
    p = folder / "s.npz"
    write_bundle(p, {"schema": SCHEMA, "network": "t"},
                 {"w": np.arange(12, dtype=np.int8).reshape(3, 4), "b": np.ones(3, np.int32)})
    return p


@pytest.mark.parametrize("spec,names", [
    ({"shape": [3, 4]}, ["arrays.w"]),
    ({"dtype": "|i1"}, ["arrays.w"]),
    ({"dtype": "|i1", "shape": [3, -4]}, ["arrays.w"]),
    ([3, 4], ["arrays.w"]),
    ({"dtype": "<i4", "shape": [3, 4]}, ["'w'", "<i4"]),
], ids=["no_dtype", "no_shape", "negative_dim", "not_object", "wrong_dtype"])
def test_bundle_array_spec_invalid(tmp_path, spec, names):
    p = rewrite_bundle(_small_bundle(tmp_path), tmp_path / "x.npz", _set(["arrays", "w"], spec))
    raises_one_line(BundleError, read_bundle, p, SCHEMA, names=(p, *names))


def test_bundle_absurd_npy_shape_refused_before_allocation(tmp_path):
    p = _small_bundle(tmp_path)
    mem = members(p)
    # a header declaring 2**40 x 2**40 int64 elements (2**83 bytes) over 12 real bytes
    hdr = npy_bytes(np.zeros((1, 1), np.int64))
    hdr = hdr.replace(b"(1, 1)", b"(1099511627776, 1099511627776)")
    mem["w.npy"] = hdr[:-8] + bytes(12)
    bad = write_members(tmp_path / "absurd.npz", mem)
    raises_one_line(BundleError, read_bundle, bad, SCHEMA, names=(bad, "'w.npy'", "declares"))


def test_bundle_object_array_refused(tmp_path):
    mem = members(_small_bundle(tmp_path))
    mem["w.npy"] = npy_bytes(np.array([Marker(tmp_path / "m")], dtype=object), allow_pickle=True)
    bad = write_members(tmp_path / "obj.npz", mem)
    raises_one_line(BundleError, read_bundle, bad, SCHEMA, names=(bad, "'w.npy'", "dtype"))
    assert not (tmp_path / "m").exists()


def test_bundle_compressed_member_refused(tmp_path):
    bad = write_members(tmp_path / "z.npz", members(_small_bundle(tmp_path)), zipfile.ZIP_DEFLATED)
    raises_one_line(BundleError, read_bundle, bad, SCHEMA, names=(bad, "compressed"))


def test_bundle_extra_and_missing_arrays(tmp_path):
    p = _small_bundle(tmp_path)
    mem = members(p)
    mem["extra.npy"] = npy_bytes(np.zeros(2, np.int8))
    bad = write_members(tmp_path / "extra.npz", mem)
    raises_one_line(BundleError, read_bundle, bad, SCHEMA, names=(bad, "extra"))
    mem = members(p)
    del mem["b.npy"]
    bad = write_members(tmp_path / "missing.npz", mem)
    raises_one_line(BundleError, read_bundle, bad, SCHEMA, names=(bad, "'b'", "missing"))


def test_bundle_truncated_and_bitflipped(bundle, tmp_path):
    path, _ = bundle
    raw = path.read_bytes()
    for n in (0, 100, len(raw) // 2, len(raw) - 10):
        p = tmp_path / f"t{n}.npz"
        p.write_bytes(raw[:n])
        raises_one_line(BundleError, load_bundle, p, names=(p,))
    mem = members(path)
    blob = bytearray(mem["wts_block1.npy"])
    blob[-5] ^= 0x40
    mem["wts_block1.npy"] = bytes(blob)
    bad = write_members(tmp_path / "flip.npz", mem)
    raises_one_line(BundleError, load_bundle, bad, names=(bad, "content hash mismatch"))
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0x01   # inside a member: the zip CRC catches it
    (tmp_path / "crc.npz").write_bytes(bytes(flipped))
    raises_one_line(BundleError, load_bundle, tmp_path / "crc.npz", names=("crc.npz",))


def test_bundle_old_schema_says_rerun_ptq(bundle, tmp_path):
    path, _ = bundle
    bad = rewrite_bundle(path, tmp_path / "old.npz", _set(["schema"], "npu-ptq-bundle/1"))
    raises_one_line(BundleError, load_bundle, bad, names=(bad, "npu-ptq-bundle/1", SCHEMA,
                                                          "re-run the PTQ step"))


def test_bundle_stale_checkpoint_and_config(bundle, tmp_path):
    path, ck = bundle
    other = tmp_path / "other.pt"
    other.write_bytes(ck.read_bytes() + b"x")
    raises_one_line(BundleError, load_bundle, path, other, CFG, names=(path, "stale", other))
    raises_one_line(BundleError, load_bundle, path, ck, dict(CFG, rounding="half_up"),
                    names=(path, "stale", "config"))
    raises_one_line(BundleError, load_bundle, path, tmp_path / "gone.pt", CFG,
                    names=(path, "gone.pt"))


def test_bundle_missing_or_directory(tmp_path):
    raises_one_line(BundleError, load_bundle, tmp_path / "none.npz", names=("none.npz", "not found"))
    raises_one_line(BundleError, load_bundle, tmp_path, names=(tmp_path, "is a directory"))


def test_bundle_not_a_zip(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("hello")
    raises_one_line(BundleError, load_bundle, p, names=(p, "corrupt or truncated"))


def test_write_bundle_into_directory_path(tmp_path):
    (tmp_path / "out.npz").mkdir()
    raises_one_line(OSError, write_bundle, tmp_path / "out.npz", {"schema": SCHEMA},
                    {"a": np.zeros(2, np.int8)}, names=("out.npz",))
    assert no_temp_files(tmp_path)


# ------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("ck") / "model.pt"
    save_checkpoint(p, Conv2xNet(), {"note": "test"})
    return p


def _edited_ckpt(ckpt: Path, dst: Path, edit) -> Path:
    ck = torch.load(ckpt, weights_only=True)
    edit(ck)
    torch.save(ck, dst)
    return dst


def test_checkpoint_valid_loads(ckpt):
    model, meta = load_checkpoint(ckpt, Conv2xNet)
    assert isinstance(model, Conv2xNet) and meta["record"] == {"note": "test"}


W = "stage.blocks.1.conv2.weight"


def _nan(ck):
    ck["state_dict"][W] = ck["state_dict"][W].clone()
    ck["state_dict"][W][0, 0, 0, 0] = float("nan")


def _inf(ck):
    ck["state_dict"]["head.2.bias"] = ck["state_dict"]["head.2.bias"].clone()
    ck["state_dict"]["head.2.bias"][3] = float("-inf")


CKPT_EDITS = [
    ("no_config", lambda ck: ck.pop("config"), ["config"]),
    ("config_list", lambda ck: ck.__setitem__("config", [1, 2]), ["config", "list"]),
    ("unknown_config_key", lambda ck: ck["config"].__setitem__("width", 3), ["width"]),
    ("config_value_bad", lambda ck: ck["config"].__setitem__("in_channels", "three"),
     ["in_channels"]),
    ("absurd_in_channels", lambda ck: ck["config"].__setitem__("in_channels", 10 ** 9),
     ["stem.0.weight", "1000000000"]),
    ("other_class", lambda ck: ck["config"].__setitem__("class", "LeNet"), ["LeNet", "Conv2xNet"]),
    ("missing_key", lambda ck: ck["state_dict"].pop(W), [W, "missing"]),
    ("unexpected_key", lambda ck: ck["state_dict"].__setitem__("extra.weight", torch.zeros(1)),
     ["extra.weight", "unexpected"]),
    ("wrong_shape", lambda ck: ck["state_dict"].__setitem__(W, torch.zeros(64, 64, 1, 1)),
     [W, "(64, 64, 1, 1)", "(64, 64, 3, 3)"]),
    ("nan_weight", _nan, [W, "non-finite"]),
    ("inf_bias", _inf, ["head.2.bias", "non-finite"]),
    ("int_weight", lambda ck: ck["state_dict"].__setitem__(W, torch.zeros(64, 64, 3, 3,
                                                                          dtype=torch.int32)),
     [W, "int32"]),
    ("not_tensor", lambda ck: ck["state_dict"].__setitem__(W, [1.0, 2.0]), [W, "list"]),
    ("state_dict_list", lambda ck: ck.__setitem__("state_dict", [1]), ["state_dict"]),
    ("wrong_format", lambda ck: ck.__setitem__("format", "other/1"), ["other/1"]),
]


@pytest.mark.parametrize("edit,names", [v[1:] for v in CKPT_EDITS], ids=[v[0] for v in CKPT_EDITS])
def test_checkpoint_content_errors(ckpt, tmp_path, edit, names):
    bad = _edited_ckpt(ckpt, tmp_path / "bad.pt", edit)
    raises_one_line(CheckpointError, load_checkpoint, bad, Conv2xNet, names=(bad, *names))


@pytest.mark.parametrize("kind", [Marker, OpenMarker])
def test_checkpoint_with_code_is_refused_and_never_run(ckpt, tmp_path, kind):
    marker = tmp_path / "executed"
    ck = torch.load(ckpt, weights_only=True)
    ck["record"] = {"x": kind(marker)}
    torch.save(ck, tmp_path / "evil.pt")
    raises_one_line(CheckpointError, load_checkpoint, tmp_path / "evil.pt", Conv2xNet,
                    names=("evil.pt", "refused"))
    assert not marker.exists()


def test_checkpoint_file_errors(ckpt, tmp_path):
    raises_one_line(CheckpointError, load_checkpoint, tmp_path, Conv2xNet,
                    names=(tmp_path, "is a directory"))
    raises_one_line(CheckpointError, load_checkpoint, tmp_path / "no.pt", Conv2xNet,
                    names=("no.pt", "not found"))
    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    raises_one_line(CheckpointError, load_checkpoint, tmp_path / "garbage.pt", Conv2xNet,
                    names=("garbage.pt", "not a readable checkpoint"))
    raw = ckpt.read_bytes()
    for n in (10, 1000, len(raw) // 2, len(raw) - 3):
        (tmp_path / "t.pt").write_bytes(raw[:n])
        raises_one_line(CheckpointError, load_checkpoint, tmp_path / "t.pt", Conv2xNet,
                        names=("t.pt",))


def test_checkpoint_save_onto_directory(tmp_path):
    (tmp_path / "m.pt").mkdir()
    raises_one_line(OSError, save_checkpoint, tmp_path / "m.pt", Conv2xNet(), {},
                    names=("m.pt",))
    assert no_temp_files(tmp_path)


# ------------------------------------------------------------------ IDX
def _idx_file(tmp_path: Path, name: str, payload: bytes, gz: bool = False) -> Path:
    p = tmp_path / (name + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(payload) if gz else payload)
    return p


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_absurd_shape_refused_before_allocation(tmp_path, gz):
    head = bytes([0, 0, 8, 3]) + (2 ** 31).to_bytes(4, "big") * 2 + (1).to_bytes(4, "big")
    p = _idx_file(tmp_path, "huge", head + bytes(64), gz)
    raises_one_line(DatasetError, read_idx, p, names=(p, "2147483648", "at most"))


@pytest.mark.parametrize("payload,names", [
    (b"\x00\x00\x09\x03" + bytes(20), ["bad magic"]),
    (b"\x00\x00\x08\x02" + bytes(20), ["bad magic"]),
    (b"\x00\x00", ["truncated"]),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", ["truncated header"]),
    (idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3], ["truncated"]),
    (idx_bytes(np.zeros((4, 2, 2), np.uint8)) + b"\x00", ["trailing"]),
], ids=["magic_type", "magic_ndim", "short", "short_header", "truncated", "trailing"])
def test_idx_corrupt(tmp_path, payload, names):
    p = _idx_file(tmp_path, "x", payload)
    raises_one_line(DatasetError, read_idx, p, names=(p, *names))


def test_idx_corrupt_gzip(tmp_path):
    raw = gzip.compress(idx_bytes(np.zeros((4, 2, 2), np.uint8)))
    p = tmp_path / "x.gz"
    p.write_bytes(raw[:-10])
    raises_one_line(DatasetError, read_idx, p, names=(p, "corrupt or truncated"))
    p.write_bytes(b"\x1f\x8b" + bytes(30))
    raises_one_line(DatasetError, read_idx, p, names=(p,))


@pytest.mark.parametrize("images,labels,names", [
    (np.zeros((5, 2, 2), np.uint8), np.zeros(4, np.uint8), ["5 images", "4 labels"]),
    (np.zeros((2, 2, 2), np.uint8), np.array([1, 12], np.uint8), ["label 12"]),
    (np.zeros((0, 2, 2), np.uint8), np.zeros(0, np.uint8), ["no labels"]),
    (np.zeros(4, np.uint8), np.zeros(4, np.uint8), ["3-D"]),
], ids=["count_mismatch", "label_range", "empty", "images_1d"])
def test_idx_pair_inconsistent(tmp_path, images, labels, names):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    raises_one_line(DatasetError, load_idx_pair, tmp_path, "test", names=("t10k-", *names))


# ------------------------------------------------------------------ CIFAR-10
def _cifar(n: int = 3, seed: int = 0) -> dict:
    data = np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)
    return {b"batch_label": b"testing batch 1 of 1", b"labels": [i % 10 for i in range(n)],
            b"data": data, b"filenames": [b"img%d.png" % i for i in range(n)]}


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_real_format_loads(tmp_path, protocol):
    d = _cifar()
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps(d, protocol=protocol))
    data, labels = read_cifar_batch(p)
    assert np.array_equal(data, d[b"data"]) and list(labels) == d[b"labels"]


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("kind", [Marker, OpenMarker])
def test_cifar_hostile_pickle_never_runs(tmp_path, protocol, kind):
    marker = tmp_path / "executed"
    d = _cifar()
    d[b"extra"] = kind(marker)
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps(d, protocol=protocol))
    msg = raises_one_line(DatasetError, read_cifar_batch, p, names=(p, "refused"))
    assert ("system" in msg) if kind is Marker else ("open" in msg)
    assert not marker.exists()


class _BigArray:
    def __reduce__(self):
        return (np.ndarray, ((1 << 40,), "u1"))


class _Reconstruct:
    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, (1 << 40,), b"b"))


@pytest.mark.parametrize("obj,names", [
    ([1, 2, 3], ["list"]),
    ({b"labels": [1]}, ["b'data'"]),
    ({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}, ["b'data'", "float32"]),
    ({b"data": np.zeros((1, 3071), np.uint8), b"labels": [1]}, ["b'data'", "3071"]),
    ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, ["b'data'", "N >= 1"]),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}, ["b'labels'"]),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, "a"]}, ["b'labels'"]),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, ["2 images", "1 labels"]),
    ({b"data": np.array([[1]], dtype=object), b"labels": [1]}, ["refused"]),
    ({b"data": _BigArray(), b"labels": [1]}, ["numpy.ndarray", "refused"]),
    ({b"data": _Reconstruct(), b"labels": [1]}, ["not a CIFAR-10 batch"]),
], ids=["list", "no_data", "float_data", "width", "empty", "label_range", "label_type",
        "count", "object_array", "ndarray_call", "reconstruct_huge"])
def test_cifar_bad_content(tmp_path, obj, names):
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps(obj, protocol=2))
    raises_one_line(DatasetError, read_cifar_batch, p, names=(p, *names))


def test_cifar_truncated_garbage_directory(tmp_path):
    raw = pickle.dumps(_cifar())
    p = tmp_path / "test_batch"
    for n in (0, 10, len(raw) // 2, len(raw) - 1):
        p.write_bytes(raw[:n])
        raises_one_line(DatasetError, read_cifar_batch, p, names=(p, "not a CIFAR-10 batch"))
    p.unlink()
    p.mkdir()
    raises_one_line(DatasetError, read_cifar_batch, p, names=(p,))
    raises_one_line(DatasetError, read_cifar_batch, tmp_path / "none", names=("none", "not found"))


# ------------------------------------------------------------------ SVHN
def _svhn(tmp_path: Path, name: str = "test_32x32.mat", compress: bool = False, **over) -> Path:
    from scipy.io import savemat
    v = {"X": np.random.default_rng(1).integers(0, 256, (32, 32, 3, 3), dtype=np.uint8),
         "y": np.array([[10], [3], [1]], np.uint8)}
    v.update(over)
    p = tmp_path / name
    savemat(p, v, do_compression=compress)
    return p


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
@pytest.mark.parametrize("over", [
    {}, {"y": np.array([[10.0], [3.0], [1.0]])}, {"y": np.array([[10, 3, 1]], np.int32)},
    {"X": np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3, 1) * 7,
     "y": np.array([[4]])},
    {"comment": np.array(["other variables are skipped"]), "z": np.eye(3)},
], ids=["uint8_labels", "double_labels", "row_labels", "one_image", "extra_vars"])
def test_svhn_valid_same_as_scipy(tmp_path, compress, over):
    from scipy.io import loadmat
    p = _svhn(tmp_path, compress=compress, **over)
    x, y = read_svhn_mat(p)
    ref = loadmat(p)
    assert x.dtype == np.uint8 and np.array_equal(x, ref["X"].reshape(x.shape))
    assert y.dtype == np.int64 and np.array_equal(y, ref["y"].reshape(-1))


def _cell(n):
    c = np.empty((n, 1), dtype=object)
    for i in range(n):
        c[i, 0] = np.array([[1.0]])
    return c


@pytest.mark.parametrize("over,names", [
    ({"X": _cell(3)}, ["variable X", "cell"]),
    ({"y": _cell(3)}, ["variable y", "cell"]),
    ({"X": np.zeros((32, 32, 3, 3))}, ["variable X", "double"]),
    ({"X": np.zeros((32, 32, 1, 3), np.uint8)}, ["variable X"]),
    ({"y": np.array([[0], [3], [1]])}, ["variable y", "outside 1..10"]),
    ({"y": np.array([[11], [3], [1]])}, ["variable y", "outside 1..10"]),
    ({"y": np.array([[1.5], [3], [1]])}, ["variable y", "outside 1..10"]),
    ({"y": np.array([[1], [3]])}, ["variable y"]),
    ({"y": np.array(["abc"])}, ["variable y"]),
    ({"y": {"a": 1}}, ["variable y", "struct"]),
], ids=["X_cell", "y_cell", "X_double", "X_shape", "label_0", "label_11", "label_frac",
        "count", "y_char", "y_struct"])
def test_svhn_bad_variables(tmp_path, over, names):
    p = _svhn(tmp_path, **over)
    raises_one_line(DatasetError, read_svhn_mat, p, names=(p, *names))


def test_svhn_missing_variable_and_v73(tmp_path):
    from scipy.io import savemat
    p = tmp_path / "a.mat"
    savemat(p, {"X": np.zeros((32, 32, 3, 1), np.uint8)})
    raises_one_line(DatasetError, read_svhn_mat, p, names=(p, "expected X and y"))
    # a MATLAB v7.3 file is HDF5 behind a 128-byte MATLAB header with version 0x0200
    head = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: x HDF5 schema 1.00 .".ljust(116)
    p73 = tmp_path / "v73.mat"
    p73.write_bytes(head + bytes(8) + b"\x00\x02IM" + b"\x89HDF\r\n\x1a\n" + bytes(400))
    raises_one_line(DatasetError, read_svhn_mat, p73, names=(p73, "v7.3"))


def test_svhn_unknown_data_type_code(tmp_path):
    """A type code scipy 1.17's compiled reader indexes a table with (SIGSEGV/SIGBUS)."""
    p = _svhn(tmp_path)
    raw = bytearray(p.read_bytes())
    # header 128 + matrix tag 8 + flags 16 + dims 8+16 + name 'X' 8 = X's data tag at 184
    assert raw[184:185] == b"\x02"   # miUINT8
    raw[185] = 0x2D
    p.write_bytes(bytes(raw))
    raises_one_line(DatasetError, read_svhn_mat, p, names=(p, "variable X", "not a numeric type"))


def test_svhn_corrupt_files(tmp_path):
    p = _svhn(tmp_path)
    raw = p.read_bytes()
    for n in (0, 50, 200, len(raw) // 2, len(raw) - 5):
        p.write_bytes(raw[:n])
        raises_one_line(DatasetError, read_svhn_mat, p, names=(p,))
    p.write_bytes(b"not a mat file" * 20)
    raises_one_line(DatasetError, read_svhn_mat, p, names=(p,))
    raises_one_line(DatasetError, read_svhn_mat, tmp_path, names=(tmp_path, "is a directory"))


# ------------------------------------------------------------------ atomic writes
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_honours_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
        atomic_write_bytes(tmp_path / "f", b"yy")   # replacing gives the same mode
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "f").read_bytes() == b"yy" and no_temp_files(tmp_path)


def test_atomic_write_into_directory_path(tmp_path):
    (tmp_path / "d").mkdir()
    raises_one_line(IsADirectoryError, atomic_write_bytes, tmp_path / "d", b"x", names=("d",))
    assert no_temp_files(tmp_path)


def test_atomic_write_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    raises_one_line(OSError, atomic_write_bytes, tmp_path / "f" / "out", b"x",
                    names=(tmp_path / "f" / "out",))


def test_atomic_write_unwritable_folder(tmp_path, monkeypatch):
    real_open = os.open

    def deny(path, flags, *a, **kw):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *a, **kw)
    monkeypatch.setattr(os, "open", deny)
    msg = raises_one_line(PermissionError, atomic_write_bytes, tmp_path / "out.npz", b"x",
                          names=("out.npz", "Permission denied"))
    assert ".tmp" not in msg
    assert not (tmp_path / "out.npz").exists() and no_temp_files(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_atomic_write_readonly_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        raises_one_line(PermissionError, atomic_write_bytes, ro / "out", b"x", names=("out",))
    finally:
        ro.chmod(0o755)
    assert not list(ro.iterdir())


def test_atomic_write_disk_full_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "b.npz"
    target.write_bytes(b"old version")
    calls, real_write = [], os.write

    def full(fd, data):   # a short write, then the disk is full
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data)[:10])
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"n" * 1000)
    assert info.value.errno == errno.ENOSPC and "b.npz" in str(info.value)
    assert "\n" not in str(info.value)
    assert target.read_bytes() == b"old version" and no_temp_files(tmp_path)


def test_atomic_write_restores_signal_handlers(tmp_path):
    before = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
    atomic_write_bytes(tmp_path / "f", b"x")
    assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)] == before


_CHILD = r"""
import os, signal, sys
sys.path.insert(0, {repo!r})
import common.atomic as A
real = os.write
state = {{"n": 0}}
def slow(fd, data):
    state["n"] += 1
    if state["n"] == 2:
        {action}
    return real(fd, bytes(data)[:4096])
os.write = slow
{setup}
try:
    A.atomic_write_bytes({target!r}, b"z" * 100000)
finally:
    print("finally ran", flush=True)
"""


@pytest.mark.parametrize("action,setup,want_rc,want_out", [
    ("os.kill(os.getpid(), signal.SIGTERM)", "", -signal.SIGTERM, ""),
    ("os.kill(os.getpid(), signal.SIGHUP)", "", -signal.SIGHUP, ""),
    ("os.kill(os.getpid(), signal.SIGINT)", "", -signal.SIGINT, "KeyboardInterrupt"),
    ("os.kill(os.getpid(), signal.SIGTERM)",
     "signal.signal(signal.SIGTERM, lambda s, f: sys.exit(7))", 7, "finally ran"),
], ids=["sigterm", "sighup", "sigint", "sigterm_own_handler"])
def test_atomic_write_interrupted_leaves_no_temp(tmp_path, action, setup, want_rc, want_out):
    target = tmp_path / "out" / "bundle.npz"
    code = _CHILD.format(repo=str(REPO), action=action, setup=setup, target=str(target))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == want_rc, r.stderr
    assert want_out in r.stdout + r.stderr
    assert not target.exists() and no_temp_files(target.parent)


def test_atomic_concurrent_threads_one_whole_version(tmp_path):
    target = tmp_path / "f.bin"
    versions = [bytes([i]) * (50000 + i) for i in range(8)]
    errors = []

    def writer(v):
        try:
            for _ in range(10):
                atomic_write_bytes(target, v)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and target.read_bytes() in versions and no_temp_files(tmp_path)


def test_atomic_concurrent_processes_one_whole_version(tmp_path):
    target = tmp_path / "f.bin"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from common.atomic import "
            "atomic_write_bytes as w; n = int(sys.argv[3]);\n"
            "for _ in range(20): w(sys.argv[2], bytes([n]) * (100000 + n))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(REPO), str(target), str(i)])
             for i in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert target.read_bytes() in [bytes([i]) * (100000 + i) for i in range(4)]
    assert no_temp_files(tmp_path)
