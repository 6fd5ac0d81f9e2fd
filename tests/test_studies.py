"""Quantization studies (common/studies): posit8 and fixed-point definitions, cost metrics,
the per-layer search's budget, the 8-bit sweep point against the deployed conv2x model,
resume after an interruption, Ray, and the command line."""
import importlib.util
import math

import numpy as np
import pytest
import torch
from torch import nn

from common.checkpoint import save_checkpoint
from common.datasets import load_dataset, to_float_tensor_input
from common.studies import StudyError, formats, fxp, posit, sweep
from common.studies.__main__ import main as studies_main
from common.studies.nets import checkpoint_sha256, network_for
from common.studies.runner import Context, accuracy, run_configs


# ---- posit8 ------------------------------------------------------------------------------

@pytest.mark.parametrize("es", [0, 2])
def test_posit8_all_codes(es):
    t = posit.decode_table(es)
    assert t[0] == 0 and math.isnan(t[0x80])
    order = [(c + 0x81) % 256 for c in range(255)]          # 0x81 (most negative) .. 0x7F
    vals = t[order]
    assert np.all(np.diff(vals) > 0)                         # strictly monotonic in int8 order
    for c in range(256):
        if c != 0x80:
            assert posit.encode_scalar(float(t[c]), 8, es) == c
    codes = np.arange(256, dtype=np.uint8)
    back = posit.encode(posit.decode(codes, es), es)
    assert np.array_equal(back, codes)                       # NaR -> NaN -> NaR too
    assert np.array_equal(t[order], -t[order][::-1])         # symmetric: code -c = -value


def _standard_formula(code: int, es: int) -> float:
    """The 2022 Standard's closed form on the raw bits (no two's-complement step):
    ((1 - 3s) + f) * 2^((1 - 2s) * (2^es * r + e + s))."""
    if code == 0:
        return 0.0
    if code == 0x80:
        return math.nan
    s = code >> 7
    bits = [(code >> i) & 1 for i in range(6, -1, -1)]
    m = 1
    while m < 7 and bits[m] == bits[0]:
        m += 1
    r = m - 1 if bits[0] else -m
    rest = bits[m + 1:] + [0] * es
    e = int("".join(map(str, rest[:es])) or "0", 2)
    frac = rest[es:len(bits[m + 1:])] if len(bits[m + 1:]) > es else []
    f = sum(b / 2 ** (i + 1) for i, b in enumerate(frac))
    return ((1 - 3 * s) + f) * 2.0 ** ((1 - 2 * s) * ((1 << es) * r + e + s))


@pytest.mark.parametrize("es", [0, 2])
def test_posit8_table_vs_standard_closed_form(es):
    want = np.array([_standard_formula(c, es) for c in range(256)])
    assert np.array_equal(posit.decode_table(es), want, equal_nan=True)


def test_posit8_extremes_and_examples():
    assert (posit.maxpos(0), posit.minpos(0)) == (64.0, 1 / 64)
    assert (posit.maxpos(2), posit.minpos(2)) == (2.0 ** 24, 2.0 ** -24)
    # es = 0: 5 fraction bits at 1.0; es = 2: 3 fraction bits at 1.0
    t0, t2 = posit.decode_table(0), posit.decode_table(2)
    assert (t0[0x40], t0[0x41], t0[0x60], t0[0x50], t0[0xC0]) == (1.0, 1 + 1 / 32, 2.0, 1.5, -1.0)
    assert (t2[0x40], t2[0x41], t2[0x48], t2[0x50], t2[0x20]) == (1.0, 1.125, 2.0, 4.0, 1 / 16)
    # the classic posit<16,3> example: 0b0000110111011101 = 256^-3 * 2 * (1 + 221/256)
    assert posit.decode_code(0b0000110111011101, 16, 3) == 477 / 2 ** 27


@pytest.mark.parametrize("es", [0, 2])
def test_posit8_rounding_saturation_nar(es):
    t = posit.decode_table(es)
    enc = lambda x: int(posit.encode(np.array([x]), es)[0])  # noqa: E731
    mid_even = (t[0x40] + t[0x41]) / 2                      # tie between 0x40 and 0x41
    mid_odd = (t[0x41] + t[0x42]) / 2
    assert enc(mid_even) == 0x40 and enc(mid_odd) == 0x42
    assert enc(np.nextafter(mid_even, 2)) == 0x41
    assert enc(1e30) == 0x7F and enc(-1e30) == 0x81
    assert enc(1e-30) == 0x01 and enc(-1e-30) == 0xFF       # never rounds to 0
    assert enc(0.0) == 0 and enc(-0.0) == 0
    assert enc(float("nan")) == 0x80 and enc(float("inf")) == 0x80 and enc(-float("inf")) == 0x80
    rng = np.random.default_rng(es)
    x = rng.standard_normal(3000) * 10.0 ** rng.uniform(-8, 8, 3000)
    assert np.array_equal(posit.encode(x, es),
                          [posit.encode_scalar(float(v), 8, es) for v in x])
    q = posit.quantize_posit8(torch.tensor([1.0, 3.3, float("nan")]), es)
    assert q.dtype == torch.float32 and q[0] == 1.0 and torch.isnan(q[2])


def test_posit_library_crosscheck():
    have = importlib.util.find_spec("softposit") or importlib.util.find_spec("sfpy")
    if have is None:
        pytest.skip("no posit library installs on Python 3.11: softposit 0.3.4.4 and sfpy "
                    "have wheels only up to CPython 3.7 (sfpy's build breaks with Cython 3), "
                    "numpy-posit is not on the registry; softposit 0.0.1 is an empty stub")
    import softposit as sp  # pragma: no cover - only where a real library installs
    if not hasattr(sp, "posit8"):
        pytest.skip("installed softposit has no posit8 (the empty 0.0.1 stub)")
    for c in range(256):  # pragma: no cover
        if c != 0x80:
            v = float(sp.posit8(bits=c))
            assert v == posit.decode_table(0)[c]


# ---- fixed point and cost metrics --------------------------------------------------------

def test_fxp_quantizer_hand_values():
    x = torch.tensor([0.3, -0.7, 1.0, 5.0, -5.0, 0.125, 0.375])
    q = fxp.fxp_quantize(x, 4, 2)   # steps of 1/4, levels -7..7
    assert q.tolist() == [0.25, -0.75, 1.0, 1.75, -1.75, 0.0, 0.5]   # 0.5, 1.5 half to even
    assert fxp.fxp_quantize(torch.tensor([3.0]), 1, 0).item() == 0.0  # 1 bit holds only 0
    assert fxp.baseline_f(8, 3.0) == 5 and fxp.baseline_f(8, 0.1) == 10
    assert fxp.baseline_f(12, 1.0) == 11 and fxp.baseline_f(8, 0.0) == 7


def test_cost_metrics_two_layers():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    infos = fxp.layer_infos(m, torch.zeros(1, 1, 6, 6))
    assert [(i.weight_count, i.bias_count, i.out_elems, i.out_positions) for i in infos] == \
        [(18, 2, 32, 16), (96, 3, 3, 1)]
    F = fxp.Fxp
    cfg = {"0": {"weights": F(4, 1), "biases": F(8, 2), "activations": F(6, 3)},
           "3": {"weights": F(3, 0), "biases": F(5, 1), "activations": F(10, 4)}}
    bits = 4 * 18 + 8 * 2 + 6 * 32 + 3 * 96 + 5 * 3 + 10 * 3
    assert fxp.memory_kib(infos, cfg) == bits / 8 / 1024
    assert fxp.mult_cost(infos, cfg) == 4 * 18 * 6 * 16 + 3 * 96 * 10 * 1
    eight = fxp.uniform_config(infos, 8)
    assert fxp.memory_kib(infos, eight) == 8 * (18 + 2 + 32 + 96 + 3 + 3) / 8 / 1024
    assert fxp.npu_runnable(infos[1], cfg["3"]) == "no: activations 10 bits > 8"
    assert fxp.npu_runnable(infos[0], cfg["0"]) == "yes"


def test_search_respects_budget():
    torch.manual_seed(0)
    ds = load_dataset("mnist", "train", "data/mnist")
    x = torch.from_numpy(to_float_tensor_input(ds.images[:1200], pad_to=28))
    y = torch.from_numpy(ds.labels[:1200])
    m = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(3):
        for i in range(0, 900, 100):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    res = fxp.search(m.eval(), x[900:], y[900:], budget=0.02, progress=False)
    assert res.acc_float > 50
    assert len(res.log) == 6 and all(e["within_budget"] for e in res.log)
    assert res.loss <= 0.02 + 1e-12
    for e in res.log:
        i = 1 if e["layer"] == "1" else 2
        assert e["budget"] == fxp.budgets(0.01, i, 2)[e["kind"]]
    assert fxp.memory_kib(res.infos, res.config) < fxp.memory_kib(
        res.infos, fxp.uniform_config(res.infos, 8))


# ---- networks, sweep, formats, runner -----------------------------------------------------

@pytest.fixture(scope="module")
def lenet_ck(tmp_path_factory):
    """A throwaway LeNet-5 trained one short epoch on 1000 embedded MNIST images."""
    from lenet_npu.model import LeNet5
    torch.manual_seed(0)
    ds = load_dataset("mnist", "train", "data/mnist")
    x = torch.from_numpy(to_float_tensor_input(ds.images[:1000], pad_to=28))
    y = torch.from_numpy(ds.labels[:1000])
    m = LeNet5()
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for i in range(0, 1000, 50):
        opt.zero_grad()
        nn.functional.nll_loss(m(x[i:i + 50]), y[i:i + 50]).backward()
        opt.step()
    p = tmp_path_factory.mktemp("lenet") / "lenet.pt"
    save_checkpoint(p, m.eval(), {"note": "test"})
    return p


def lenet_ctx(ck, n=100):
    return Context("lenet", str(ck), checkpoint_sha256(ck), "mnist", "data/mnist", n, 32)


def test_conv2x_8bit_sweep_point_is_the_deployed_model(tmp_path):
    from common.pipeline import prepare, ptq_config
    from ptq_conv2x.network import NETWORK
    from tests.helpers import untrained_conv2x_checkpoint
    ck = untrained_conv2x_checkpoint(tmp_path / "c.pt", 16)
    ctx = Context("conv2x", str(ck), checkpoint_sha256(ck), "fashion-mnist",
                  "data/fashion-mnist", 6, 4)
    cfg = {"scheme": "po2", "mode": "wa", "bits": 8}
    built = sweep.build(ctx, cfg)          # what sweep.evaluate scores
    deployed = prepare(NETWORK, ck, ptq_config(NETWORK, "fashion-mnist", calib_images=4),
                       "data/fashion-mnist", progress=False).quant_model
    xt, yt = network_for("conv2x").test_set("fashion-mnist", "data/fashion-mnist", 6)
    with torch.no_grad():
        assert torch.equal(built(xt), deployed(xt))
    assert accuracy(built, xt, yt) == accuracy(deployed, xt, yt)


def test_sweep_one_bit_is_not_a_result_and_formats_store():
    assert sweep.degenerate({"scheme": "po2", "mode": "wa", "bits": 1}) == sweep.ONE_BIT_SHORT
    assert sweep.degenerate({"scheme": "asym", "mode": "wa", "bits": 1}) is None
    assert sweep.degenerate({"scheme": "po2", "mode": "a", "bits": 1}) is None
    assert formats.po2_scale(127.0) == 1.0 and formats.po2_scale(100.0) == 1.0
    assert formats.po2_scale(1.0) == 2.0 ** -6
    x = torch.tensor([0.5, 300.0, -1.25, 3.0])
    assert formats.store(x, "int8_po2", 1.0).tolist() == [0.0, 127.0, -1.0, 3.0]
    assert formats.store(x, "float8_e4m3fn")[1] == 288.0    # 3 mantissa bits near 300
    assert formats.store(torch.tensor([1 + 2 ** -11]), "float16").item() == 1.0


CALLS: list[int] = []


def _counting_task(ctx, config):
    CALLS.append(config["i"])
    return {"value": config["i"] * 2}


def test_resume_after_interruption(tmp_path):
    ctx = Context("lenet", "x", "0" * 64, "mnist", None, 10, 4)
    cfgs = [{"i": i} for i in range(6)]

    def task(c, cfg):
        CALLS.append(cfg["i"])
        if len(CALLS) > 2:
            raise KeyboardInterrupt          # interrupted after 2 configurations
        return {"value": cfg["i"] * 2}

    CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        run_configs("t", task, ctx, cfgs, tmp_path, progress=False)
    CALLS.clear()
    res, computed = run_configs("t", _counting_task, ctx, cfgs, tmp_path, progress=False)
    assert computed == 4 and sorted(CALLS) == [2, 3, 4, 5]
    assert [r["value"] for r in res] == [0, 2, 4, 6, 8, 10]
    other = Context("lenet", "x", "1" * 64, "mnist", None, 10, 4)  # another checkpoint
    CALLS.clear()
    assert run_configs("t", _counting_task, other, cfgs[:1], tmp_path, progress=False)[1] == 1


def test_ray_local_tiny_sweep(lenet_ck, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not importable here")
    import os
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    try:
        rows = sweep.run(lenet_ctx(lenet_ck, 40), tmp_path, [1, 8], ["po2"], ["wa"],
                         ray_address="local", progress=False)
    finally:
        ray.shutdown()
    assert rows[0]["accuracy_pct"] is None and "not a result" in rows[0]["note"]
    assert rows[1]["accuracy_pct"] > 30
    assert (tmp_path / "sweep.csv").is_file() and (tmp_path / "sweep.png").is_file()


def test_cli_formats_and_fxp(lenet_ck, tmp_path, capsys):
    out = tmp_path / "f"
    assert studies_main(["formats", "--net", "lenet", "--checkpoint", str(lenet_ck),
                         "--data-dir", "data/mnist", "--images", "60", "--calib", "16",
                         "--formats", "float16,posit8_es0,int8_po2", "--modes", "inputs",
                         "--jobs", "1", "--out", str(out), "--no-progress"]) == 0
    text = (out / "formats.csv").read_text().splitlines()
    assert text[0] == "mode,format,accuracy_pct,delta_vs_float32" and len(text) == 5
    assert (out / "formats.png").stat().st_size > 1000 and (out / "formats.md").is_file()
    out = tmp_path / "x"
    assert studies_main(["fxp-search", "--net", "lenet", "--checkpoint", str(lenet_ck),
                         "--data-dir", "data/mnist", "--images", "30", "--val", "30",
                         "--budget", "2", "--out", str(out), "--no-progress"]) == 0
    import csv
    rows = list(csv.DictReader((out / "fxp.csv").open()))
    assert [r["layer"] for r in rows] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    total_bits = total_mult = 0
    for r in rows:                      # the claimed costs, recomputed from the table
        v = {k: int(r[k]) for k in r if k not in ("layer", "type", "npu_int8")}
        assert v["memory_bits"] == (v["w_bw"] * v["weights"] + v["b_bw"] * v["biases"]
                                    + v["a_bw"] * v["out_elems"])
        assert v["mult_cost"] == v["w_bw"] * v["weights"] * v["a_bw"] * v["out_positions"]
        total_bits += v["memory_bits"]
        total_mult += v["mult_cost"]
    md = (out / "fxp.md").read_text()
    assert f"memory {total_bits / 8 / 1024:.2f} KiB" in md and f"cost {total_mult} vs" in md
    with pytest.raises(StudyError, match="no lenet checkpoint"):
        studies_main(["sweep", "--net", "lenet", "--checkpoint", str(tmp_path / "none.pt")])
    with pytest.raises(StudyError, match="--bits"):
        studies_main(["sweep", "--net", "lenet", "--checkpoint", str(lenet_ck), "--bits", "0-3"])
