"""common.offload: the pyxrt path against a fake pyxrt (no NPU here), instruction files."""
import types

import numpy as np
import pytest

from common.offload import OffloadError, XrtOffload, read_instructions


def fake_pyxrt(state="COMPLETED", kernels=("MLIR_AIE",), fail_device=False):
    """A stand-in with the pyxrt calls the host flow uses; the 'device' adds 1 to input."""
    log = []

    class bo:
        cacheable, host_only = "cacheable", "host_only"

        def __init__(self, dev, size, flags, group):
            self.buf, self.flags, self.group = bytearray(size), flags, group
            log.append(("bo", size, flags, group))

        def size(self):
            return len(self.buf)

        def write(self, data, off):
            self.buf[off:off + len(data)] = bytes(data)

        def read(self, n, off):
            return bytes(self.buf[off:off + n])

        def sync(self, direction):
            log.append(("sync", direction))

    class kernel:
        def __init__(self, ctx, name):
            self.name = name

        def group_id(self, i):
            return i

        def __call__(self, opcode, insts, n, *bos):
            log.append(("call", opcode, n, len(bos)))
            inp, out = bos[0], bos[-1]
            out.buf[:] = bytes((b + 1) % 256 for b in inp.buf[:len(out.buf)])
            return types.SimpleNamespace(wait=lambda: getattr(ert_cmd_state, f"ERT_CMD_STATE_{state}"))

    class xclbin:
        def __init__(self, path):
            self.path = path

        def get_kernels(self):
            return [types.SimpleNamespace(get_name=lambda n=n: n) for n in kernels]

        def get_uuid(self):
            return "uuid"

    class device:
        def __init__(self, i):
            if fail_device:
                raise RuntimeError("No devices found")

        def register_xclbin(self, xb):
            log.append(("register", xb.path))

    ert_cmd_state = types.SimpleNamespace(ERT_CMD_STATE_COMPLETED="COMPLETED",
                                          ERT_CMD_STATE_ERROR="ERROR")
    mod = types.SimpleNamespace(
        bo=bo, kernel=kernel, xclbin=xclbin, device=device, ert_cmd_state=ert_cmd_state,
        hw_context=lambda dev, uuid: ("ctx", uuid),
        xclBOSyncDirection=types.SimpleNamespace(XCL_BO_SYNC_BO_TO_DEVICE="to",
                                                 XCL_BO_SYNC_BO_FROM_DEVICE="from"))
    return mod, log


@pytest.fixture
def files(tmp_path):
    x = tmp_path / "final.xclbin"
    x.write_bytes(b"xclbin")
    i = tmp_path / "insts.bin"
    i.write_bytes(np.arange(6, dtype="<u4").tobytes())
    return x, i


def test_xrt_flow_with_fake(files):
    mod, log = fake_pyxrt()
    off = XrtOffload(*files, xrt_module=mod)
    a = np.arange(16, dtype=np.int8)
    out = np.zeros(16, np.uint8)
    off.run([a, np.zeros(4, np.int8), out], outputs=[2])
    np.testing.assert_array_equal(out, (np.arange(16) + 1) % 256)
    assert ("call", 3, 6, 3) in log
    groups = [e[3] for e in log if e[0] == "bo"]
    assert groups == [1, 3, 4, 5]          # instructions in group 1, data in 3, 4, 5
    assert ("bo", 24, "cacheable", 1) in log


def test_xrt_errors(files, tmp_path):
    mod, _ = fake_pyxrt(state="ERROR")
    off = XrtOffload(*files, xrt_module=mod)
    with pytest.raises(OffloadError, match="state ERROR"):
        off.run([np.zeros(4, np.int8), np.zeros(4, np.uint8)], outputs=[1])
    with pytest.raises(OffloadError, match="no kernel 'MLIR_AIE'"):
        XrtOffload(*files, xrt_module=fake_pyxrt(kernels=("other",))[0])
    with pytest.raises(OffloadError, match="no NPU device could be opened"):
        XrtOffload(*files, xrt_module=fake_pyxrt(fail_device=True)[0])
    with pytest.raises(OffloadError, match="xclbin not found"):
        XrtOffload(tmp_path / "none.xclbin", files[1], xrt_module=mod)


def test_instruction_files(tmp_path):
    (tmp_path / "i.txt").write_text("00000001\n0000ff00\n")
    assert list(read_instructions(tmp_path / "i.txt")) == [1, 0xFF00]
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 6)
    with pytest.raises(OffloadError, match="whole number of uint32"):
        read_instructions(tmp_path / "odd.bin")
    with pytest.raises(OffloadError, match="not found"):
        read_instructions(tmp_path / "none.bin")
    (tmp_path / "bad.txt").write_text("zz\n")
    with pytest.raises(OffloadError, match="not a hex"):
        read_instructions(tmp_path / "bad.txt")


def test_no_pyxrt_is_a_clear_error(files, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_pyxrt(name, *a, **k):
        if name == "pyxrt":
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_pyxrt)
    with pytest.raises(OffloadError, match="pyxrt is not importable"):
        XrtOffload(*files)
