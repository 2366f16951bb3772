"""Ranking and selection metrics of one cell against the oracle's ground truth."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
from scipy import stats


def _finite_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"cannot correlate sequences of lengths {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _correlation(method, a: Sequence[float], b: Sequence[float]) -> float:
    a, b = _finite_pairs(a, b)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(method(a, b).statistic)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation over the pairs where both values are finite (NaN if undefined)."""
    return _correlation(stats.spearmanr, a, b)


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b over the pairs where both values are finite (NaN if undefined)."""
    return _correlation(stats.kendalltau, a, b)


def topk_overlap(scores: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Fraction of the true top-``k`` candidates that are also in the proxy's top-``k``.

    Ties are broken by position, so the result is deterministic.
    """
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    truth = np.asarray(truth, dtype=float)
    k = min(k, len(truth))
    top_scores = set(np.argsort(-scores, kind="stable")[:k])
    top_truth = set(np.argsort(-truth, kind="stable")[:k])
    return len(top_scores & top_truth) / k


def noise_ceiling(per_seed_truth: Sequence[Sequence[float]], method: str = "spearman") -> float:
    """Mean correlation between every pair of independent oracle seeds (NaN with one seed).

    This is how well the ground truth agrees with itself: a proxy can hardly be expected to
    correlate better with it.
    """
    correlate = {"spearman": spearman, "kendall": kendall}[method]
    values = [correlate(a, b) for a, b in itertools.combinations(per_seed_truth, 2)]
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def argbest(values: Sequence[float]) -> int:
    """Index of the largest finite value (the first one on ties)."""
    values = np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)
    return int(np.argmax(values))
