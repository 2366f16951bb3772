"""Tests of the ``gdas`` search algorithm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.errors import ConfigError
from harness.spaces import NasBench201Space
from harness.spaces.nasbench201 import EDGES, OPS, format_arch, parse_arch
from harness.testing import check_search_algo, tiny_context
from harness.types import ProxyData, Split
from search_algos import _supernet_training
from search_algos.gdas import GDAS
from tests._planted_supernet import NUM_CLASSES, PlantedSupernet

CANDIDATES = NasBench201Space().sample(8, seed=0)
TARGET = CANDIDATES[3]


class LabelSupernet(PlantedSupernet):
    """A stand-in supernet with a known best architecture.

    The input is the one-hot label; the true class's logit is ``4 · q(w)`` with
    ``q(w) = mean_e w[e, TARGET_e]`` (the mixing weight on the planted ops), the others are a
    shared learnable bias. The cross-entropy therefore falls exactly as the mixing weights move
    onto ``TARGET``, whatever the relaxation, and GDAS must end with λ's argmax at ``TARGET``.
    """

    target = TARGET
    taus: list[float] = []

    def forward(self, x, alphas=None, relaxation="softmax", tau=1.0, generator=None):
        type(self).taus.append(tau)
        return 4.0 * self.planted_share(alphas, relaxation, tau, generator) * x.flatten(1) + self.bias


def label_images(n: int) -> Split:
    y = torch.arange(n) % NUM_CLASSES
    return Split(nn.functional.one_hot(y, NUM_CLASSES).float().reshape(n, 1, 1, NUM_CLASSES), y)


@pytest.fixture
def planted(monkeypatch) -> ProxyData:
    monkeypatch.setattr(_supernet_training, "NasBench201Supernet", LabelSupernet)
    LabelSupernet.taus = []
    return ProxyData(train=label_images(32), val=label_images(32))


def test_conforms():
    result = check_search_algo(GDAS(epochs=3))
    assert len(result.trace) == 3
    assert len(result.meta["alphas"]) == len(EDGES)


def test_finds_the_planted_architecture(planted):
    result = GDAS(epochs=30, arch_lr=0.05).search(None, CANDIDATES, planted, tiny_context())
    assert result.selected == TARGET
    assert max(result.scores) == result.scores[CANDIDATES.index(TARGET)]
    assert "own_choice" not in result.meta
    assert result.trace[-1][1] == TARGET


def test_restricts_the_choice_to_the_candidates(planted):
    # Without TARGET among the candidates, the candidate sharing 5 of its 6 ops scores best.
    ops = list(parse_arch(TARGET))
    ops[0] = OPS[(OPS.index(ops[0]) + 1) % len(OPS)]
    neighbour = format_arch(ops)
    candidates = [c for c in CANDIDATES if c != TARGET] + [neighbour]
    result = GDAS(epochs=30, arch_lr=0.05).search(None, candidates, planted, tiny_context())
    assert result.selected == neighbour
    assert result.meta["own_choice"] == TARGET


def test_temperature_falls_linearly_from_tau_max_to_tau_min(planted):
    GDAS(epochs=5).search(None, CANDIDATES, planted, tiny_context())
    taus = sorted(set(LabelSupernet.taus), reverse=True)
    assert taus == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])


def test_deterministic_under_a_seed_and_seed_dependent(planted):
    runs = [GDAS(epochs=4).search(None, CANDIDATES, planted, tiny_context(seed)).scores for seed in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_zero_budget_still_scores_every_candidate(planted):
    result = GDAS(epochs=50).search(None, CANDIDATES, planted, tiny_context(budget_seconds=0.0))
    assert result.meta["completed"] is False
    assert len(result.scores) == len(CANDIDATES) and all(math.isfinite(s) for s in result.scores)
    assert LabelSupernet.taus == []


def test_rejects_a_bad_temperature_schedule():
    with pytest.raises(ConfigError, match="tau_min"):
        GDAS(tau_min=1.0, tau_max=0.5).search(None, CANDIDATES, ProxyData(label_images(4), label_images(4)),
                                              tiny_context())
