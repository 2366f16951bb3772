"""``early_stopping``: the whole data trained for only ``c/n`` of the epochs (HCDC's appendix J-K baseline)."""

from __future__ import annotations

from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.registry import register_condenser
from harness.types import ProxyData, RunContext, Task


@register_condenser("early_stopping")
class EarlyStopping(Condenser):
    """The task's own train and val splits, trained for ``max(1, round(E · c / n))`` epochs.

    Ding et al., appendix J: "for the Early-Stopping method, we only train the same number of
    iterations as the other methods (with the same batchsize), which means there are only
    c/n · 500 epochs" (500: their protocol's epochs). Here ``c = K · ipc`` (the size of a proxy at
    this ratio), ``n = |train|`` and ``E`` the task protocol's epochs; the proxy keeps every image
    and records the shortened training in ``meta["epochs"]``, which grid search honours when its
    own ``epochs`` parameter is unset. ``meta`` also keeps ``ratio`` (``c / n``).
    """

    modalities = ("image",)
    cv_pools = "accept"

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Return the task's splits with the epochs of a proxy of ``ipc`` images per class.

        Raises:
            ConfigError: ``ipc`` missing.
        """
        if ipc is None:
            raise ConfigError("early_stopping needs ipc (the ratio c/n it mimics); set ipc in the sweep config")
        ratio = ipc * task.num_classes / len(task.train)
        epochs = max(1, round(ctx.protocol.epochs * ratio))
        return ProxyData(train=task.train, val=task.val,
                         meta={"ipc": ipc, "ratio": ratio, "epochs": epochs,
                               "val_is_train": bool(task.meta.get("val_is_train", False))})
