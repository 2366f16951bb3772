"""HCDC on the cross-validation task (appendix K): per-fold S_val calibrated on fold hypergradients."""

from __future__ import annotations

import pytest
import torch

from condensers._hcdc_cv import (CV_TEST_PARAMS, FoldedSplit, cv_settings, fold_hypergradients, initial_val,
                                 weighted_train_loss, weighted_val_loss)
from condensers.hcdc import HCDC
from harness.data import load_task
from harness.errors import ConfigError
from harness.hypergradient import calibration_step
from harness.spaces.cv_folds import CVFoldsSpace, fold_of
from harness.testing import tiny_context

TINY_CV = {"base": "digits", "base_params": {"train_size": 60, "val_size": 20, "test_size": 30}}


def _first_per_class(task, n: int) -> torch.Tensor:
    """The positions of the first ``n`` images of every class (equal folds for any M dividing ``n``)."""
    return torch.cat([torch.nonzero(task.train.y == c, as_tuple=True)[0][:n] for c in range(task.num_classes)])


def test_relaxed_losses_are_the_discrete_fold_losses_at_a_one_hot_weight():
    logits, y, folds = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 2, 0, 1, 2])
    w = torch.tensor([0.0, 1.0, 0.0])
    losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert torch.isclose(weighted_val_loss(logits, y, folds, w), losses[folds == 1].mean())
    assert torch.isclose(weighted_train_loss(logits, y, folds, w), losses[folds != 1].sum() / 6)


def test_hcdc_dispatches_cv_tasks_and_returns_per_fold_proxies():
    task = load_task("cv", **TINY_CV)
    messages = []
    ctx = tiny_context()
    ctx.progress = messages.append
    proxy = HCDC(cv=CV_TEST_PARAMS).condense(task, 4, ctx)
    assert [m.split(":")[0] for m in messages] == ["hcdc repeat 1/1 trajectory 1/2", "hcdc repeat 1/1 trajectory 2/2"]
    for split in (proxy.train, proxy.val):
        assert split.x.shape == (40, 1, 8, 8) and torch.bincount(split.y, minlength=10).tolist() == [4] * 10
        assert torch.bincount(fold_of(split.y, 2)).tolist() == [20, 20]
    assert not torch.equal(proxy.train.x, proxy.val.x)
    assert proxy.meta["trajectories_done"] == 2 and len(proxy.meta["alignment_curve"]) == 2
    with pytest.raises(ConfigError, match="cv.folds is 3"):
        HCDC(cv={**CV_TEST_PARAMS, "folds": 3}).condense(task, 4, tiny_context())
    with pytest.raises(ConfigError, match="unknown cv settings"):
        cv_settings({"fold": 2})


def test_initial_val_takes_real_images_of_the_same_fold_and_class():
    task = load_task("cv", **TINY_CV)
    p = cv_settings({**CV_TEST_PARAMS, "folds": 2})
    s_train = task.train.subset(_first_per_class(task, 4))
    val = initial_val(p, s_train, task.train, 10, torch.Generator().manual_seed(0))
    pool_folds, val_folds = fold_of(task.train.y, 2), fold_of(val.y, 2)
    for image, label, fold in zip(val.x, val.y, val_folds):
        match = (task.train.x == image).flatten(1).all(1)
        assert bool((match & (task.train.y == label) & (pool_folds == fold)).any())


def test_calibration_lowers_the_hypergradient_cosine_distance():
    # With M = 2 a softmax hypergradient has one degree of freedom (its entries sum to 0), so the
    # cosine is ±1; four folds leave three directions to align.
    torch.manual_seed(0)
    task = load_task("cv", **TINY_CV)
    p = cv_settings({**CV_TEST_PARAMS, "folds": 4, "batch_real": 80, "neumann_terms": 3})
    space = CVFoldsSpace(folds=4, width=4, depth=1, image_size=8, in_channels=1, num_classes=10)
    net = space.build("fold:0")
    first = task.train.subset(_first_per_class(task, 4))
    s_train = FoldedSplit(first.x, first.y, 4)
    start = initial_val(p, first, task.train, 10, torch.Generator().manual_seed(1))
    s_val = FoldedSplit(start.x.clone().requires_grad_(True), start.y, 4)
    pool = FoldedSplit(task.train.x, task.train.y, 4)
    lam = torch.tensor([1.0, -1.0, 0.5, 0.0])
    optimizer = torch.optim.SGD([s_val.x], lr=1.0)
    distances = []
    for _ in range(15):  # θ and λ fixed, the same real batches every time: only S_val moves
        h_t, h_s = fold_hypergradients(p, net, net, lam, s_train, s_val, pool, torch.Generator().manual_seed(2))
        distance, _ = calibration_step(h_t, h_s, s_val.x, optimizer, lam, 1e-9)
        distances.append(distance)
    assert distances[-1] < 0.25 * distances[0], distances
