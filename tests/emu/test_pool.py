"""EmulationPool: runs spread over worker processes give the in-process results, in order;
a failing run raises in the caller."""
import numpy as np
import pytest

from common.emu import DeadlockError
from common.emu.pool import EmulationPool
from conftest import design_path


def test_pool_results_in_order_match_in_process_runs():
    rng = np.random.default_rng(5)
    ins = [rng.integers(-100, 100, 2048).astype(np.int32) for _ in range(7)]
    with EmulationPool(design_path("passthrough_fwd.py"), ["2048"], jobs=2) as pool:
        got = list(pool.imap(([a, None] for a in ins), outputs=[1], chunksize=2))
    assert len(got) == len(ins)
    for a, ((out,), seconds) in zip(ins, got):
        assert np.array_equal(out, a + 1) and seconds > 0


def test_pool_fixed_tensor_and_error_in_a_run():
    with EmulationPool(design_path("broken.py"), ["deadlock"], jobs=1,
                       fixed={0: np.arange(48, dtype=np.int32)}) as pool:
        with pytest.raises(DeadlockError, match="blocked parties"):
            list(pool.imap([[None, None]], outputs=[1]))
    with pytest.raises(ValueError, match="jobs=0"):
        EmulationPool(design_path("broken.py"), ["deadlock"], jobs=0)


def test_pool_design_that_fails_to_load_raises_not_hangs():
    from common.emu import EmulationError
    with EmulationPool(design_path("no_such_design.py"), [], jobs=1) as pool:
        with pytest.raises(EmulationError, match=r"no_such_design\.py' not found"):
            list(pool.imap([[None, None]], outputs=[1]))
