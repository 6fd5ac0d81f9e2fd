"""conv2_x PTQ: Brevitas fake-quant == integer golden stage, bundle and checkpoint checks."""
from functools import partial

import numpy as np
import pytest
import torch

from common.bundle import BundleError
from common.checkpoint import CheckpointError, load_checkpoint
from common.datasets import load_dataset, to_float_tensor_input
from common import pipeline
from ptq_conv2x.model import Conv2xNet, fold_bn
from ptq_conv2x.network import NETWORK
from ptq_conv2x.quant_model import LEVERS, equalized, fake_quant_stage_ints
from tests.helpers import untrained_conv2x_checkpoint
from ptq_conv2x.stage import IN_DTYPE, OUTPUT_SCALE, golden_stage

# the generic pipeline bound to this network
ptq_config, prepare, save_bundle, load_bundle = (
    partial(f, NETWORK) for f in (pipeline.ptq_config, pipeline.prepare, pipeline.save_bundle,
                                  pipeline.load_bundle))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small-data float model with realistic BatchNorm statistics (not trained)."""
    return untrained_conv2x_checkpoint(tmp_path_factory.mktemp("ck") / "model.pt", 128)


@pytest.fixture(scope="module", params=["half_even", "half_up"])
def prepared(request, checkpoint):
    cfg = ptq_config("fashion-mnist", request.param, calib_images=64)
    return cfg, prepare(checkpoint, cfg, "data/fashion-mnist", progress=False)


def test_golden_stage_equals_brevitas_bit_exact(prepared):
    cfg, p = prepared
    x = torch.from_numpy(to_float_tensor_input(
        load_dataset("fashion-mnist", "test", "data/fashion-mnist").images[:6]))
    qin, qout = fake_quant_stage_ints(p.quant_model, x)
    assert qin.dtype == IN_DTYPE == np.uint8 and qin.max() > 127   # the 8th bit is used
    got = golden_stage(p.stage, qin)
    assert got.shape == (6, 256, 32, 32)
    assert np.count_nonzero(got != qout) == 0
    assert 0 < np.count_nonzero(got) < got.size  # not degenerate
    shifts = [s for b in p.stage.blocks for s in (b.conv1.shift, b.conv2.shift, b.out_shift)]
    assert all(-8 <= s <= 31 for s in shifts)


def test_bundle_roundtrip_and_rejections(prepared, checkpoint, tmp_path):
    cfg, p = prepared
    path = tmp_path / "b.npz"
    save_bundle(path, p.stage, checkpoint, cfg)
    stage, m = load_bundle(path, checkpoint, cfg)
    assert m["rounding"] == cfg["rounding"]
    for b1, b2 in zip(stage.blocks, p.stage.blocks):
        for c1, c2 in zip(b1.convs(), b2.convs()):
            assert np.array_equal(c1.weight, c2.weight) and np.array_equal(c1.bias, c2.bias)
            assert c1.shift == c2.shift
    raw = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BundleError, match="corrupt or truncated"):
        load_bundle(tmp_path / "trunc.npz")
    # flip one weight byte inside the stored blob: the content hash catches it
    import io, zipfile
    zin = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = bytearray(zin.read(item))
            if item.filename == "wts_block1.npy":
                data[-5] ^= 0x40
            zout.writestr(item, bytes(data))
    (tmp_path / "flip.npz").write_bytes(out.getvalue())
    with pytest.raises(BundleError, match="content hash mismatch"):
        load_bundle(tmp_path / "flip.npz")
    other = dict(cfg, calib_images=cfg["calib_images"] + 1)
    with pytest.raises(BundleError, match="stale"):
        load_bundle(path, checkpoint, other)
    (tmp_path / "ck2.pt").write_bytes(checkpoint.read_bytes() + b"x")
    with pytest.raises(BundleError, match="stale"):
        load_bundle(path, tmp_path / "ck2.pt", cfg)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "missing.npz")
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left


def test_levers_recorded_and_restored_without_recalibrating(prepared, checkpoint, tmp_path):
    """The bundle records the levers (PTQ config); its quantizer state rebuilds the same
    Brevitas model (equalized stem included) and leaves the float model as loaded."""
    cfg, p = prepared
    assert cfg["levers"] == list(LEVERS) == ["uint8_stage_input", "graph_equalization",
                                             "activation_equalization"]
    path = tmp_path / "q.npz"
    save_bundle(path, p.stage, checkpoint, cfg, p.quant_model)
    stage, m, prep = pipeline.restore(NETWORK, checkpoint, path, cfg)
    assert m["config"]["levers"] == list(LEVERS)
    assert m["activations"]["input"]["dtype"] == "uint8"
    x = torch.from_numpy(to_float_tensor_input(
        load_dataset("fashion-mnist", "test", "data/fashion-mnist").images[:4]))
    for a, b in zip(prep.quant_model.reference(x), p.quant_model.reference(x)):
        assert np.array_equal(a, b)
    fresh, _ = load_checkpoint(checkpoint, Conv2xNet)
    with torch.no_grad():
        assert torch.equal(prep.float_model(x), fresh.eval()(x))
        assert torch.equal(p.float_model(x), fresh(x))


def test_equalized_model_is_the_same_function(checkpoint):
    fm, _ = load_checkpoint(checkpoint, Conv2xNet)
    fm.eval()
    x = torch.from_numpy(to_float_tensor_input(
        load_dataset("fashion-mnist", "test", "data/fashion-mnist").images[:4]))
    eq = equalized(fm, x)
    with torch.no_grad():
        ref = fm(x)
        assert torch.allclose(eq(x), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    changed = [n for n, t in eq.state_dict().items() if n.endswith("conv1.weight")
               and not torch.allclose(t, fold_bn(*_conv_bn(fm, n))[0])]
    assert changed                                     # the weights did move


def _conv_bn(fm, name):
    """(conv, BatchNorm) of the float model for a state-dict key 'stage.blocks.i.conv1.weight'."""
    blk = fm.stage.blocks[int(name.split(".")[2])]
    return blk.conv1, blk.bn1


def test_checkpoint_errors(tmp_path, checkpoint):
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt", Conv2xNet)
    raw = checkpoint.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[:1000])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        load_checkpoint(tmp_path / "trunc.pt", Conv2xNet)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt", Conv2xNet)
    ck = torch.load(checkpoint, weights_only=True)
    ck["state_dict"]["stage.blocks.0.conv1.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(ck, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match Conv2xNet"):
        load_checkpoint(tmp_path / "mismatch.pt", Conv2xNet)


def test_non_po2_scale_is_rejected_naming_layer(prepared):
    from common.ptq import act_scale
    from common.quant import QuantError
    _, p = prepared

    class Fake:
        class act_quant:
            @staticmethod
            def scale():
                return torch.tensor(0.3)
    with pytest.raises(QuantError, match="block1.relu2"):
        act_scale(Fake, "block1.relu2")


def test_onnx_qcdq_export_equals_integer_pipeline(prepared, tmp_path):
    """Brevitas QCDQ export run by ONNX Runtime == golden stage (half_even only)."""
    from common.export_onnx import export, ort_ints
    cfg, p = prepared
    qm = p.quant_model
    x = torch.from_numpy(to_float_tensor_input(
        load_dataset("fashion-mnist", "test", "data/fashion-mnist").images[:4]))
    stem = qm.onnx_input(x)             # the quant model's own (equalized) stem output
    if cfg["rounding"] != "half_even":
        with pytest.raises(ValueError, match="half_even"):
            export(qm, stem[:1], tmp_path / "s.onnx")
        return
    qin, _ = fake_quant_stage_ints(qm, x)
    export(qm, stem[:1], tmp_path / "s.onnx")
    got = ort_ints(tmp_path / "s.onnx", stem.numpy(), 2.0 ** p.stage.scales_log2[OUTPUT_SCALE])
    assert np.count_nonzero(got != golden_stage(p.stage, qin)) == 0
