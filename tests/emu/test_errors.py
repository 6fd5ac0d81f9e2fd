import numpy as np
import pytest

from common.emu import (DeadlockError, DesignError, KernelError, ResourceError, load_design,
                        register_kernel, unregister_kernel)
from conftest import design_path


def run_case(case):
    d = load_design(design_path("broken.py"), [case])
    n = d.input_specs[0][1][0]
    return d.run(np.arange(n, dtype=np.int32))


def test_deadlock_reports_parties_and_fifos():
    with pytest.raises(DeadlockError) as e:
        run_case("deadlock")
    msg = str(e.value)
    assert "acquire(2) on consumer end of fifo 'in'" in msg
    assert "runtime sequence" in msg and "drain of fifo 'out'" in msg
    assert "fifo occupancy" in msg and "ready 1" in msg


def test_memory_overflow():
    with pytest.raises(ResourceError, match=r"compute tile \(0, 2\) needs 66560 bytes.*65536"):
        run_case("memory")


def test_two_workers_one_tile():
    with pytest.raises(ResourceError, match=r"two workers on compute tile \(0, 2\)"):
        run_case("two_workers")


def test_tile_outside_grid():
    with pytest.raises(ResourceError, match=r"\(3, 2\) is outside the NPU1Col1 grid"):
        run_case("off_grid")


def test_acquire_above_depth():
    with pytest.raises(DesignError, match=r"acquire\(3\).*fifo 'in' exceeds its depth 2"):
        run_case("acquire")


def test_release_more_than_held():
    with pytest.raises(DesignError, match=r"release\(2\).*only 1 object\(s\) held"):
        run_case("release")


def test_fill_size_mismatch():
    with pytest.raises(DesignError, match=r"fill of 40 elements into fifo 'in'.*16 elements"):
        run_case("fill_size")


def test_dma_channel_overflow():
    with pytest.raises(ResourceError, match=r"compute tile \(0, 2\) uses 3 input DMA channels"):
        run_case("channels")


def test_missing_kernel_names_symbol_and_registration():
    with pytest.raises(KernelError, match=r"no_such_symbol_xyz.*register_kernel"):
        run_case("missing_kernel")


def test_kernel_that_raises_names_worker():
    def boom(a):
        raise ValueError("bad data")
    register_kernel("boom_kernel", boom)
    try:
        with pytest.raises(KernelError, match=r"kernel 'boom_kernel' raised in worker 'core' at tile \(0, 2\).*bad data"):
            run_case("kernel_raises")
    finally:
        unregister_kernel("boom_kernel")
