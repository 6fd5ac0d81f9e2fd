"""LeNet-5 PTQ: the integer golden model of the extracted stage equals Brevitas's integers
bit for bit, at every layer and end to end, in both rounding modes, for the 1-channel
(28x28, padding 2) and 3-channel (32x32, padding 0) variants, on real images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from common import golden
from common.datasets import EMBEDDED_DIR, load_idx_pair, to_float_tensor_input
from common.quant import RoundingMode
from common.training import fit
from lenet_npu.model import LeNet5
from lenet_npu.quant_model import build_quant_model, extract, trace_ints
from lenet_npu.stage import LAYERS, golden_stage

N_TRAIN, N_CALIB, N_TEST = 1000, 128, 64


def images(in_channels: int, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real images: embedded MNIST digits (1 channel, 28x28), or embedded Fashion-MNIST
    tinted into 3 channels and padded to 32x32 (a colour stand-in needing no CIFAR)."""
    if in_channels == 1:
        ds = load_idx_pair(EMBEDDED_DIR / "mnist", split)
        return torch.from_numpy(to_float_tensor_input(ds.images[:n], 28)), \
            torch.from_numpy(ds.labels[:n])
    ds = load_idx_pair(EMBEDDED_DIR / "fashion-mnist", split)
    grey = torch.from_numpy(to_float_tensor_input(ds.images[:n], 32))
    tint = torch.tensor([1.0, 0.6, 0.3]).view(1, 3, 1, 1)
    return grey * tint, torch.from_numpy(ds.labels[:n])


@pytest.fixture(scope="module", params=[1, 3], ids=["grey", "colour"])
def trained(request):
    """(float LeNet trained for one epoch on 1,000 real images, test images, labels)."""
    c = request.param
    torch.manual_seed(0)
    model = LeNet5(in_channels=c)
    xtr, ytr = images(c, "train", N_TRAIN)
    xte, yte = images(c, "test", N_TEST)
    fit(model, TensorDataset(xtr, ytr), TensorDataset(xte, yte), epochs=1, batch=50,
        make_optimizer=lambda m, steps: (torch.optim.Adam(m.parameters(), 2e-3), None),
        loss=nn.NLLLoss(), progress=False)
    return model, xtr[:N_CALIB], xte


@pytest.mark.parametrize("rounding", ["half_even", "half_up"])
def test_golden_equals_brevitas(trained, rounding):
    model, calib, x = trained
    qm = build_quant_model(model, calib, RoundingMode(rounding), progress=False)
    p = extract(qm)
    t = trace_ints(qm, x)
    L, r = p.layers, p.rounding
    for k in ("input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2"):
        assert t[k].min() >= 0 and t[k].max() <= 255, k
        assert t[k].max() > 0, f"{k}: all zero, the check would be vacuous"
    u8 = {k: v.astype(np.uint8) for k, v in t.items() if k != "fc3"}

    # Layer by layer: golden op on Brevitas's input integers == Brevitas's output integers.
    np.testing.assert_array_equal(golden.conv_requant(
        u8["input"], L["conv1"].weight, L["conv1"].bias, L["conv1"].shift, r, np.uint8,
        padding=p.conv1_padding), t["conv1"])
    np.testing.assert_array_equal(golden.maxpool2x2(u8["conv1"]), t["pool1"])
    np.testing.assert_array_equal(golden.conv_requant(
        u8["pool1"], L["conv2"].weight, L["conv2"].bias, L["conv2"].shift, r, np.uint8),
        t["conv2"])
    np.testing.assert_array_equal(golden.maxpool2x2(u8["conv2"]), t["pool2"])
    flat = u8["pool2"].reshape(len(x), -1)
    np.testing.assert_array_equal(golden.fc_requant(
        flat, L["fc1"].weight, L["fc1"].bias, L["fc1"].shift, r, np.uint8), t["fc1"])
    np.testing.assert_array_equal(golden.fc_requant(
        u8["fc1"], L["fc2"].weight, L["fc2"].bias, L["fc2"].shift, r, np.uint8), t["fc2"])
    np.testing.assert_array_equal(golden.fc_acc(u8["fc2"], L["fc3"].weight, L["fc3"].bias),
                                  t["fc3"])

    # End to end: int32 logits and the prediction.
    logits = golden_stage(p, u8["input"])
    assert logits.dtype == np.int32 and logits.shape == (len(x), 10)
    np.testing.assert_array_equal(logits, t["fc3"])
    with torch.no_grad():
        q_out = qm.trace(x)["fc3"]
        pred = qm(x).argmax(1).numpy()
    assert float(q_out.scale) == 2.0 ** p.scales_log2["fc3"]
    np.testing.assert_array_equal(logits, torch.round(q_out.value / q_out.scale).numpy())
    np.testing.assert_array_equal(logits.argmax(1), pred)

    # The rounding mode matters on these images: the other mode breaks bit-exactness.
    other = RoundingMode.HALF_UP if r is RoundingMode.HALF_EVEN else RoundingMode.HALF_EVEN
    mism = sum(int((golden.conv_requant(u8[i], L[n].weight, L[n].bias, L[n].shift, other,
                                        np.uint8, padding=pad) != t[n]).sum())
               for n, i, pad in (("conv1", "input", p.conv1_padding), ("conv2", "pool1", 0)))
    assert mism > 0, "no rounding tie in conv1/conv2: the rounding check is vacuous"


def test_extract_scales_and_shifts(trained):
    model, calib, _ = trained
    qm = build_quant_model(model, calib, RoundingMode.HALF_EVEN, progress=False)
    p = extract(qm)
    assert set(p.layers) == set(LAYERS)
    assert set(p.scales_log2) == {"input", "conv1", "conv2", "fc1", "fc2", "fc3"}
    assert p.conv1_padding == (2 if model.in_channels == 1 else 0)
    ins = dict(zip(LAYERS, ("input", "conv1", "conv2", "fc1", "fc2")))
    for name in LAYERS:
        lay = p.layers[name]
        assert lay.weight.dtype == np.int8 and lay.weight.min() >= -127   # narrow range
        assert lay.bias.dtype == np.int32
        w_log2 = int(np.log2(float(getattr(qm, name).quant_weight().scale.detach())))
        acc_log2 = p.scales_log2[ins[name]] + w_log2
        if name == "fc3":
            assert lay.shift == 0 and p.scales_log2["fc3"] == acc_log2
        else:
            assert lay.shift == p.scales_log2[name] - acc_log2
