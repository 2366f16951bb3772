"""Tests of the ``hcdc`` condenser (Algorithm 1 over the NAS-Bench-201 supernet)."""

from __future__ import annotations

import pytest
import torch

import condensers.random_selection  # noqa: F401  (registers the "random" train source)
from condensers.hcdc import HCDC
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task
from harness.types import ProxyData

TINY = HCDC.test_params


def rows_of(images: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each image, whether it equals some image of ``pool``."""
    return (images.flatten(1)[:, None] == pool.flatten(1)[None]).all(-1).any(-1)


@pytest.fixture(scope="module")
def task():
    return tiny_image_task()


def test_hcdc_conforms():
    check_condenser(HCDC(**TINY))


def test_train_split_is_the_sources_and_val_is_learned_with_the_sources_sizes(task):
    ctx = tiny_context(seed=1)
    proxy = HCDC(**TINY).condense(task, 6, ctx)
    source = ctx.proxy_from("random", {}, task, 6)
    assert torch.equal(proxy.train.x, source.train.x) and torch.equal(proxy.train.y, source.train.y)
    assert torch.equal(torch.bincount(proxy.val.y), torch.bincount(source.val.y))
    assert not rows_of(proxy.val.x, task.val.x).any(), "S_val still holds untouched real images"


@pytest.mark.parametrize("relaxation", ["gumbel", "softmax"])
def test_every_trajectory_moves_lambda_away_from_its_one_hot_start(task, relaxation):
    proxy = HCDC(**{**TINY, "relaxation": relaxation, "repeats": 2}).condense(task, 4, tiny_context())
    assert proxy.meta["trajectories_done"] == 2 * TINY["trajectories"]
    assert len(proxy.meta["lambda_shift"]) == 2 * TINY["trajectories"]
    assert all(shift > 0 for shift in proxy.meta["lambda_shift"]), proxy.meta["lambda_shift"]
    assert all(0 <= d <= 2 for d in proxy.meta["alignment_curve"]), proxy.meta["alignment_curve"]


def test_a_zero_budget_returns_the_initial_real_val_images(task):
    proxy = HCDC(**TINY).condense(task, 4, tiny_context(budget_seconds=0.0))
    assert proxy.meta["stopped_by_budget"] and proxy.meta["trajectories_done"] == 0
    assert rows_of(proxy.val.x, task.val.x).all()


def test_noise_initialization_and_shared_weights_run(task):
    proxy = HCDC(**{**TINY, "val_init": "noise", "real_weights": "shared"}).condense(task, 4, tiny_context())
    assert torch.isfinite(proxy.val.x).all() and not rows_of(proxy.val.x, task.val.x).any()


def test_the_train_source_time_is_charged_once(task):
    ctx = tiny_context()
    source = ctx.proxy_from("random", {}, task, 4)
    requests = []

    def cached_upstream(name, params, ipc):
        requests.append((name, params, ipc))
        return ProxyData(source.train, source.val, {"condense_seconds": 100.0})

    ctx.upstream = cached_upstream
    proxy = HCDC(**{**TINY, "train_source_params": {}}).condense(task, 4, ctx)
    assert requests == [("random", {}, 4)]
    assert 99.0 < proxy.meta["upstream_seconds"] <= 100.0
    assert proxy.meta["train_source_seconds"] == 100.0


def test_trajectories_start_at_candidate_seed_samples_whatever_the_cell_seed(task):
    fixed = [HCDC(**{**TINY, "candidate_seed": 7, "epochs": 1}).condense(task, 4, tiny_context(seed)).meta
             for seed in (0, 1)]
    assert fixed[0]["trajectory_starts"] == fixed[1]["trajectory_starts"]
    assert len(fixed[0]["trajectory_starts"]) == TINY["trajectories"]
    derived = [HCDC(**{**TINY, "epochs": 1}).condense(task, 4, tiny_context(seed)).meta for seed in (0, 1)]
    assert derived[0]["trajectory_starts"] != derived[1]["trajectory_starts"]


@pytest.mark.parametrize("params, message", [
    ({"relaxation": "weights"}, "relaxation must be one of"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"neumann_alpha": 0}, "Neumann step alpha"),
    ({"train_source": "hcdc"}, "another condenser"),
    ({"val_init": "zeros"}, "val_init must be one of"),
    ({"candidate_seed": -1}, "candidate_seed"),
    ({"weight_decay": -1e-4}, "hcdc: weight_decay must be a number >= 0"),
    ({"momentum": True}, "hcdc: momentum must be a number >= 0"),
])
def test_bad_parameters_are_rejected_with_the_rule(params, message):
    with pytest.raises(ConfigError, match=message):
        HCDC(**params)


def test_ipc_is_required(task):
    with pytest.raises(ConfigError, match="needs ipc"):
        HCDC(**TINY).condense(task, None, tiny_context())
