"""Run independent jobs in worker processes with joblib, bounding torch's threads per worker."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Iterable, Iterator

import torch
from joblib import Parallel, delayed


def threads_per_worker(n_jobs: int) -> int:
    """CPU threads each of ``n_jobs`` workers may use so they do not oversubscribe the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, n_jobs))


def _with_threads(function: Callable[..., Any], threads: int, *args: Any) -> Any:
    torch.set_num_threads(threads)
    return function(*args)


def run_jobs(function: Callable[..., Any], jobs: Iterable[tuple], n_jobs: int = 1,
             backend: str = "loky") -> Iterator[Any]:
    """Yield ``function(*job)`` for every job as each finishes (completion order).

    With ``n_jobs == 1`` the jobs run in this process, in order, with nothing pickled —
    the easiest mode to debug. Otherwise joblib runs them on ``backend`` workers.
    """
    jobs = list(jobs)
    if n_jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            yield function(*job)
        return
    threads = threads_per_worker(n_jobs)
    wrapped = functools.partial(_with_threads, function, threads)
    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
    yield from parallel(delayed(wrapped)(*job) for job in jobs)
