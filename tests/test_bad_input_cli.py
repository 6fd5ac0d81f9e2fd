"""Bad input to the real commands, run as subprocesses: every case must end with exactly
one line on stderr naming the option/file and the problem, a non-zero exit status, and
no partial output file."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import untrained_conv2x_checkpoint

ROOT = Path(__file__).resolve().parent.parent
FMNIST = str(ROOT / "data" / "fashion-mnist")


def run(*args: str, cwd: Path = ROOT, timeout: float = 300,
        max_file_bytes: int | None = None) -> subprocess.CompletedProcess:
    """Run ``python *args``; ``max_file_bytes`` caps the size of any file it writes
    (RLIMIT_FSIZE: a larger write fails with EFBIG, as on a full disk)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore::DeprecationWarning")

    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          preexec_fn=limit)


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Non-zero exit, one stderr line, no traceback, containing every needle."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0, f"exit 0; stdout: {r.stdout[-500:]}"
    assert len(lines) == 1, f"expected one stderr line, got:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def no_leftovers(folder: Path, allowed: set[str] = frozenset()) -> None:
    left = {p.name for p in folder.iterdir()} - set(allowed)
    assert not left, f"partial files left: {sorted(left)}"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small untrained conv2x float model with BatchNorm statistics from 64 images."""
    return untrained_conv2x_checkpoint(tmp_path_factory.mktemp("ck") / "model.pt", 64,
                                       "bad-input tests")


@pytest.fixture(scope="module")
def bundle(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b.npz"
    r = run("-m", "ptq_conv2x.ptq", "--checkpoint", str(checkpoint), "--calib-images", "16",
            "--data-dir", FMNIST, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


TEST_PY = str(ROOT / "ptq_conv2x" / "test.py")
AIE2_PY = str(ROOT / "ptq_conv2x" / "aie2.py")
DESIGN = ("-m", "common.emu", AIE2_PY)   # the design generator, run where no mlir-aie is


# ------------------------------------------------------------------ options
@pytest.mark.parametrize("args, needles", [
    (["--images", "-3"], ["--images", "at least 1", "-3"]),
    (["--images", "0"], ["--images", "at least 1"]),
    (["--images", "many"], ["--images", "not an integer"]),
    (["--calib-images", "0"], ["--calib-images", "at least 1"]),
    (["--jobs", "0"], ["--jobs", "at least 1"]),
    (["--dataset", "imagenet"], ["--dataset", "imagenet"]),
    (["--rounding", "stochastic"], ["--rounding", "stochastic"]),
    (["--device", "npu9"], ["--device", "npu9"]),
    (["--no-such-option"], ["--no-such-option"]),
])
def test_host_program_rejects_bad_options(args, needles):
    assert_one_line_error(run(TEST_PY, *args), *needles)


def test_host_program_save_io_directory(tmp_path):
    assert_one_line_error(run(TEST_PY, "--save-io", str(tmp_path)), "--save-io",
                          str(tmp_path), "directory")
    no_leftovers(tmp_path)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_host_program_bad_checkpoint_path(tmp_path, kind):
    ck = tmp_path / "ck.pt"
    if kind == "directory":
        ck.mkdir()
    line = assert_one_line_error(run(TEST_PY, "--checkpoint", str(ck)), str(ck))
    assert ("not found" in line) and (kind != "directory" or "directory" in line)


def test_host_program_missing_bundle(checkpoint, tmp_path):
    b = tmp_path / "none.npz"
    assert_one_line_error(run(TEST_PY, "--checkpoint", str(checkpoint), "--bundle", str(b),
                              "--data-dir", FMNIST), str(b), "not found")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_host_program_damaged_bundle(checkpoint, bundle, tmp_path, damage):
    data = bytearray(bundle.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x40
    else:
        data = bytearray(b"not a zip file at all")
    b = tmp_path / "bad.npz"
    b.write_bytes(bytes(data))
    assert_one_line_error(run(TEST_PY, "--checkpoint", str(checkpoint), "--bundle", str(b),
                              "--data-dir", FMNIST, "--quiet"), str(b))


def test_host_program_stale_bundle(checkpoint, bundle, tmp_path):
    """Bundle from another checkpoint: refused as stale, naming the bundle."""
    other = tmp_path / "other.pt"
    ck = torch.load(checkpoint, weights_only=True)
    for v in ck["state_dict"].values():
        if v.dtype.is_floating_point:
            v.mul_(1.01)
    torch.save(ck, other)
    assert_one_line_error(run(TEST_PY, "--checkpoint", str(other), "--bundle", str(bundle),
                              "--data-dir", FMNIST, "--quiet"), str(bundle), "stale")


def test_host_program_missing_data_dir(checkpoint, bundle, tmp_path):
    d = tmp_path / "nodata"
    assert_one_line_error(run(TEST_PY, "--checkpoint", str(checkpoint), "--bundle",
                              str(bundle), "--calib-images", "16", "--data-dir", str(d),
                              "--quiet"), str(d))


# ------------------------------------------------------------------ PTQ command
@pytest.mark.parametrize("args, needles", [
    (["--seed", "-1"], ["--seed", "at least 0"]),
    (["--calib-images", "0"], ["--calib-images", "at least 1"]),
    (["--dataset", "imagenet"], ["--dataset", "imagenet"]),
    (["--rounding", "down"], ["--rounding"]),
])
def test_ptq_rejects_bad_options(args, needles, tmp_path):
    assert_one_line_error(run("-m", "ptq_conv2x.ptq", "--out", str(tmp_path / "b.npz"), *args),
                          *needles)
    no_leftovers(tmp_path)


def test_ptq_too_many_calibration_images(checkpoint, tmp_path):
    assert_one_line_error(run("-m", "ptq_conv2x.ptq", "--checkpoint", str(checkpoint),
                              "--calib-images", "5000", "--out", str(tmp_path / "b.npz")),
                          "calib_images", "5000")
    no_leftovers(tmp_path)


def test_ptq_refuses_to_overwrite_its_checkpoint(checkpoint, tmp_path):
    ck = tmp_path / "ck.pt"
    ck.write_bytes(checkpoint.read_bytes())
    assert_one_line_error(run("-m", "ptq_conv2x.ptq", "--checkpoint", str(ck), "--out",
                              str(ck)), "--out", "checkpoint")
    assert ck.read_bytes() == checkpoint.read_bytes()


def test_ptq_hostile_pickle_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ck = tmp_path / "evil.pt"
    torch.save({"format": "npu-ptq-checkpoint/1", "state_dict": Evil(), "config": {}}, ck)
    assert_one_line_error(run("-m", "ptq_conv2x.ptq", "--checkpoint", str(ck), "--out",
                              str(tmp_path / "b.npz")), str(ck))
    assert not marker.exists()
    no_leftovers(tmp_path, {"evil.pt"})


def test_ptq_garbage_checkpoint(tmp_path):
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"\x00garbage" * 100)
    assert_one_line_error(run("-m", "ptq_conv2x.ptq", "--checkpoint", str(ck), "--out",
                              str(tmp_path / "b.npz")), str(ck))
    no_leftovers(tmp_path, {"ck.pt"})


def test_ptq_output_under_a_file(checkpoint, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "b.npz"
    assert_one_line_error(run("-m", "ptq_conv2x.ptq", "--checkpoint", str(checkpoint),
                              "--calib-images", "8", "--data-dir", FMNIST, "--out", str(out)),
                          str(blocker))
    no_leftovers(tmp_path, {"file"})


# ------------------------------------------------------------------ training, ONNX export
@pytest.mark.parametrize("args, needles", [
    (["--epochs", "0"], ["--epochs", "at least 1"]),
    (["--batch", "0"], ["--batch", "at least 1"]),
    (["--threads", "0"], ["--threads", "at least 1"]),
    (["--lr", "0"], ["--lr", "positive"]),
    (["--lr", "nan"], ["--lr", "positive"]),
    (["--seed", "-2"], ["--seed"]),
    (["--dataset", "imagenet"], ["--dataset"]),
])
def test_train_rejects_bad_options(args, needles, tmp_path):
    assert_one_line_error(run("-m", "ptq_conv2x.train", "--out", str(tmp_path / "c.pt"),
                              *args), *needles)
    no_leftovers(tmp_path)


def test_train_refuses_init_as_output(tmp_path):
    ck = tmp_path / "c.pt"
    ck.write_bytes(b"x")
    assert_one_line_error(run("-m", "ptq_conv2x.train", "--init", str(ck), "--out", str(ck)),
                          "--out", "--init")
    assert ck.read_bytes() == b"x"


def test_train_missing_data_dir(tmp_path):
    d = tmp_path / "none"
    assert_one_line_error(run("-m", "ptq_conv2x.train", "--data-dir", str(d), "--out",
                              str(tmp_path / "c.pt")), str(d))


def test_export_onnx_check_images_zero(tmp_path):
    assert_one_line_error(run("-m", "ptq_conv2x.export_onnx", "--check-images", "0", "--out",
                              str(tmp_path / "s.onnx")), "--check-images", "at least 1")
    no_leftovers(tmp_path)


# ------------------------------------------------------------------ design generator
def _rewrite_bundle(src: Path, dst: Path, edit) -> None:
    """Re-write a bundle with edited arrays/manifest through the writer (valid hashes), as
    a tool or an attacker would: the checks must catch the inconsistency itself."""
    from common.bundle import SCHEMA, read_bundle, write_bundle

    m, arrays = read_bundle(src, SCHEMA)
    edit(m, arrays)
    write_bundle(dst, {k: v for k, v in m.items()
                       if k not in ("arrays", "content_sha256", "manifest_sha256")}, arrays)


def test_design_refuses_rtp_table_disagreeing_with_shifts(bundle, tmp_path):
    def edit(m, a):
        a["rtp"] = a["rtp"].copy()
        a["rtp"][0, 0] += 1

    b = tmp_path / "rtp.npz"
    _rewrite_bundle(bundle, b, edit)
    assert_one_line_error(run(*DESIGN, "npu", "--bundle", str(b)), str(b), "RTP")


def test_design_refuses_out_of_range_shift(bundle, tmp_path):
    def edit(m, a):
        key = next(iter(m["convs"]))
        m["convs"][key]["shift"] = 40

    b = tmp_path / "shift.npz"
    _rewrite_bundle(bundle, b, edit)
    assert_one_line_error(run(*DESIGN, "npu", "--bundle", str(b)), str(b), "40")


def test_design_missing_bundle(tmp_path):
    b = tmp_path / "none.npz"
    assert_one_line_error(run(*DESIGN, "npu", "--bundle", str(b)), str(b), "not found")


def test_design_bad_device():
    assert_one_line_error(run(*DESIGN, "npu7"), "npu7")


def test_design_valid_bundle_loads(bundle):
    """The control case: the untouched bundle gives a design (no error)."""
    from common import emu

    assert emu.load_design(AIE2_PY, ["npu", "--bundle", str(bundle)]) is not None


def test_save_io_write_failure_keeps_the_table(checkpoint, bundle, tmp_path):
    """--save-io on a disk that fills up: the result table is printed first, then one error
    line naming the file, a non-zero exit, and no partial or temp file."""
    out = tmp_path / "io.npz"
    r = run(TEST_PY, "--checkpoint", str(checkpoint), "--bundle", str(bundle), "--calib-images",
            "16", "--data-dir", FMNIST, "--images", "2", "--emulate", "--quiet",
            "--save-io", str(out), max_file_bytes=400_000)
    assert "mismatches vs golden" in r.stdout
    assert_one_line_error(r, str(out))
    no_leftovers(tmp_path)
