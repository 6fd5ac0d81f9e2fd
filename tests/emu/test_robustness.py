"""The emulator fails cleanly: a time limit on every run, Ctrl-C stops a run (in process
and in an EmulationPool) as KeyboardInterrupt, arrays of the wrong dtype/size are refused
instead of cast or skipped, and a design file that cannot load gives one line."""
import os
import select
import signal
import subprocess
import sys
import threading
import time
import _thread

import numpy as np
import pytest

from common.emu import (DesignError, EmulationError, RunTimeoutError, load_design,
                        run_design)
from common.emu.pool import EmulationPool
from common.emu.runner import DEFAULT_TIMEOUT_S
from common.offload import EmulatedOffload
from conftest import design_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# argv[1] selects where the design loops forever in pure Python (never waiting on a fifo):
# "worker", "host", "swallow" (a worker loop that catches Exception), "exit" (the worker
# process dies), "raise_kbi" (core code raises KeyboardInterrupt); anything else runs
# normally (out = in + 1). It prints "ready" (flushed) just before looping.
SPIN = '''
import os, sys
import numpy as np
from aie.iron import ObjectFifo, Program, Runtime, Worker
from aie.iron.device import NPU1Col1

CASE = sys.argv[1] if len(sys.argv) > 1 else "ok"
t = np.ndarray[(16,), np.dtype[np.int32]]
of_in, of_out = ObjectFifo(t, name="in"), ObjectFifo(t, name="out")


def ready():
    print("ready", flush=True)


def core(ci, co):
    a = ci.acquire(1)
    b = co.acquire(1)
    if CASE == "worker":
        ready()
        while True:
            pass
    if CASE == "swallow":
        ready()
        n = 0
        while True:
            try:
                n += 1
            except Exception:
                pass
    if CASE == "exit":
        os._exit(3)
    if CASE == "raise_kbi":
        raise KeyboardInterrupt
    b[:] = a + 1
    ci.release(1)
    co.release(1)


def seq(a, c, hi, ho):
    if CASE == "host":
        ready()
        while True:
            pass
    hi.fill(a)
    ho.drain(c, wait=True)


rt = Runtime(seq, [t, t, of_in.prod(), of_out.cons()])
print(Program(NPU1Col1(), rt, workers=[Worker(core, [of_in.cons(), of_out.prod()])])
      .resolve_program())
'''


@pytest.fixture
def spin(tmp_path):
    p = tmp_path / "spin.py"
    p.write_text(SPIN)
    return str(p)


def _env():
    return dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")


A16 = np.arange(16, dtype=np.int32)


# ------------------------------------------------------------------ time limit
@pytest.mark.parametrize("case,who", [("worker", "worker 'core' at tile"),
                                      ("swallow", "worker 'core' at tile"),
                                      ("host", "the runtime sequence")])
def test_pure_python_loop_stops_at_the_time_limit(spin, case, who):
    d = load_design(spin, [case])
    t0 = time.perf_counter()
    with pytest.raises(RunTimeoutError) as e:
        d.run(A16, None, timeout=0.3)
    assert time.perf_counter() - t0 < 3
    msg = str(e.value)
    assert spin in msg and "time limit of 0.3 s" in msg and who in msg and "\n" not in msg
    assert isinstance(e.value, EmulationError) and isinstance(e.value, TimeoutError)


RACE_SCRIPT = '''
import sys, time
import numpy as np
from common.emu import RunTimeoutError, load_design

d = load_design(sys.argv[1], ["ok"])
a = np.arange(16, dtype=np.int32)
times = []
for _ in range(20):
    t0 = time.perf_counter()
    d.run(a)
    times.append(time.perf_counter() - t0)
once = min(times)
rng = np.random.default_rng(0)
ok = expired = 0
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    limit = float(once * np.exp(rng.uniform(np.log(0.05), np.log(3))))
    try:
        out, = d.run(a, None, timeout=limit)
        assert np.array_equal(out, a + 1)
        ok += 1
    except RunTimeoutError:
        expired += 1
    busy = time.perf_counter() + 0.0005      # a late TimeLimit would land here
    while time.perf_counter() < busy:
        pass
assert np.array_equal(d.run(a, timeout=None)[0], a + 1)
print(ok, expired)
'''


def test_time_limit_never_fires_after_a_normal_finish(spin, tmp_path):
    """Thousands of runs that end just before, at and after their limit (in a child
    process, so that a hang fails the test): each gives the right result or
    RunTimeoutError, no late exception appears afterwards, and the watchdog's lock is
    never left held by an exception delivered inside it."""
    script = tmp_path / "race.py"
    script.write_text(RACE_SCRIPT)
    r = subprocess.run([sys.executable, str(script), spin, "3"], capture_output=True,
                       text=True, env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    ok, expired = map(int, r.stdout.split())
    assert ok > 100 and expired > 10, (ok, expired)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_bad_timeout_values_are_refused(spin, bad):
    d = load_design(spin, ["ok"])
    with pytest.raises(EmulationError, match="timeout="):
        d.run(A16, timeout=bad)
    with pytest.raises(EmulationError, match="timeout="):
        EmulatedOffload(spin, ["ok"], timeout=bad)


def test_default_time_limit_is_documented():
    assert DEFAULT_TIMEOUT_S == 600
    import inspect
    assert inspect.signature(load_design(design_path("passthrough_fwd.py"), ["1024"]).run) \
        .parameters["timeout"].default == DEFAULT_TIMEOUT_S


def test_emulated_offload_and_pool_take_the_time_limit(spin):
    off = EmulatedOffload(spin, ["worker"], timeout=0.3)
    with pytest.raises(RunTimeoutError, match="worker 'core'"):
        off.run([A16, np.zeros(16, np.int32)], outputs=[1])
    with EmulationPool(spin, ["worker"], jobs=1, timeout=0.3) as pool:
        with pytest.raises(RunTimeoutError, match=r"spin\.py: run stopped at its time limit"):
            list(pool.imap([[A16, None]], outputs=[1]))


def test_cli_timeout_option(spin):
    r = subprocess.run([sys.executable, "-m", "common.emu", "--timeout", "0.3", spin, "host"],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("RunTimeoutError: ") and spin in err[0]
    assert "0.3 s" in err[0] and "runtime sequence" in err[0]


# ------------------------------------------------------------------ Ctrl-C in process
def test_keyboard_interrupt_in_core_code_is_not_a_kernel_error(spin):
    d = load_design(spin, ["raise_kbi"])
    with pytest.raises(KeyboardInterrupt):
        d.run(A16)
    assert np.array_equal(load_design(spin, ["ok"]).run(A16)[0], A16 + 1)


@pytest.mark.parametrize("case", ["worker", "host"])
def test_ctrl_c_stops_a_looping_run_within_a_second(spin, case):
    d = load_design(spin, [case])
    timer = threading.Timer(0.2, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            d.run(A16, timeout=20)
    finally:
        timer.join()
    assert time.perf_counter() - t0 < 1.2


def _wait_ready(proc, n: int, limit: float = 30) -> None:
    """Read ``n`` 'ready' lines from proc's stdout (each printed just before a loop); fails
    after ``limit`` seconds instead of blocking on a silent process."""
    end = time.monotonic() + limit
    fd, seen = proc.stdout.fileno(), b""
    while seen.count(b"ready\n") < n:
        left = end - time.monotonic()
        assert left > 0, f"no {n} ready lines in {limit} s: {seen!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"process ended early: {proc.wait()} {proc.stderr.read()}"
            seen += chunk


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == pid and st[0] != "Z":
                out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _interrupt(proc, expect_children: int) -> tuple[str, float, list[int]]:
    kids = _children(proc.pid)
    assert len(kids) >= expect_children, kids
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return err, time.monotonic() - t0, kids


def test_ctrl_c_of_the_emulator_command_exits_130_with_one_line(spin):
    proc = subprocess.Popen([sys.executable, "-m", "common.emu", "--timeout", "0", spin,
                             "worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    _wait_ready(proc, 1)
    err, dt, _ = _interrupt(proc, 0)
    assert proc.returncode == 130 and err == "error: interrupted\n" and dt < 3


POOL_SCRIPT = '''
import sys
import numpy as np
from common.cli import run_cli
from common.emu.pool import EmulationPool


def main():
    with EmulationPool(sys.argv[1], ["worker"], jobs=2, timeout=None) as pool:
        for _ in pool.imap(([None, None] for _ in range(4)), outputs=[1], chunksize=1):
            pass
    return 0


if __name__ == "__main__":
    run_cli(main)
'''


def test_ctrl_c_kills_the_pool_processes_and_exits_130(spin, tmp_path):
    script = tmp_path / "pool_script.py"
    script.write_text(POOL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), spin], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    _wait_ready(proc, 2)           # both worker processes loop in a run
    err, dt, kids = _interrupt(proc, 2)
    assert proc.returncode == 130 and err == "error: interrupted\n", err
    assert dt < 3, f"took {dt:.1f} s"
    time.sleep(0.2)
    assert not [k for k in kids if _alive(k)], "worker processes survived"


def test_pool_fixed_tensors_travel_as_files_removed_afterwards(spin):
    """Fixed tensors reach the workers through a temporary directory (a large process
    object would block Process.start() past a Ctrl-C); it is gone after the pool."""
    with EmulationPool(spin, ["ok"], jobs=1, fixed={0: A16}) as pool:
        (out,), _ = next(pool.imap([[None, None]], outputs=[1]))
        tmp = pool._dir
        assert os.listdir(tmp) == ["fixed0.npy"]
    assert np.array_equal(out, A16 + 1) and not os.path.exists(tmp)
    with pytest.raises(EmulationError, match="fixed tensors"):
        EmulationPool(spin, ["ok"], jobs=1, fixed={0: np.array([None, 1])})


def test_pool_worker_process_that_dies_raises(spin):
    with EmulationPool(spin, ["exit"], jobs=1) as pool:
        with pytest.raises(EmulationError, match="failed to start or died"):
            list(pool.imap([[A16, None]], outputs=[1]))


# ------------------------------------------------------------------ array arguments
@pytest.mark.parametrize("args,match", [
    ((np.array([-2.7] * 16), None),
     r"argument 0: expected a int32 array of 16 elements \(16,\), got float64 \(16,\)"),
    ((np.full(16, 1e10), None), r"argument 0: .*got float64"),
    ((A16, np.zeros(16, np.int64)), r"argument 1: expected a int32 .* got int64 \(16,\)"),
    ((A16, np.zeros(16, np.float32)), r"argument 1: .*got float32"),
    ((A16[:8], None), r"argument 0: .* got int32 \(8,\)"),
    ((np.arange(32, dtype=np.int32)[::2], None), r"argument 0: .*not C-contiguous"),
    ((list(range(16)), None), r"argument 0: expected a numpy int32 .*got list"),
    ((A16, np.zeros(16, np.int32), 1), r"takes 2 arguments, got 3"),
])
def test_wrong_arrays_are_refused_not_cast(spin, args, match):
    d = load_design(spin, ["ok"])
    with pytest.raises(DesignError, match=match):
        d.run(*args)
    off = EmulatedOffload(spin, ["ok"])
    with pytest.raises(DesignError, match=match):
        off.run(list(args), outputs=[1])


def test_arrays_are_used_in_place(spin):
    """The right arrays, any shape of the right size: the output is written into the
    caller's array; a read-only input is fine, a read-only output is refused."""
    d = load_design(spin, ["ok"])
    out = np.zeros((4, 4), np.int32)
    d.run(A16.reshape(2, 8), out)
    assert np.array_equal(out.reshape(-1), A16 + 1)
    ro = A16.copy()
    ro.flags.writeable = False
    out[:] = 0
    d.run(ro, out)
    assert np.array_equal(out.reshape(-1), A16 + 1)
    with pytest.raises(DesignError, match="argument 1 .* read-only"):
        d.run(A16, ro)


def test_scalar_arguments_are_not_truncated(kernels):
    d = load_design(design_path("rtp_barrier.py"))
    a = np.arange(64, dtype=np.int32)
    assert np.array_equal(d.run(a, None, np.int16(3))[0], a * 3)
    with pytest.raises(DesignError, match=r"argument 2: expected an integer .* float 2\.7"):
        d.run(a, None, 2.7)
    with pytest.raises(DesignError, match=r"argument 2: 4294967296 is out of range"):
        d.run(a, None, 2**32)


# ------------------------------------------------------------------ design files
@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_text("import numpy\nimport no_such_module_xyz\n"),
     r"design .*bad\.py line 2: ModuleNotFoundError: No module named 'no_such_module_xyz'$"),
    (lambda p: p.mkdir(), r"design file .*bad\.py' is a directory"),
    (lambda p: None, r"design file .*bad\.py' not found"),
    (lambda p: p.write_text("def f(:\n"), r"design .*bad\.py line 1: SyntaxError"),
    (lambda p: p.write_text("x = 1\nraise RuntimeError('a\\nb')\n"),
     r"design .*bad\.py line 2: RuntimeError: a$"),
])
def test_design_file_that_cannot_load_gives_one_line(tmp_path, make, match):
    p = tmp_path / "bad.py"
    make(p)
    with pytest.raises(DesignError, match=match) as e:
        load_design(str(p))
    assert "\n" not in str(e.value)
    with pytest.raises(DesignError, match=match):
        run_design(str(p))
    r = subprocess.run([sys.executable, "-m", "common.emu", str(p)], capture_output=True,
                       text=True, env=_env(), timeout=60)
    lines = r.stderr.splitlines()
    assert r.returncode == 1 and len(lines) == 1 and str(p) in lines[0], r.stderr
