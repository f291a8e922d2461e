"""eegcrp.parallel: local workers end with the main process that started them."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from eegcrp.parallel import _ProcessId, _stat_fields, _Tied

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="reads process states from /proc (Linux)")

#: A parallel run of two tasks that each loop for 60 s and only then write a marker file.
SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from types import SimpleNamespace

    from eegcrp.parallel import parallel_map

    OUT = Path(sys.argv[1])

    def task(i, threads):
        (OUT / f"started-{os.getpid()}").write_text(str(i))
        end = time.monotonic() + 60
        while time.monotonic() < end:
            time.sleep(0.01)
        (OUT / f"marker-{i}").write_text("done")
        return i

    if __name__ == "__main__":
        settings = SimpleNamespace(n_jobs=2, backend=sys.argv[2], dask_address=None,
                                   threads=1, device="cpu")
        for _ in parallel_map(task, [(0,), (1,)], settings, n_tasks=2):
            pass
""")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def _live(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _descendants(root: int) -> set[int]:
    """Every live process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _kill_and_time(tmp_path: Path, backend: str) -> float:
    """Start the script, SIGKILL its main process once both tasks run; the seconds until
    no process it started is alive (asserted to be under 5)."""
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(tmp_path / "log.txt", "wb")  # closed in finally
    proc = subprocess.Popen([sys.executable, str(script), str(out), backend], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    started: set[int] = set()
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(started) < 2:
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()
            assert time.monotonic() < deadline, "the tasks did not start"
            time.sleep(0.05)
            started = {int(p.name.split("-")[1]) for p in out.glob("started-*")}
        workers = _descendants(proc.pid)
        assert started <= workers
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        # the main process stays a zombie until reaped: the watchdog must see through it
        while any(_live(pid) for pid in workers) and time.monotonic() - killed < 5:
            time.sleep(0.02)
        elapsed = time.monotonic() - killed
        alive = sorted(pid for pid in workers if _live(pid))
        assert not alive, f"still running 5 s after the kill: {alive} (tasks: {started})"
        assert not list(out.glob("marker-*"))
        return elapsed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()
        for pid in workers:  # only what this test started, and only on failure
            if _live(pid):
                os.kill(pid, signal.SIGKILL)


def test_killed_loky_run_leaves_no_live_worker(tmp_path):
    _kill_and_time(tmp_path, "loky")  # measured 0.2 s: the watchdog polls every 0.1 s


def test_killed_dask_run_leaves_no_live_worker(tmp_path):
    pytest.importorskip("dask.distributed")
    _kill_and_time(tmp_path, "dask")  # measured 0.04 s


# --------------------------------------------------------------------------- units
def _twice(x: int, threads: int | None) -> int:
    return 2 * x


def test_tied_task_is_picklable_and_computes_the_same():
    tied = pickle.loads(pickle.dumps(_Tied(_twice, _ProcessId.current())))
    assert tied(3, 1) == 6  # in the main process itself: no watchdog
    assert tied.__name__ == "_twice"


def test_process_id_sees_a_zombie_and_a_reaped_process_as_gone():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = _stat_fields(proc.pid)[19]
        pid = _ProcessId(proc.pid, start, _ProcessId.current().host)
        assert pid.alive()
        assert not _ProcessId(proc.pid, "0", pid.host).alive()  # same pid, other start
        proc.kill()
        while _stat(proc.pid)[0] != "Z":
            time.sleep(0.01)
        assert not pid.alive()  # zombie, not yet reaped
    finally:
        proc.kill()
        proc.wait()
    assert not pid.alive()


def test_loky_results_are_unchanged():
    from types import SimpleNamespace

    from eegcrp.parallel import parallel_map

    settings = SimpleNamespace(n_jobs=2, backend="loky", dask_address=None, threads=1,
                               device="cpu")
    out = parallel_map(_twice, [(i,) for i in range(6)], settings, n_tasks=6)
    assert sorted(out) == [0, 2, 4, 6, 8, 10]
