"""Fixtures for the emulator tests: kernel registrations and a guard that no run leaves a
party (greenlet) or a thread behind."""
import os
import threading

import numpy as np
import pytest

from common.emu import clear_kernels, register_kernel

DESIGNS = os.path.join(os.path.dirname(__file__), "designs")


def design_path(name: str) -> str:
    return os.path.join(DESIGNS, name)


@pytest.fixture
def kernels():
    """Register the Python kernels the test designs use; removed afterwards."""
    register_kernel("vadd_scaled_i32", lambda a, b, c, s, n: np.add(a * s, b, out=c))
    register_kernel("scale_i32", lambda a, o, f, n: np.multiply(a, f, out=o))
    yield
    clear_kernels()


@pytest.fixture(autouse=True)
def no_leaked_parties():
    import gc
    from common.emu.engine import PartyGreenlet
    from common.emu.runner import WATCHDOG_THREAD     # one per process, idle between runs
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.name != WATCHDOG_THREAD]
    assert not leaked, f"threads survived: {leaked}"
    gc.collect()
    alive = [g.party.name for g in gc.get_objects()
             if type(g) is PartyGreenlet and not g.dead]
    assert not alive, f"emulator parties survived: {alive}"
