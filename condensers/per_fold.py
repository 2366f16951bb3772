"""``per_fold``: condense each fold of a cross-validation independently (HCDC's appendix J).

Ding et al., "Calibrated Dataset Condensation for Faster Hyperparameter Search", appendix J:
for the M-fold cross-validation of Table 7, "for the baseline methods (Random, SDC-GM,
SDC-DM), the dataset condensation is performed independently for each split". The proxy is
then a miniature of the pool on which the same cross-validation runs: the fold rule of
:mod:`harness.spaces.cv_folds` finds each fold's condensed images again.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import torch

from condensers._matching import check_positive_int
from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.registry import CONDENSERS, register_condenser
from harness.seeding import derive_seed
from harness.spaces.cv_folds import fold_of, interleave_folds
from harness.types import ProxyData, RunContext, Split, Task


@register_condenser("per_fold")
class PerFold(Condenser):
    """Any image condenser (``inner`` with ``inner_params``) applied to each of ``folds`` folds.

    Fold ``j`` of the task's train split (by the fold rule: the ``k``-th image of a class is in
    fold ``k mod folds``) becomes a sub-task whose train and val splits are that fold (the test
    split is the task's); ``inner`` condenses it at ``ipc / folds`` images per class, under a seed
    derived from the cell seed and ``j`` and ``1 / folds`` of any time budget. Every image it
    returns (its proxy train and val together: ``ipc / folds`` per class) belongs to fold ``j``;
    the folds are interleaved per class (:func:`harness.spaces.cv_folds.interleave_folds`) so
    that the proxy's ``k``-th image of class ``c`` comes from fold ``k mod folds``.

    ``ipc`` counts the whole proxy per class and must be a multiple of ``folds`` (equal folds
    keep the cross-validation balanced; the remainder is not distributed). The proxy is one
    pool: ``train`` and ``val`` are the same ``(K·ipc)×C×H×W`` images, so the ``cv_folds``
    space trains candidate ``fold:i`` on the other folds and validates it on fold ``i`` (meta
    ``val_is_train: True`` says so). ``meta`` also records ``folds``, ``ipc_per_fold``, the
    inner condenser, the seconds of each fold (``fold_seconds``) and each fold's scalar meta.
    """

    modalities = ("image",)
    depends_on = ("harness.spaces.cv_folds",)
    cv_pools = "require"
    defaults: ClassVar[dict[str, Any]] = {"inner": "random", "inner_params": {}, "folds": 20}
    test_params: ClassVar[dict[str, Any]] = {"inner": "random", "inner_params": {}, "folds": 2}
    test_task: ClassVar[dict[str, Any] | None] = {
        "name": "cv", "params": {"base": "digits", "base_params": {"train_size": 40, "val_size": 20, "test_size": 20}}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        check_positive_int(self.name, "folds", p["folds"], minimum=2)
        if not isinstance(p["inner"], str) or p["inner"] == self.name:
            raise ConfigError(f"per_fold: inner must name another image condenser (e.g. 'dm'), got {p['inner']!r}")
        if not isinstance(p["inner_params"], dict):
            raise ConfigError(f"per_fold: inner_params must be a mapping of {p['inner']!r}'s parameters, "
                              f"got {p['inner_params']!r}")
        CONDENSERS.get(p["inner"])  # an unknown name fails here with the registry's list and suggestion

    def describe(self) -> dict[str, Any]:
        """Name and parameters, plus the inner condenser's source hash: its code shapes the output
        too, so editing it invalidates this proxy in the cache."""
        return {**super().describe(), "inner_source": CONDENSERS.get(self.params["inner"]).source_hash()}

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Condense every fold with the inner condenser and interleave the results.

        Raises:
            ConfigError: ``ipc`` missing or not a multiple of ``folds``, or the inner condenser
                cannot condense a fold (its own message).
        """
        folds = self.params["folds"]
        if ipc is None or ipc % folds:
            raise ConfigError(f"per_fold needs ipc (images per class of the whole proxy) divisible by folds={folds}, "
                              f"got {ipc!r}; e.g. ipc: [{2 * folds}]")
        inner = CONDENSERS.create(self.params["inner"], **self.params["inner_params"])
        fold = fold_of(task.train.y, folds)
        parts, seconds, metas = [], [], []
        for j in range(folds):
            part = task.train.subset(torch.nonzero(fold == j, as_tuple=True)[0])
            sub = Task(name=task.name, modality=task.modality, num_classes=task.num_classes, train=part, val=part,
                       test=task.test, meta={**task.meta, "fold": j})
            sub_ctx = dataclasses.replace(
                ctx, seed=derive_seed(ctx.seed, self.name, j), upstream=None,
                budget_seconds=None if ctx.budget_seconds is None else ctx.budget_seconds / folds)
            start = time.perf_counter()
            proxy = inner.condense(sub, ipc // folds, sub_ctx)
            seconds.append(time.perf_counter() - start)
            parts.append(Split(torch.cat([proxy.train.x, proxy.val.x]).detach(),
                               torch.cat([proxy.train.y, proxy.val.y])))
            metas.append({k: v for k, v in proxy.meta.items() if isinstance(v, (int, float, str, bool))})
        pool = interleave_folds(parts, task.num_classes)
        meta = {"ipc": ipc, "folds": folds, "ipc_per_fold": ipc // folds, "inner": self.params["inner"],
                "val_is_train": True, "fold_seconds": seconds, "fold_meta": metas}
        return ProxyData(train=pool, val=pool, meta=meta)
