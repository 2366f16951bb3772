"""Tests of the ``tm`` condenser (matching training trajectories) and its expert trajectories."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import condensers._experts as experts
from condensers._experts import ExpertRecipe, data_fingerprint, expert_net, train_expert
from condensers._matching import random_convnet
from condensers.tm import TM, trajectory_loss, unflatten
from harness.cache import Cache
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task

SMALL = TM.test_params
RECIPE = ExpertRecipe(width=8, depth=2, epochs=3, lr=0.05, batch_size=16, strategy="none")


def flat(net: torch.nn.Module) -> torch.Tensor:
    """``net``'s parameters as one detached ``P`` vector."""
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach()


def test_unflatten_inverts_parameters_to_vector():
    net = random_convnet(tiny_image_task(), 8, 2, 0, torch.device("cpu"))
    views = unflatten(net, flat(net))
    assert all(torch.equal(views[name], p) for name, p in net.named_parameters())


def test_trajectory_loss_equals_a_manual_sgd_unroll():
    task = tiny_image_task()
    net = random_convnet(task, 8, 2, 0, torch.device("cpu"))
    start, target = flat(net), flat(random_convnet(task, 8, 2, 1, torch.device("cpu")))
    images, labels = task.train.x[:12], task.train.y[:12]
    loss = trajectory_loss(net, start, target, images, labels, torch.tensor(0.1), 3, 6,
                           torch.Generator().manual_seed(0), None)

    # Two batches of a first permutation, then the first batch of a second one.
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randperm(12, generator=generator), torch.randperm(12, generator=generator)
    student = copy.deepcopy(net)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    for batch in (first[:6], first[6:], second[:6]):
        optimizer.zero_grad()
        F.cross_entropy(student(images[batch]), labels[batch]).backward()
        optimizer.step()
    expected = (flat(student) - target).pow(2).sum() / (start - target).pow(2).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_trajectory_loss_is_one_for_a_still_student_and_reaches_images_and_lr():
    task = tiny_image_task()
    net = random_convnet(task, 8, 2, 0, torch.device("cpu"))
    start, target = flat(net), flat(random_convnet(task, 8, 2, 1, torch.device("cpu")))
    images = task.train.x[:12].clone().requires_grad_(True)
    lr = torch.tensor(0.0, requires_grad=True)
    loss = trajectory_loss(net, start, target, images, task.train.y[:12], lr, 2, 12, torch.Generator(), None)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert lr.grad.abs() > 0
    lr = torch.tensor(0.05, requires_grad=True)
    trajectory_loss(net, start, target, images, task.train.y[:12], lr, 2, 12, torch.Generator(), None).backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_expert_trajectory_starts_at_its_initialization_and_learns():
    task = tiny_image_task()
    trajectory = train_expert(task, RECIPE, 0, torch.device("cpu"))
    net = expert_net(task, RECIPE, 0, torch.device("cpu"))
    assert trajectory.shape == (RECIPE.epochs + 1, flat(net).numel()) and trajectory.dtype == torch.float32
    assert torch.equal(trajectory[0], flat(net))
    start_loss = F.cross_entropy(net(task.train.x), task.train.y)
    torch.nn.utils.vector_to_parameters(trajectory[-1], net.parameters())
    assert F.cross_entropy(net(task.train.x), task.train.y) < start_loss


def test_data_fingerprint_depends_on_the_content():
    task = tiny_image_task()
    same = copy.deepcopy(task.train)
    assert data_fingerprint(task.train) == data_fingerprint(same)
    same.x[0, 0, 0, 0] += 1
    assert data_fingerprint(task.train) != data_fingerprint(same)


def test_conforms():
    check_condenser(TM(**SMALL))


def test_a_second_run_reuses_the_cached_experts(tmp_path, monkeypatch):
    trainings = []
    original = experts.train_expert
    monkeypatch.setattr(experts, "train_expert", lambda *args: trainings.append(args[2]) or original(*args))
    task = tiny_image_task()

    def run(seed: int = 0, ipc: int = 4, cache: bool = True, **params):
        context = tiny_context(seed)
        context.cache = Cache(tmp_path) if cache else None
        return TM(**{**SMALL, **params}).condense(task, ipc, context)

    first = run()
    assert sorted(trainings) == [0, 1] and (first.meta["experts_trained"], first.meta["experts_cached"]) == (2, 0)
    second = run()
    assert len(trainings) == 2 and (second.meta["experts_trained"], second.meta["experts_cached"]) == (0, 2)
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.val.x, second.val.x)
    # Other seeds, ipcs and synthesis settings share the experts; a new expert recipe does not.
    assert run(seed=1, ipc=6, syn_steps=3, lr_img=5.0).meta["experts_trained"] == 0 and len(trainings) == 2
    assert run(expert_train_epochs=3).meta["experts_trained"] == 2 and len(trainings) == 4
    # Without a cache the experts are trained in memory, with the same result.
    uncached = run(cache=False)
    assert uncached.meta["experts_trained"] == 2 and torch.equal(uncached.train.x, first.train.x)


def test_synthesis_lowers_the_loss_on_a_fixed_expert_segment():
    params = {**SMALL, "experts": 1, "max_start_epoch": 1, "strategy": "none", "iterations": 25, "lr_img": 100.0}
    proxy = TM(**params).condense(tiny_image_task(), 4, tiny_context())
    curve = proxy.meta["loss_curve"]
    assert curve[-1] < 0.9 * curve[0] and proxy.meta["syn_lr"] > 0


def test_budget_stops_the_loop_after_the_experts():
    proxy = TM(**{**SMALL, "iterations": 100}).condense(tiny_image_task(), 4, tiny_context(budget_seconds=0.0))
    assert proxy.meta["iterations"] == 0 and proxy.meta["stopped_by_budget"] and proxy.meta["experts_trained"] == 2


def test_reference_defaults_and_bad_parameters():
    assert (TM.defaults["syn_steps"], TM.defaults["expert_epochs"], TM.defaults["max_start_epoch"]) == (30, 2, 20)
    with pytest.raises(ConfigError, match="expert_train_epochs"):
        TM(max_start_epoch=10, expert_epochs=3, expert_train_epochs=11)
    TM(max_start_epoch=10, expert_epochs=3, expert_train_epochs=12)
    with pytest.raises(ConfigError, match="batch_syn"):
        TM(batch_syn=0)
    with pytest.raises(ConfigError, match="strategy"):
        TM(strategy="blur")
