"""Run independent jobs on a joblib backend: in-process, loky (default), dask or ray.

Every job runs with one torch thread, in a worker or in this process alike: on a CPU, the
floating-point results of training depend on the number of intra-op threads, so pinning it
makes a sweep's rows independent of ``--jobs`` and of the backend. Parallelism comes from
processes instead. With several GPUs, job ``i`` runs on GPU ``i mod count``. Before its
first job, a process freezes what it has loaded out of the garbage collector's way
(:mod:`harness._gc`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator

import torch
from joblib import Parallel, delayed, parallel_config

from harness._gc import freeze_loaded_objects
from harness.errors import ConfigError

THREADS_PER_JOB = 1
BACKENDS = ("loky", "dask", "ray")


def _run_pinned(function: Callable[..., Any], index: int, *args: Any) -> Any:
    freeze_loaded_objects()
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS_PER_JOB)
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(index % torch.cuda.device_count())
    try:
        return function(*args)
    finally:
        torch.set_num_threads(previous)


def run_jobs(function: Callable[..., Any], jobs: Iterable[tuple], n_jobs: int = 1) -> Iterator[Any]:
    """Yield ``function(*job)`` for every job as each finishes (completion order).

    With ``n_jobs == 1`` the jobs run in this process, in order, with nothing pickled —
    the easiest mode to debug. Otherwise they run on the backend made active by
    :func:`backend` (loky when none is).
    """
    jobs = list(jobs)
    if n_jobs == 1 or len(jobs) <= 1:
        for index, job in enumerate(jobs):
            yield _run_pinned(function, index, *job)
        return
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from parallel(delayed(_run_pinned)(function, index, *job) for index, job in enumerate(jobs))


@contextlib.contextmanager
def backend(name: str = "loky", n_jobs: int = 1, scheduler: str | None = None) -> Iterator[str]:
    """Make ``name`` the joblib backend of :func:`run_jobs` inside the ``with`` block.

    Args:
        name: ``"loky"`` (one machine), ``"dask"`` (a ``dask.distributed`` cluster: the one at
            ``scheduler``, e.g. ``tcp://10.0.0.5:8786``, or a local one of ``n_jobs``
            single-threaded worker processes) or ``"ray"`` (a running or local ray cluster).

    Yields:
        A description of the backend for the result rows (``"dask:tcp://..."``).
    """
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}")
    if name == "loky":
        with parallel_config(backend="loky"):
            yield "loky" if n_jobs > 1 else "sequential"
    elif name == "dask":
        with _dask_client(n_jobs, scheduler) as client, parallel_config(backend="dask"):
            yield f"dask:{client.scheduler.address}"
    else:
        try:
            from ray.util.joblib import register_ray
        except ImportError as exc:
            raise ConfigError("the ray backend needs ray: pip install 'ray[default]'") from exc
        register_ray()
        with parallel_config(backend="ray"):
            yield "ray"


@contextlib.contextmanager
def _dask_client(n_jobs: int, scheduler: str | None) -> Iterator[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError("the dask backend needs dask.distributed: pip install 'condnas[dask]'") from exc
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client
