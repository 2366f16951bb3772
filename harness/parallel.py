"""Run independent jobs in worker processes with joblib.

Every job runs with one torch thread, in a worker or in this process alike: on a CPU, the
floating-point results of training depend on the number of intra-op threads, so pinning it
makes a sweep's rows independent of ``--jobs``. Parallelism comes from processes instead.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Iterator

import torch
from joblib import Parallel, delayed

THREADS_PER_JOB = 1


def _single_threaded(function: Callable[..., Any], *args: Any) -> Any:
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS_PER_JOB)
    try:
        return function(*args)
    finally:
        torch.set_num_threads(previous)


def run_jobs(function: Callable[..., Any], jobs: Iterable[tuple], n_jobs: int = 1,
             backend: str = "loky") -> Iterator[Any]:
    """Yield ``function(*job)`` for every job as each finishes (completion order).

    With ``n_jobs == 1`` the jobs run in this process, in order, with nothing pickled —
    the easiest mode to debug. Otherwise joblib runs them on ``backend`` workers.
    """
    jobs = list(jobs)
    wrapped = functools.partial(_single_threaded, function)
    if n_jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            yield wrapped(*job)
        return
    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
    yield from parallel(delayed(wrapped)(*job) for job in jobs)
