"""Tests of the ``reinforce`` search algorithm."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from harness.errors import ConfigError
from harness.spaces import NasBench201Space
from harness.testing import check_search_algo, tiny_context, tiny_image_task
from harness.types import ProxyData
from search_algos.reinforce import Reinforce

CANDIDATES = NasBench201Space().sample(10, seed=0)
TARGET = CANDIDATES[7]


@pytest.fixture
def proxy() -> ProxyData:
    task = tiny_image_task()
    return ProxyData(train=task.train, val=task.val)


class RewardTable:
    """A stand-in space whose training returns a fixed reward per candidate; records calls."""

    def __init__(self, rewards) -> None:
        self.rewards = rewards
        self.calls: list[str] = []

    def train_candidate(self, arch, train, evaluations, protocol, seed, device):
        self.calls.append(arch)
        return self.rewards(arch)


@pytest.fixture
def trained() -> RewardTable:
    """A reward table favouring ``TARGET``."""
    return RewardTable(lambda arch: {"val_acc": 90.0 if arch == TARGET else 50.0 + CANDIDATES.index(arch),
                                     "val_loss": 0.1 if arch == TARGET else 1.0})


def test_conforms():
    result = check_search_algo(Reinforce(evaluations=4))
    measured = [a for a in result.meta["proxy_val_acc"] if a is not None]
    assert 1 <= len(measured) == result.meta["evaluated"] <= 4
    assert len(result.trace) == 4


def test_policy_converges_to_the_best_rewarded_candidate(trained, proxy):
    result = Reinforce(evaluations=150, lr=0.02).search(trained, CANDIDATES, proxy, tiny_context())
    assert result.selected == TARGET
    assert max(result.scores) == result.scores[CANDIDATES.index(TARGET)]
    late = Counter(result.meta["sampled"][-30:])
    assert late[CANDIDATES.index(TARGET)] >= 25
    # Rewards are cached: each candidate is trained at most once.
    assert len(trained.calls) == len(set(trained.calls)) == result.meta["evaluated"]


def test_reward_follows_the_sweeps_ranking(proxy):
    space = RewardTable(lambda arch: {"val_acc": 50.0, "val_loss": 0.1 if arch == TARGET else 2.0})
    result = Reinforce(evaluations=150, lr=0.02).search(space, CANDIDATES, proxy, tiny_context(rank_by="val_loss"))
    assert result.selected == TARGET


def test_samples_only_candidates_and_records_their_accuracies(trained, proxy):
    result = Reinforce(evaluations=40).search(trained, CANDIDATES, proxy, tiny_context())
    assert set(trained.calls) <= set(CANDIDATES)
    for i, accuracy in enumerate(result.meta["proxy_val_acc"]):
        assert (accuracy is not None) == (CANDIDATES[i] in trained.calls)
    assert len(result.trace) == 40


def test_select_reward_returns_the_best_sampled_candidate(trained, proxy):
    result = Reinforce(evaluations=30, select="reward").search(trained, CANDIDATES, proxy, tiny_context())
    best = max((a for a in result.meta["proxy_val_acc"] if a is not None))
    assert result.meta["proxy_val_acc"][CANDIDATES.index(result.selected)] == best


def test_deterministic_under_a_seed(trained, proxy):
    runs = [Reinforce(evaluations=20).search(trained, CANDIDATES, proxy, tiny_context(seed)) for seed in (3, 3, 4)]
    assert runs[0].scores == runs[1].scores and runs[0].meta["sampled"] == runs[1].meta["sampled"]
    assert runs[0].meta["sampled"] != runs[2].meta["sampled"]


def test_budget_and_evaluation_limits(trained, proxy):
    result = Reinforce(evaluations=50).search(trained, CANDIDATES, proxy, tiny_context(budget_seconds=0.0))
    assert trained.calls == [] and result.trace == []
    assert len(result.scores) == len(CANDIDATES) and all(math.isfinite(s) for s in result.scores)
    assert len(Reinforce(evaluations=7).search(trained, CANDIDATES, proxy, tiny_context()).meta["sampled"]) == 7


def test_rejects_an_unknown_selection():
    with pytest.raises(ConfigError, match="select"):
        Reinforce(select="vote").search(None, CANDIDATES, None, tiny_context())
