"""common.training: augmentations, option checks, seeded reproducibility; LeNet's
augmentation choice per dataset."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from common.training import evaluate, fit, random_hflip, random_shift
from lenet_npu.model import LeNet5
from common.training import augmentation


def test_random_shift_moves_and_zero_fills():
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4).repeat(200, 2, 1, 1)
    y = random_shift(x, torch.Generator().manual_seed(0), 2)
    assert y.shape == x.shape
    for img, src in zip(y, x):
        # Recover the shift from where pixel value 1 (top-left) went, or check pure zeros.
        pos = (img[0] == 1).nonzero()
        if len(pos):
            dy, dx = (int(v) for v in pos[0])
            want = torch.zeros_like(src)
            want[:, dy:, dx:] = src[:, :4 - dy, :4 - dx]
            assert torch.equal(img, want)
        assert torch.equal(img[0], img[1])            # channels move together
    assert not torch.equal(y[0], y[1]) or not torch.equal(y[1], y[2])   # per image


def test_random_shift_per_batch_and_zero():
    x = torch.rand(8, 1, 6, 6)
    y = random_shift(x, torch.Generator().manual_seed(3), 1, per_image=False)
    assert all(torch.equal((y[i] != 0), (y[0] != 0)) for i in range(8))
    assert torch.equal(random_shift(x, torch.Generator(), 0), x)


def test_random_hflip():
    x = torch.rand(64, 1, 3, 3)
    y = random_hflip(x, torch.Generator().manual_seed(0))
    same = [torch.equal(a, b) for a, b in zip(x, y)]
    flipped = [torch.equal(a.flip(2), b) for a, b in zip(x, y)]
    assert all(s or f for s, f in zip(same, flipped)) and 0 < sum(flipped) < 64


def test_lenet_never_flips_digits():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 10:18, 4:8] = 1.0       # a bar on the left: a flip would put it on the right
    for ds in ("mnist", "svhn"):
        y = augmentation(ds)(x, torch.Generator().manual_seed(0))
        assert (y[:, :, :, 16:].sum() == 0).item(), ds
    y = augmentation("fashion-mnist")(x, torch.Generator().manual_seed(0))
    assert y[:, :, :, 16:].sum() > 0


def _tiny(n: int = 40):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(n, 1, 28, 28, generator=g),
                         torch.randint(0, 10, (n,), generator=g))


def _fit(**kw):
    torch.manual_seed(0)
    m = LeNet5()
    args = dict(epochs=2, batch=8, loss=nn.NLLLoss(), progress=False, seed=1,
                make_optimizer=lambda mm, steps: (torch.optim.Adam(mm.parameters()), None),
                augment=augmentation("mnist"))
    args.update(kw)
    return m, fit(m, _tiny(), _tiny(16), **args)


def test_fit_is_seeded_and_records():
    m1, r1 = _fit()
    m2, r2 = _fit()
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert r1["epochs"] == 2 and len(r1["history"]) == 2 and r1["train_seconds"] > 0
    assert r1["test_top1"] == r2["test_top1"] == r1["history"][-1]["test_top1"]
    x, y = _tiny(16).tensors
    assert evaluate(m1, x, y) == r1["test_top1"]


@pytest.mark.parametrize("kw, option", [({"epochs": 0}, "--epochs"), ({"batch": 0}, "--batch"),
                                        ({"batch": 41}, "--batch")])
def test_fit_refuses_bad_options(kw, option):
    with pytest.raises(ValueError, match=option):
        _fit(**kw)
