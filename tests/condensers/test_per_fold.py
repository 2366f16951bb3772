"""``per_fold``: each fold condensed on its own data, the folds interleaved so the fold rule finds them."""

from __future__ import annotations

import pytest
import torch

from condensers.per_fold import PerFold
from harness.data import load_task
from harness.errors import ConfigError, PluginNotFoundError
from harness.plugin import Condenser
from harness.registry import CONDENSERS, register_condenser
from harness.spaces.cv_folds import fold_of
from harness.testing import check_condenser, tiny_context, tiny_image_task
from harness.types import ProxyData

TINY_CV = {"base": "digits", "base_params": {"train_size": 60, "val_size": 30, "test_size": 30}}


@register_condenser("fold_recorder")
class _FoldRecorder(Condenser):
    """Records the train split it is given; returns the first ``ipc`` images of each class of it (test only)."""

    modalities = ("image",)
    calls: list = []

    def condense(self, task, ipc, ctx):
        type(self).calls.append(task.train)
        index = torch.cat([torch.nonzero(task.train.y == c, as_tuple=True)[0][:ipc] for c in range(task.num_classes)])
        half = len(index) // 2
        return ProxyData(train=task.train.subset(index[:half]), val=task.train.subset(index[half:]))


def test_each_fold_is_condensed_from_its_own_images_and_stays_in_its_fold():
    task = load_task("cv", **TINY_CV)
    _FoldRecorder.calls.clear()
    proxy = PerFold(inner="fold_recorder", folds=3).condense(task, 6, tiny_context())
    folds = fold_of(task.train.y, 3)
    assert len(_FoldRecorder.calls) == 3
    for j, given in enumerate(_FoldRecorder.calls):
        assert torch.equal(given.x, task.train.x[folds == j])  # fold j's data only
    assert proxy.val is proxy.train and proxy.meta["val_is_train"] and proxy.meta["ipc_per_fold"] == 2
    assert torch.bincount(proxy.train.y, minlength=10).tolist() == [6] * 10
    pool_folds = fold_of(proxy.train.y, 3)
    for j in range(3):
        mine = proxy.train.x[pool_folds == j]
        real = task.train.x[folds == j]
        # every image the proxy puts in fold j is an image of fold j of the real pool
        assert all((real == image).flatten(1).all(1).any() for image in mine)


def test_per_fold_conforms_and_checks_its_parameters():
    check_condenser(PerFold(**PerFold.test_params))
    with pytest.raises(PluginNotFoundError, match="dmm"):
        PerFold(inner="dmm")
    with pytest.raises(ConfigError, match="folds"):
        PerFold(folds=1)
    with pytest.raises(ConfigError, match="divisible by folds=3"):
        PerFold(folds=3).condense(load_task("cv", **TINY_CV), 4, tiny_context())
    assert PerFold(inner="dc").describe()["inner_source"] == CONDENSERS.get("dc").source_hash()


def test_per_fold_refuses_a_task_that_is_not_a_cross_validation_pool():
    reason = PerFold().unsupported_reason(tiny_image_task())
    assert reason is not None and "cross-validation" in reason
    assert PerFold().unsupported_reason(load_task("cv", **TINY_CV)) is None


def test_condensers_that_split_their_proxy_refuse_a_pool_and_name_the_wrapper():
    pool = load_task("cv", **TINY_CV)
    reason = CONDENSERS.create("dc").unsupported_reason(pool)
    assert reason is not None and "per_fold" in reason
    for name in ("original", "early_stopping", "hcdc", "per_fold"):
        assert CONDENSERS.create(name).unsupported_reason(pool) is None, name
