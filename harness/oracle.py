"""Ground truth: every candidate trained on the original train split, over oracle seeds.

Each (candidate, seed) run is cached on its own, keyed by the task, the space, the
protocol, the candidate and the seed, so adding candidates or seeds trains only the new
ones. With a NAS-Bench-201 benchmark file the ground truth is read instead of trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from harness.batched_training import candidate_groups, group_size, train_runs
from harness.cache import Cache
from harness.metrics import noise_ceiling
from harness.types import SearchResult, Task, TrainProtocol

ORACLE_STAGE = "oracle"


@dataclass
class OracleTable:
    """Ground truth per seed and candidate (arrays of shape ``seeds × candidates``).

    Attributes:
        candidates: the architecture strings, in column order.
        seeds: the oracle seeds, in row order.
        val_acc, val_loss, test_acc: accuracies in %, mean cross-entropy.
        run_seconds: the training time of each run, as measured when first computed (NaN for
            a benchmark-file oracle, which trains nothing).
    """

    candidates: list[str]
    seeds: list[int]
    val_acc: np.ndarray
    val_loss: np.ndarray
    test_acc: np.ndarray
    run_seconds: np.ndarray

    def per_seed_truth(self, rank_by: str) -> np.ndarray:
        """What ranks candidates, per seed: accuracy, or negated loss (higher is better)."""
        if rank_by == "val_acc":
            return self.val_acc
        if rank_by == "val_loss":
            return -self.val_loss
        raise ValueError(f"rank_by must be 'val_acc' or 'val_loss', got {rank_by!r}")

    def truth(self, rank_by: str) -> np.ndarray:
        """The ground-truth ranking score: the mean over seeds of :meth:`per_seed_truth`."""
        return self.per_seed_truth(rank_by).mean(axis=0)

    def seed_truth(self, seed: int, rank_by: str) -> np.ndarray | None:
        """The ranking score of the oracle run with ``seed`` (``None`` if not an oracle seed)."""
        if seed not in self.seeds:
            return None
        return self.per_seed_truth(rank_by)[self.seeds.index(seed)]

    def noise_ceiling(self, rank_by: str, method: str = "spearman") -> float:
        """Mean correlation between independent oracle seeds (NaN with a single seed)."""
        return noise_ceiling(list(self.per_seed_truth(rank_by)), method)

    def grid_search(self, seed: int, rank_by: str) -> tuple[SearchResult, float] | None:
        """Grid search on the original data under ``seed``, read from the oracle run of that seed.

        Grid trains the candidates in the oracle's groups, with the oracle's seeds and protocol,
        so on the original data its scores and choice are the oracle's (a sweep test checks
        this). The trace's times and the returned search seconds are the runs' training times as
        measured when the oracle trained them. ``None`` when ``seed`` is not an oracle seed or the
        oracle trained nothing (a benchmark file): the search must then really run.
        """
        if seed not in self.seeds or np.isnan(self.run_seconds).any():
            return None
        row = self.seeds.index(seed)
        elapsed = np.cumsum(self.run_seconds[row])
        result = SearchResult.exhaustive(self.candidates, self.per_seed_truth(rank_by)[row].tolist(), elapsed.tolist(),
                                         meta={"proxy_val_acc": self.val_acc[row].tolist()})
        return result, float(elapsed[-1])


def oracle_run_spec(task_spec: dict[str, Any], space_spec: dict[str, Any], protocol: TrainProtocol,
                    arch: str, seed: int, group_size: int) -> dict[str, Any]:
    """The cache spec of one oracle training run.

    ``group_size`` (:func:`harness.batched_training.group_size`; 1: one at a time) is part of the
    key: batched and one-at-a-time training agree only to float tolerance, so a run cached by one
    trainer is not served to a sweep whose grid search trains with the other.
    """
    return {"task": task_spec, "space": space_spec, "protocol": protocol.as_dict(),
            "arch": arch, "seed": seed, "group_size": group_size}


def train_oracle_runs(task: Task, space: Any, protocol: TrainProtocol, runs: list[tuple[str, int]],
                      device: Any) -> dict[tuple[str, int], dict[str, float]]:
    """Train each ``(arch, seed)`` of ``runs`` on the task's train split and evaluate it on val and
    test, together when the space allows (:func:`harness.batched_training.train_runs`)."""
    return train_runs(space, runs, task.train, {"val": task.val, "test": task.test}, protocol, device)


def oracle_groups(candidates: list[str], seeds: list[int], missing: list[tuple[str, int]], space: Any,
                  task: Task, protocol: TrainProtocol, device: Any) -> list[list[tuple[str, int]]]:
    """The groups of runs to train so that every missing run is computed.

    For each seed, the candidates are cut into :func:`harness.batched_training.candidate_groups`
    (as grid search cuts them), and every group holding a missing run is trained whole: a run's
    numbers then never depend on what was cached, on ``--jobs`` or on resuming.
    """
    wanted = set(missing)
    size = group_size(space, task.train, protocol.batch_size, device)
    return [[(arch, seed) for arch in group] for seed in seeds for group in candidate_groups(candidates, size)
            if any((arch, seed) in wanted for arch in group)]


def build_oracle_table(candidates: list[str], seeds: list[int],
                       runs: dict[tuple[str, int], dict[str, float]]) -> OracleTable:
    """Assemble an :class:`OracleTable` from per-(arch, seed) run results."""

    def grid(key: str) -> np.ndarray:
        return np.array([[runs[arch, seed].get(key, math.nan) for arch in candidates] for seed in seeds])

    return OracleTable(list(candidates), list(seeds), grid("val_acc"), grid("val_loss"),
                       grid("test_acc"), grid("train_seconds"))


def compute_oracle(candidates: list[str], seeds: list[int], spec_of: Callable[[str, int], dict[str, Any]],
                   cache: Cache, run_missing: Callable[[list[tuple[str, int]]], dict]) -> OracleTable:
    """Load every cached (arch, seed) run, train the missing ones with ``run_missing``.

    Args:
        spec_of: the cache spec of a run, from ``(arch, seed)``.
        run_missing: trains the given runs (in parallel, storing each in the cache as it
            finishes) and returns their results keyed by ``(arch, seed)``.
    """
    runs: dict[tuple[str, int], dict[str, float]] = {}
    missing = []
    for seed in seeds:
        for arch in candidates:
            found, value = cache.load(ORACLE_STAGE, spec_of(arch, seed))
            if found:
                runs[arch, seed] = value
            else:
                missing.append((arch, seed))
    if missing:
        runs.update(run_missing(missing))
    return build_oracle_table(candidates, seeds, runs)


def benchmark_oracle(candidates: list[str], benchmark: dict[str, dict[str, float]]) -> OracleTable:
    """Ground truth read from a NAS-Bench-201 benchmark file (one pseudo-seed, no losses)."""
    runs = {(arch, 0): {"val_acc": benchmark[arch]["val_acc"], "test_acc": benchmark[arch]["test_acc"]}
            for arch in candidates}
    return build_oracle_table(candidates, [0], runs)
