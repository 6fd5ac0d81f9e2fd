"""LeNet-5 deploy bundles: round trip, and refusal of corruption, staleness, edits and a
bundle of the other network."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from common import pipeline
from common.bundle import SCHEMA, BundleError, read_bundle, write_bundle
from lenet_npu.network import NETWORK
from lenet_npu.stage import LAYERS, random_stage

save_bundle, load_bundle = (partial(f, NETWORK) for f in (pipeline.save_bundle,
                                                          pipeline.load_bundle))
CFG = {"dataset": "mnist", "rounding": "half_even"}
SCALES = {k: -8 for k in ("input", "conv1", "conv2", "fc1", "fc2", "fc3")}


@pytest.fixture
def saved(tmp_path):
    net = random_stage(1, "half_even", 3)
    net.scales_log2 = dict(SCALES)
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"checkpoint bytes")
    path = tmp_path / "b.npz"
    save_bundle(path, net, ck, CFG)
    return net, path, ck


def test_roundtrip(saved):
    net, path, ck = saved
    got, m = load_bundle(path, ck, CFG)
    for n in LAYERS:
        assert np.array_equal(got.layers[n].weight, net.layers[n].weight)
        assert np.array_equal(got.layers[n].bias, net.layers[n].bias)
        assert got.layers[n].shift == net.layers[n].shift
    assert m["network"] == "lenet" and got.in_channels == 1


def test_truncated_and_flipped(saved, tmp_path):
    _, path, _ = saved
    raw = path.read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(BundleError, match="t.npz"):
        load_bundle(tmp_path / "t.npz")
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0x10
    (tmp_path / "f.npz").write_bytes(bytes(flipped))
    with pytest.raises(BundleError, match="f.npz"):
        load_bundle(tmp_path / "f.npz")


def test_stale(saved, tmp_path):
    _, path, ck = saved
    other = tmp_path / "other.pt"
    other.write_bytes(b"another checkpoint")
    with pytest.raises(BundleError, match="stale"):
        load_bundle(path, other, CFG)
    with pytest.raises(BundleError, match="stale"):
        load_bundle(path, ck, dict(CFG, rounding="half_up"))


def _rewrite(path, dst, edit):
    m, a = read_bundle(path, SCHEMA)
    edit(m, a)
    write_bundle(dst, {k: v for k, v in m.items()
                       if k not in ("arrays", "content_sha256", "manifest_sha256")}, a)


@pytest.mark.parametrize("what, edit, needle", [
    ("other network", lambda m, a: m.update(network="conv2x"), "conv2x"),
    ("scale not po2", lambda m, a: m["scales_log2"].update(fc3=0.5), "fc3"),
    ("output scale missing", lambda m, a: m["scales_log2"].pop("fc3"), "fc3"),
    ("shift 40", lambda m, a: m["layers"]["fc1"].update(shift=40), "fc1"),
    ("fc3 requantized", lambda m, a: m["layers"]["fc3"].update(shift=3), "fc3"),
    ("bias differs", lambda m, a: a.update({"bias.fc2": a["bias.fc2"] + 1}), "fc2"),
    ("rtp differs", lambda m, a: a.update(rtp=a["rtp"] + 1), "RTP"),
    ("wrong variant", lambda m, a: m.update(in_channels=3), "variant"),
    ("blob short", lambda m, a: a.update(weights=a["weights"][:-8]), "weight blob"),
])
def test_edited_bundle_refused(saved, tmp_path, what, edit, needle):
    _, path, _ = saved
    bad = tmp_path / "edited.npz"
    _rewrite(path, bad, edit)
    with pytest.raises(BundleError, match=needle) as e:
        load_bundle(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_conv2x_bundle_is_not_a_lenet_bundle(saved, tmp_path):
    """A bundle that says it is a conv2x bundle (written by the conv2x pipeline) is refused
    by name before anything is read as LeNet."""
    _, path, _ = saved
    bad = tmp_path / "conv2x.npz"
    _rewrite(path, bad, lambda m, a: m.update(network="conv2x"))
    with pytest.raises(BundleError, match="is for network 'conv2x', not 'lenet'"):
        load_bundle(bad)
