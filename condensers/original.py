"""``original``: the identity proxy — the full train and val splits, for speed-ups and sanity."""

from __future__ import annotations

from harness.plugin import Condenser
from harness.registry import register_condenser
from harness.types import ProxyData, RunContext, Task


@register_condenser("original")
class Original(Condenser):
    """The whole data set as its own proxy: searching on it is the baseline every proxy's
    time and ranking are compared with."""

    modalities = ("image", "graph")
    uses_ipc = False
    cv_pools = "accept"

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Return the task's own train and val splits."""
        return ProxyData(train=task.train, val=task.val, meta={"ipc": None})
