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
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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
