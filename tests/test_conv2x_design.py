"""ptq_conv2x/aie2.py in the emulator with B images per call: every output element equals
the per-image integer golden model (random integer stages saved as real deploy bundles,
both rounding modes, B = 1 and B = 3 with a short batch padded by a zero image)."""
import numpy as np
import pytest

from common.emu import DesignError, emulated_aie, load_design
from common.pipeline import save_bundle
from ptq_conv2x.network import NETWORK
from ptq_conv2x.stage import IN_DTYPE, IN_SHAPE, OUT_SHAPE, golden_stage
from test_golden_torch import random_conv2x_stage

DESIGN = "ptq_conv2x/aie2.py"
BUSY = {"conv1": (10, 13), "conv2": (8, 11), "conv3": (10, 13), "proj": (10, 13),
        "skip": (-1, 3), "out": (-2, 2)}     # shifts that keep the activations busy


def random_bundle(tmp_path, rounding: str, seed: int):
    """(IntStage, bundle path): a random stage with busy shifts and scales that agree with
    its skip and output shifts (as stage_from_bundle checks)."""
    rng = np.random.default_rng(seed)
    p = random_conv2x_stage(rng, rounding, lambda name: int(rng.integers(BUSY[name][0],
                                                                         BUSY[name][1] + 1)))
    scales, prev = {"stage_in": -4}, -4
    for i, b in enumerate(p.blocks):
        add = prev + b.skip_in_shift if b.proj is None else prev - 2
        scales.update({f"block{i}.relu1": -5, f"block{i}.relu2": -5, f"block{i}.add": add,
                       f"block{i}.relu3": add + b.out_shift})
        prev = add + b.out_shift
    p.scales_log2 = scales
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"checkpoint")
    path = tmp_path / f"b{seed}.npz"
    save_bundle(NETWORK, path, p, ck, {"test": seed})
    return p, str(path)


@pytest.mark.parametrize("batch, n, rounding", [(1, 1, "half_even"), (3, 2, "half_up")])
def test_batch_equals_golden_per_image(tmp_path, batch, n, rounding):
    p, bundle = random_bundle(tmp_path, rounding, seed=batch)
    lim = np.iinfo(IN_DTYPE)
    x = np.random.default_rng(10 + batch).integers(lim.min, lim.max + 1, (n,) + IN_SHAPE,
                                                   dtype=IN_DTYPE)
    d = load_design(DESIGN, ["npu", "--bundle", bundle, "--batch", batch])
    out = d.run(p.device_inputs(x, batch), p.weight_blob(), p.device_outputs(batch))[0]
    want = golden_stage(p, np.concatenate([x, np.zeros((batch - n,) + IN_SHAPE, IN_DTYPE)]))
    assert 0.05 < np.count_nonzero(want[:n]) / want[:n].size < 0.95   # not vacuous
    got = p.from_device(out, batch)
    assert got.shape == (batch,) + OUT_SHAPE
    assert np.array_equal(got, want)                 # padding images too: nothing stale
    assert np.array_equal(p.from_device(out, n), want[:n])
    workers = d.summary().workers
    assert len(workers) == 12 and all(sum(w.kernel_calls.values()) == 32 * batch
                                      for w in workers)


def test_device_tensors_and_bad_batch():
    p = random_conv2x_stage(np.random.default_rng(0), "half_even", lambda name: 10)
    x = np.arange(2 * np.prod(IN_SHAPE)).astype(IN_DTYPE).reshape((2,) + IN_SHAPE)
    flat = p.device_inputs(x, 4)
    assert IN_DTYPE is np.uint8 and flat.dtype == np.uint8 and flat.size == 4 * np.prod(IN_SHAPE)
    assert np.array_equal(flat[:2 * x[0].size], np.concatenate([p.device_inputs(x[k:k + 1], 1)
                                                                 for k in range(2)]))
    assert not flat[2 * x[0].size:].any()
    with pytest.raises(ValueError, match="do not fit"):
        p.device_inputs(x, 1)
    with pytest.raises(ValueError, match="do not fit"):      # int8 rows: not this design's
        p.device_inputs(x.astype(np.int8), 4)
    assert p.device_outputs(3).size == 3 * np.prod(OUT_SHAPE)
    with emulated_aie():                  # the design module imports aie.* (emulated here)
        from ptq_conv2x.aie2 import DEFAULT_BATCH
    assert DEFAULT_BATCH == NETWORK.images_per_call == 8
    for bad in ("0", "-1", "many", "1025"):
        with pytest.raises(DesignError, match="--batch"):
            load_design(DESIGN, ["npu", "--batch", bad])
