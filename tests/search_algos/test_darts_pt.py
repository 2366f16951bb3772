"""Tests of the ``darts_pt`` search algorithm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import NasBench201Space
from harness.spaces.nasbench201 import EDGES
from harness.spaces.nasbench201_supernet import encode_arch
from harness.testing import check_search_algo, tiny_context
from harness.types import ProxyData, Split
from search_algos import _supernet_training
from search_algos.darts_pt import DartsPT
from tests._planted_supernet import NUM_CLASSES, PlantedSupernet

CANDIDATES = NasBench201Space().sample(8, seed=1)
TARGET = CANDIDATES[5]
assert "none" not in TARGET  # the real supernet never evaluates removing `none`: it adds nothing


class ThresholdSupernet(PlantedSupernet):
    """A stand-in supernet whose proxy val accuracy is an exactly known function of the weights.

    Each input carries a one-hot label and a threshold ``τ``; the true class's logit is
    ``10 · (q(w) − τ)`` with ``q(w) = mean_e w[e, TARGET_e]``, the others a shared learnable
    bias (≈ 0). A sample is classified correctly iff ``q(w) > τ``, so with thresholds spread
    evenly over [0, 1] the accuracy is ≈ ``q(w)``: zeroing ``TARGET``'s op on an edge lowers it
    by several samples, zeroing any other op leaves it unchanged. DARTS-PT, keeping the op
    whose removal hurts most, must therefore pick ``TARGET`` edge by edge.
    """

    target = TARGET

    def forward(self, x, alphas=None, relaxation="softmax", tau=1.0, generator=None):
        q = self.planted_share(alphas, relaxation, tau, generator)
        labels, thresholds = x[:, 0, 0, :NUM_CLASSES], x[:, 0, 0, NUM_CLASSES]
        return 10.0 * (q - thresholds)[:, None] * labels + self.bias


def threshold_images(n: int) -> Split:
    y = torch.arange(n) % NUM_CLASSES
    thresholds = (torch.arange(n) + 0.5) / n
    x = torch.cat([nn.functional.one_hot(y, NUM_CLASSES).float(), thresholds[:, None]], 1)
    return Split(x.reshape(n, 1, 1, NUM_CLASSES + 1), y)


@pytest.fixture
def planted(monkeypatch) -> ProxyData:
    monkeypatch.setattr(_supernet_training, "NasBench201Supernet", ThresholdSupernet)
    return ProxyData(train=threshold_images(40), val=threshold_images(200))


def test_conforms():
    result = check_search_algo(DartsPT(epochs=2, tune_epochs=1))
    assert result.meta["scoring"] == "perturbation"
    assert sorted(result.meta["edge_order"]) == list(range(len(EDGES)))
    assert len(result.meta["decided"]) == len(EDGES)


@pytest.mark.parametrize("criterion", ["acc", "loss"])
def test_perturbation_selects_the_planted_architecture(planted, criterion):
    result = DartsPT(epochs=2, tune_epochs=1, criterion=criterion).search(None, CANDIDATES, planted, tiny_context())
    assert result.selected == TARGET
    assert "own_choice" not in result.meta
    importance = torch.tensor(result.meta["importance"])
    target_ops = encode_arch(TARGET).bool()
    assert (importance[target_ops] > 0).all()
    assert (importance[~target_ops] == 0).all()


def test_fine_tunes_between_decisions_only(planted):
    # Trace: one entry per supernet epoch, per decision and per fine-tuning epoch (none after the last).
    result = DartsPT(epochs=3, tune_epochs=2).search(None, CANDIDATES, planted, tiny_context())
    assert len(result.trace) == 3 + len(EDGES) + 2 * (len(EDGES) - 1)
    times = [t for t, _ in result.trace]
    assert times == sorted(times)


def test_edge_order_is_seeded(planted):
    algo = DartsPT(epochs=0, tune_epochs=0)
    orders = [algo.search(None, CANDIDATES, planted, tiny_context(seed)).meta["edge_order"] for seed in (0, 0, 1, 2)]
    assert orders[0] == orders[1]
    assert len({tuple(o) for o in orders}) > 1


def test_zero_budget_falls_back_to_alpha_scores(planted):
    result = DartsPT(epochs=50).search(None, CANDIDATES, planted, tiny_context(budget_seconds=0.0))
    assert result.meta["scoring"] == "alpha"
    assert result.scores == result.meta["alpha_scores"]
    assert result.meta["undecided_edges"] == list(range(len(EDGES)))
    assert all(math.isfinite(s) for s in result.scores) and result.selected in CANDIDATES


def test_rejects_an_unknown_criterion():
    with pytest.raises(ConfigError, match="criterion"):
        DartsPT(criterion="entropy").search(None, CANDIDATES, ProxyData(threshold_images(4), threshold_images(4)),
                                             tiny_context())
