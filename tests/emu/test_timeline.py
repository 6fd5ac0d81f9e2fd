"""The modelled timeline: cost model arithmetic, replay dependencies, Chrome trace and Gantt
outputs, the summary lines, the CLI options, and no logging when not traced."""
import json
import os
import re

import numpy as np
import pytest

from common.emu import EmulationError, load_design
from common.emu.__main__ import main, split_args
from common.emu.timeline import CostModel, Replay, _Cons, parse_efficiencies
from conftest import design_path

OBJ_BYTES = 1024
MACS = 256 * 64


@pytest.fixture
def demo():
    return load_design(design_path("timeline_demo.py"), ["4"])


def events(tl, cat=None, track=None):
    return [e for e in tl.events if (cat is None or e.cat == cat)
            and (track is None or track in e.track)]


def test_cost_model_arithmetic(demo):
    demo.run(np.zeros(1024, np.int32), timeline=demo.cost_model({"tl_mac": 0.8}))
    tl = demo.last_timeline
    ks = events(tl, "kernel")
    assert len(ks) == 8
    assert all(e.end - e.start == pytest.approx(100 + MACS / 256 / 0.8) for e in ks)
    dmas = events(tl, "dma")
    assert len(dmas) == 12                                     # 4 objects x 3 transfers
    assert all(e.end - e.start == pytest.approx(OBJ_BYTES / 4) for e in dmas)
    m = CostModel(macs_per_cycle=512)
    assert m.kernel_cycles("x", 512 * 10) == pytest.approx(100 + 10 / 0.5)
    assert m.kernel_cycles("x", 0) == 100


def test_replay_orders_dependencies(demo):
    demo.run(np.zeros(1024, np.int32), timeline=demo.cost_model())
    tl = demo.last_timeline
    first = events(tl, "kernel", "(0, 2)")
    second = events(tl, "kernel", "(0, 4)")
    mid = sorted(events(tl, "dma", "DMA in: mid"), key=lambda e: e.start)
    # stage 2's first call starts when the first 'mid' object has arrived, which left
    # stage 1 when its first call ended; calls on one core never overlap
    assert mid[0].start == pytest.approx(first[0].end)
    assert second[0].start == pytest.approx(mid[0].end)
    for a, b in zip(first, first[1:]):
        assert b.start >= a.end
    assert not tl.incomplete and tl.end == pytest.approx(max(e.end for e in tl.events))
    waits = events(tl, "wait", "(0, 4)")
    assert waits and waits[0].start == 0 and waits[0].end == pytest.approx(second[0].start)


def test_summary_prints_busy_bottleneck_and_modelled_time(demo):
    demo.run(np.zeros(1024, np.int32), timeline=demo.cost_model())
    s = str(demo.summary())
    assert "estimated NPU time lower bound" in s and "modelled time per run:" in s
    assert "busy per compute tile" in s and "bottleneck: worker 'stage' at tile" in s
    busy = demo.last_timeline.busy()
    assert set(busy) == {"worker 'stage' at tile (0, 2)", "worker 'stage' at tile (0, 4)"}
    assert all(0 < v <= 1 for v in busy.values())


def test_untraced_run_logs_nothing(demo):
    demo.run(np.zeros(1024, np.int32))
    assert demo.last_stats.trace_log is None and demo.last_timeline is None
    assert "modelled time" not in str(demo.summary())


def test_chrome_trace_and_gantt_files(tmp_path):
    js, png = tmp_path / "t.json", tmp_path / "t.png"
    assert main([design_path("timeline_demo.py"), "2", "--trace", str(js),
                 f"--gantt={png}", "--kernel-efficiency", "tl_mac=1"]) == 0
    d = json.loads(js.read_text())
    names = {e["args"]["name"] for e in d["traceEvents"] if e["name"] == "thread_name"}
    assert {"worker 'stage' at tile (0, 2)", "(0,0) DMA out: in", "(0,0) DMA in: out"} <= names
    xs = [e for e in d["traceEvents"] if e["ph"] == "X"]
    assert {e["cat"] for e in xs} == {"kernel", "wait", "dma"}
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in xs)
    assert "tl_mac=1" in d["otherData"]["cost_model"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_option_errors(capsys, tmp_path):
    assert split_args(["a", "--trace=x.json", "b"]) == (["a", "b"], {
        "--trace": "x.json", "--gantt": None, "--kernel-efficiency": []})
    assert parse_efficiencies(["a=0.5,b=1"]) == {"a": 0.5, "b": 1.0}
    for bad in ("conv=0", "conv", "=0.5", "conv=1.5", "conv=x"):
        with pytest.raises(EmulationError, match="--kernel-efficiency"):
            parse_efficiencies([bad])
    out = tmp_path / "never.json"
    assert main([design_path("timeline_demo.py"), "--trace", str(out),
                 "--kernel-efficiency", "tl_mac=2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kernel-efficiency" in err[0] and not out.exists()


# ---- a memtile forward that regroups rows into one larger object, weights held for B ----

LENET = os.path.join(os.path.dirname(__file__), "..", "..", "lenet_npu", "aie2.py")
LENET_TILES = {(0, 2), (0, 3), (0, 4), (0, 5), (1, 5)}     # lenet_npu/aie2.py's workers


def check_trace(path, compute_tiles: set) -> dict:
    """The Chrome trace's structure; every compute tile has kernel-call events; the
    replay completed. Returns the events by track name."""
    d = json.loads(path.read_text())
    assert set(d) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert d["otherData"]["incomplete"] is False and d["otherData"]["modelled_time_us"] > 0
    names = {e["tid"]: e["args"]["name"] for e in d["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    by_track: dict = {}
    for e in d["traceEvents"]:
        assert e["ph"] in ("M", "X") and e["pid"] == 1
        if e["ph"] == "X":
            assert e["cat"] in ("kernel", "wait", "dma") and e["ts"] >= 0 and e["dur"] >= 0
            assert e["ts"] + e["dur"] <= d["otherData"]["modelled_time_us"] + 1e-9
            by_track.setdefault(names[e["tid"]], []).append(e)
    tiles = {}
    for track, evs in by_track.items():
        m = re.fullmatch(r"worker '\w+' at tile \((\d+), (\d+)\)", track)
        if m:
            tiles[(int(m[1]), int(m[2]))] = [e for e in evs if e["cat"] == "kernel"]
    assert set(tiles) == compute_tiles and all(tiles.values())
    return by_track


@pytest.mark.parametrize("batch", [1, 2])
def test_regrouping_forward_replays(tmp_path, batch):
    js = tmp_path / "t.json"
    assert main([design_path("timeline_regroup.py"), str(batch), "--trace", str(js)]) == 0
    tr = check_trace(js, {(0, 2), (0, 4)})
    rows = sorted((e["ts"], e["ts"] + e["dur"]) for e in tr["(0,1) DMA in: row"])
    vecs = sorted((e["ts"], e["ts"] + e["dur"]) for e in tr["(0,1) DMA out: vec"])
    assert len(rows) == 5 * batch and len(vecs) == batch
    # the vector streams out as its rows arrive: it starts after its first row and ends
    # after its last one; with two row buffers at the memtile, row 2 arrives only after
    # row 0 has left, i.e. while vector 0 is still in flight
    assert vecs[0][0] >= rows[0][1] and vecs[0][1] > rows[4][1]
    assert vecs[0][0] < rows[2][1] < vecs[0][1]


def test_regrouping_forward_outputs_and_waits():
    d = load_design(design_path("timeline_regroup.py"), ["2"])
    xs, ws = np.arange(2 * 5 * 16, dtype=np.int32), np.arange(32, dtype=np.int32)
    out = d.run(xs, ws, np.zeros(32, np.int32), timeline=d.cost_model())
    want = (xs.reshape(2, 5, 16) + ws[:16]).sum(1) + ws[16:]
    assert np.array_equal(np.asarray(out[-1]).reshape(2, 16), want)
    tl = d.last_timeline
    assert not tl.incomplete and len(events(tl, "kernel", "(0, 4)")) == 2
    # stage 2 waits for its weights, then for each vector; its calls follow the vector DMAs
    vec_ends = sorted(e.end for e in events(tl, "dma", "DMA out: vec"))
    calls = sorted(e.start for e in events(tl, "kernel", "(0, 4)"))
    assert all(c >= v for c, v in zip(calls, vec_ends))


@pytest.mark.parametrize("batch", [1, 2])
def test_lenet_trace(tmp_path, batch):
    js, png = tmp_path / "t.json", tmp_path / "t.png"
    assert main([LENET, "npu", "--random-seed", "0", "--batch", str(batch),
                 "--trace", str(js), f"--gantt={png}"]) == 0
    tr = check_trace(js, LENET_TILES)
    assert len(tr["(1,1) DMA out: flat"]) == batch
    assert len(tr["(1,1) DMA in: act2"]) == 5 * batch
    assert len(tr["(0,0) DMA out: wts"]) == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replay_cuts_a_dependency_cycle():
    # an object whose arrival depends on itself: answered "not yet known", no recursion
    r = Replay(None, CostModel())
    c = _Cons("f", (0, 2), 2, 4, True, "t")
    r.fifo_prod_kind["f"] = "worker"
    r.ptime = lambda f, i: r.arrival(c, i)
    assert r.arrival(c, 0) is None and c.arr == [] and not c.busy
