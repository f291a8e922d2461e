"""Where a stage's independent tasks (folds, subjects) run: in process, loky, Dask or Ray.

Every stage with independent units of work (training folds, explained folds, ICA per
subject) calls :func:`parallel_map` with its config section's parallel settings
(:class:`eegcrp.config.ParallelSection`: ``n_jobs``, ``backend``, ``dask_address``,
``threads``, ``device``). Results are yielded as tasks finish, so a stage can record each
finished task at once (a killed run resumes from there).

Threads. Each task gets a number of torch/BLAS threads: ``threads`` when set, else the CPU
cores divided by the parallel workers. Workers x threads above the cores oversubscribes the
machine; with another busy process on a 2-core machine a 2-thread torch job was measured to
run about 14x slower (BENCHMARKS.md), so that case is logged as a warning.

CUDA. Several processes sharing one GPU gain nothing here and multiply its memory, so with
``device`` resolving to CUDA the local backends run tasks one after the other.

Lifetime. Local workers (loky, a local Dask cluster, Ray) die with the main process: each
task runs through :class:`_Tied`, which starts a watchdog thread in the worker that ends
the worker (``os._exit``) within :data:`WATCH_INTERVAL` seconds once the main process is
gone, so a killed run leaves nothing computing or writing results behind it. Workers of a
remote Dask scheduler (``dask_address``) are shared and long-lived and are left alone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import EEGCRPError

logger = logging.getLogger(__name__)

__all__ = ["ParallelPlan", "cpu_count", "dask_worker_threads", "parallel_map", "plan"]

T = TypeVar("T")


def cpu_count() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ParallelPlan:
    """How tasks will run.

    Attributes
    ----------
    backend : {'serial', 'loky', 'dask', 'ray'}
    workers : int
        Tasks running at once (on a remote Dask cluster: what the scheduler decides, 0).
    threads : int | None
        Threads per task; None = decided on the worker (remote Dask).
    """

    backend: str
    workers: int
    threads: int | None


def _is_cuda(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def plan(settings: Any, n_tasks: int) -> ParallelPlan:
    """The :class:`ParallelPlan` for ``n_tasks`` tasks under ``settings``.

    ``settings`` is a parallel config section (``n_jobs``, ``backend``, ``dask_address``,
    optional ``threads`` and ``device``).
    """
    cores = cpu_count()
    threads = getattr(settings, "threads", None)
    backend = settings.backend
    remote = backend == "dask" and settings.dask_address
    if remote:
        return ParallelPlan("dask", 0, threads)
    n_jobs = cores if settings.n_jobs == -1 else settings.n_jobs
    workers = max(1, min(n_jobs, n_tasks))
    if workers > 1 and backend in ("loky", "ray") and _is_cuda(getattr(settings, "device", "cpu")):
        logger.info("CUDA device: running the %d tasks one after the other", n_tasks)
        workers = 1
    if workers == 1:
        return ParallelPlan("serial", 1, threads or cores)
    threads = threads or max(1, cores // workers)
    if workers * threads > cores:
        logger.warning(
            "%d workers x %d threads exceed the %d CPU cores: expect a large slow-down "
            "(set n_jobs and threads so that their product is at most the cores)",
            workers, threads, cores,
        )
    return ParallelPlan(backend, workers, threads)


def parallel_map(
    func: Callable[..., T],
    tasks: Iterable[tuple[Any, ...]],
    settings: Any,
    *,
    n_tasks: int,
    scatter: Sequence[Any] = (),
    what: str = "tasks",
) -> Iterator[T]:
    """Call ``func(*task, threads)`` for every task and yield the results as they finish.

    Parameters
    ----------
    func : callable
        Picklable function; receives a task's arguments and then its thread count (None on
        a remote Dask worker: the function decides there).
    tasks : iterable of tuple
        Positional arguments of each call.
    settings : ParallelSection
        ``n_jobs``, ``backend``, ``dask_address``, ``threads``, ``device``.
    n_tasks : int
        Number of tasks (sizes the worker pool).
    scatter : sequence
        Large objects shared by every task (sent once to each Dask worker).
    what : str
        Name of the tasks for messages.

    Yields
    ------
    The results, in completion order (serially: task order).
    """
    if n_tasks == 0:
        return
    p = plan(settings, n_tasks)
    logger.info("%d %s: backend %s, %d worker(s) x %s thread(s)", n_tasks, what, p.backend,
                p.workers, p.threads if p.threads is not None else "auto")
    if p.backend == "serial":
        for task in tasks:
            yield func(*task, p.threads)
        return
    import joblib

    if p.workers > 0:  # local workers: they must not outlive this process
        func = _Tied(func, _ProcessId.current())
    calls = (joblib.delayed(func)(*task, p.threads) for task in tasks)
    ret = "generator_unordered"
    if p.backend == "loky":
        # loky restarts a worker whose memory grew by 300 MB since it started (a leak guard);
        # training keeps its peak heap on purpose (retain_freed_memory), so a restart after
        # a long fold is expected and loky's warning about it is noise here
        with warnings.catch_warnings(), joblib.parallel_config(
                backend="loky", inner_max_num_threads=p.threads):
            warnings.filterwarnings("ignore", message="A worker stopped while some jobs",
                                    category=UserWarning)
            yield from joblib.Parallel(n_jobs=p.workers, return_as=ret)(calls)
    elif p.backend == "dask":
        with _dask_client(settings, p.workers) as client:
            with joblib.parallel_config(backend="dask", client=client,
                                        scatter=list(scatter) or None):
                yield from joblib.Parallel(return_as=ret)(calls)
    else:
        try:
            from ray.util.joblib import register_ray
        except ImportError as exc:
            raise EEGCRPError(
                "backend 'ray' needs ray: pip install 'eegcrp[ray]', or use backend 'loky' or "
                "'dask'"
            ) from exc
        register_ray()
        with joblib.parallel_config(backend="ray"):
            yield from joblib.Parallel(n_jobs=p.workers, return_as=ret)(calls)


# --------------------------------------------------------------------------- worker lifetime
#: Seconds between two checks of a worker's watchdog that the main process still lives.
WATCH_INTERVAL = 0.1


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first), None if absent or unreadable."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    return text[text.rfind(")") + 2:].split()


@dataclass(frozen=True)
class _ProcessId:
    """A process, identified beyond its pid (pids are reused) and its machine.

    Attributes
    ----------
    pid : int
    start : str | None
        Start time in clock ticks since boot (``/proc/<pid>/stat`` field 22); None
        without ``/proc``.
    host : str
        Host name, boot id and pid namespace: a pid means this process only where all
        three match (not on another machine or in another container).
    """

    pid: int
    start: str | None
    host: str

    @classmethod
    def current(cls) -> _ProcessId:
        """This process."""
        pid = os.getpid()
        fields = _stat_fields(pid)
        return cls(pid, fields[19] if fields else None, _host())

    def alive(self) -> bool:
        """Whether the process still runs (a zombie, or its pid reused, counts as gone)."""
        fields = _stat_fields(self.pid)
        if fields is not None:
            return fields[0] not in ("Z", "X") and fields[19] == self.start
        if self.start is not None:  # it had a /proc entry: now gone
            return False
        try:  # no /proc (macOS): a signal 0 probe; a zombie is caught by the ppid check
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, another user's (pid reused)
            return False
        return True


@functools.lru_cache(maxsize=1)
def _host() -> str:
    """Host name, boot id and pid namespace of this process (see :class:`_ProcessId`)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return "|".join([socket.gethostname(), _read("/proc/sys/kernel/random/boot_id") or "",
                     namespace])


#: (main process, this process) pairs with a running watchdog (the pid: a forked child
#: inherits this set but not the thread)
_watched: set[tuple[_ProcessId, int]] = set()
_watch_lock = threading.Lock()


def _watch(main: _ProcessId) -> None:
    """Start (once per process and main process) a daemon thread that ends this process
    as soon as ``main`` is gone."""
    if main.pid == os.getpid() or main.host != _host():
        return  # in the main process itself, or on another machine: nothing to tie
    with _watch_lock:
        if (main, os.getpid()) in _watched:
            return
        _watched.add((main, os.getpid()))
    # Polling rather than prctl(PR_SET_PDEATHSIG): that signal follows the *thread* that
    # forked the worker (for loky sometimes its management thread, whose exit would kill
    # healthy workers), only covers the direct parent (a Dask worker's parent is its
    # nanny, the main process is its grandparent) and is Linux-only. A Python thread needs
    # the GIL, so a task inside one long C call holding it is ended when that call returns;
    # torch and numpy release the GIL in their heavy operations. (A local Dask cluster
    # also ends its nannies and workers through a pipe from the main process; this is the
    # same guarantee for loky and Ray.)
    child = os.getppid() == main.pid
    threading.Thread(target=_watchdog, args=(main, child), name="eegcrp-watchdog",
                     daemon=True).start()


def _watchdog(main: _ProcessId, child: bool) -> None:
    """Poll ``main`` every :data:`WATCH_INTERVAL` s; ``os._exit`` once it is gone."""
    while True:
        # a direct child is re-parented at once when its parent dies: also on macOS, where
        # the signal-0 probe cannot tell a zombie from a live process
        if (child and os.getppid() != main.pid) or not main.alive():
            # no cleanup, no further write: the run these results were for has ended
            os._exit(1)
        time.sleep(WATCH_INTERVAL)


class _Tied(Generic[T]):
    """``func`` run in a worker that ends when the main process ``main`` ends (picklable).

    Parameters
    ----------
    func : callable
        The task function (picklable).
    main : _ProcessId
        The process that submits the tasks.
    """

    def __init__(self, func: Callable[..., T], main: _ProcessId) -> None:
        self.func = func
        self.main = main
        self.__name__ = getattr(func, "__name__", type(func).__name__)  # for joblib's logs

    def __call__(self, *args: Any) -> T:
        _watch(self.main)
        return self.func(*args)


@contextlib.contextmanager
def _dask_client(settings: Any, workers: int) -> Iterator[Any]:
    """A client of the configured scheduler, or of a local cluster of ``workers`` processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise EEGCRPError(
            "backend 'dask' needs dask.distributed: pip install 'eegcrp[dask]', or use backend "
            "'loky'"
        ) from exc
    if settings.dask_address:
        logger.info("connecting to the dask scheduler at %s", settings.dask_address)
        with Client(settings.dask_address, set_as_default=False) as client:
            yield client
        return
    logger.info("starting a local dask cluster with %d worker process(es)", workers)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def dask_worker_threads() -> int:
    """Threads for a task on a Dask worker: the machine's cores shared by the worker's slots."""
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except Exception:  # not on a dask worker
        slots = 1
    return max(1, cpu_count() // max(1, slots))
