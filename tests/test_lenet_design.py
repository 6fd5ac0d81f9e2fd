"""lenet_npu/aie2.py in the emulator: logits equal the integer golden model element for
element, on random integer LeNets (both input variants, both rounding modes, B = 1, 4)."""
import numpy as np
import pytest

from common.emu import DesignError, emulated_aie, load_design
from lenet_npu import stage

with emulated_aie():                  # the design module imports aie.* (emulated here)
    from lenet_npu.aie2 import window_plan

DESIGN = "lenet_npu/aie2.py"


def run_lenet(channels, rounding, batch, seed, device="npu"):
    net = stage.random_stage(channels, rounding, seed)
    d = load_design(DESIGN, [device, "--random-seed", seed, "--channels", channels,
                             "--rounding", rounding, "--batch", batch])
    size = stage.INPUT_VARIANTS[channels][0]
    x = np.random.default_rng(seed + 100).integers(0, 256, (batch, channels, size, size),
                                                   dtype=np.uint8)
    out = np.zeros(batch * stage.LOGITS_PAD, np.int32)
    got = d.run(stage.device_images(x), net.weight_blob(), out)[0]
    return d, got, stage.golden_stage(net, x)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("rounding", ["half_even", "half_up"])
@pytest.mark.parametrize("batch", [1, 4])
def test_logits_equal_golden(channels, rounding, batch):
    _, got, want = run_lenet(channels, rounding, batch, seed=3 + channels + batch)
    assert len(np.unique(want)) > batch        # the random net is not degenerate
    assert np.array_equal(stage.logits_from_device(got, batch), want)
    assert not got.reshape(batch, -1)[:, stage.N_CLASSES:].any()   # padded logits are 0


def test_npu2_and_memory_fits_npu1():
    d, got, want = run_lenet(1, "half_even", 2, seed=0, device="npu2")
    assert np.array_equal(stage.logits_from_device(got, 2), want)
    s = load_design(DESIGN, ["npu", "--random-seed", "0"])
    s.run(*s.random_inputs())
    summ = s.summary()
    assert summ.memory and all(b <= lim for b, lim in summ.memory.values())
    compute = {c: b for c, (b, lim) in summ.memory.items() if c[1] >= 2}
    assert len(compute) == 5 and max(compute.values()) <= 64 * 1024
    assert summ.npu_time_s and summ.npu_time_s > 0


def test_window_plan_covers_every_row_once():
    for h, pad in ((28, 2), (32, 0), (14, 0)):
        plan = window_plan(h, pad)
        assert len(plan) == h + 2 * pad - 4
        assert sum(step[3] for step in plan) == h       # every input row released once
        assert all(bin(m).count("1") == n for n, m, _, _ in plan)


def _save(tmp_path, net, name: str) -> str:
    """A real deploy bundle of ``net`` (dummy checkpoint and config)."""
    from common.pipeline import save_bundle
    from lenet_npu.network import NETWORK

    net.scales_log2 = {k: -8 for k in ("input", "conv1", "conv2", "fc1", "fc2", "fc3")}
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"checkpoint")
    save_bundle(NETWORK, tmp_path / name, net, ck, {"test": name})
    return str(tmp_path / name)


def test_design_from_bundle_and_refusals(tmp_path):
    from common.bundle import SCHEMA, read_bundle, write_bundle

    net = stage.random_stage(3, "half_up", 5)
    good = _save(tmp_path, net, "b.npz")
    d = load_design(DESIGN, ["npu", "--bundle", good, "--batch", "1"])
    x = np.random.default_rng(1).integers(0, 256, (1, 3, 32, 32), dtype=np.uint8)
    got = d.run(stage.device_images(x), net.weight_blob(), np.zeros(16, np.int32))[0]
    assert np.array_equal(stage.logits_from_device(got, 1), stage.golden_stage(net, x))
    # an RTP table that disagrees with the recorded shifts (hashes recomputed)
    m, a = read_bundle(good, SCHEMA)
    a["rtp"] = a["rtp"].copy()
    a["rtp"][2, 1] = 7
    write_bundle(tmp_path / "rtp.npz", {k: v for k, v in m.items()
                                        if k not in ("arrays", "content_sha256",
                                                     "manifest_sha256")}, a)
    with pytest.raises(DesignError, match="RTP table does not match"):
        load_design(DESIGN, ["npu", "--bundle", tmp_path / "rtp.npz"])
    net.layers["conv2"].shift = 40
    with pytest.raises(DesignError, match="40"):
        load_design(DESIGN, ["npu", "--bundle", _save(tmp_path, net, "shift.npz")])
    with pytest.raises(DesignError, match="batch"):
        load_design(DESIGN, ["npu", "--bundle", good, "--batch", "0"])
    with pytest.raises(DesignError, match="not found"):
        load_design(DESIGN, ["npu", "--bundle", tmp_path / "missing.npz"])
