import math

import pytest

from harness import metrics


def test_spearman_and_kendall_by_hand():
    a = [1, 2, 3, 4]
    b = [1, 3, 2, 4]
    # rank differences d = (0, 1, -1, 0): rho = 1 - 6*2 / (4*15) = 0.8
    assert metrics.spearman(a, b) == pytest.approx(0.8)
    # 6 pairs, one discordant: tau = (5 - 1) / 6
    assert metrics.kendall(a, b) == pytest.approx(4 / 6)
    assert metrics.spearman(a, [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_correlation_ignores_nan_pairs_and_is_nan_when_undefined():
    assert metrics.spearman([1, 2, math.nan, 3], [1, 2, 5, 3]) == pytest.approx(1.0)
    assert math.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(metrics.kendall([1], [2]))


def test_topk_overlap_by_hand():
    scores = [0.9, 0.8, 0.1, 0.7]
    truth = [10, 1, 9, 8]
    # proxy top-2 = {0, 1}; true top-2 = {0, 2}
    assert metrics.topk_overlap(scores, truth, 2) == 0.5
    assert metrics.topk_overlap(scores, truth, 4) == 1.0


def test_noise_ceiling_is_mean_pairwise_correlation():
    seeds = [[1, 2, 3, 4], [1, 3, 2, 4], [1, 2, 3, 4]]
    # pairs: (0,1)=0.8, (0,2)=1.0, (1,2)=0.8
    assert metrics.noise_ceiling(seeds) == pytest.approx((0.8 + 1.0 + 0.8) / 3)
    assert math.isnan(metrics.noise_ceiling([[1, 2, 3]]))


def test_argbest_skips_nan():
    assert metrics.argbest([math.nan, 0.2, 0.5, 0.5]) == 2
