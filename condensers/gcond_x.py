"""``gcond_x``: GCond-X, graph condensation of node features only (Jin et al., "Graph
Condensation for Graph Neural Networks", ICLR 2022, the variant without structure)."""

from __future__ import annotations

from typing import Any, ClassVar

from condensers._graph import GraphMatchingCondenser
from harness.registry import register_condenser


@register_condenser("gcond_x")
class GCondX(GraphMatchingCondenser):
    """Gradient matching of an SGC on synthetic node features whose adjacency is fixed to the
    identity (no edges; the self-loops of the normalization remain): the "GCond-X" column of
    HCDC's Table 2.

    Learns ``Σ_c (ipc + val_c)`` synthetic nodes ``X'`` (``n'×F``) minimizing
    ``Σ_c (n'_c / max n') D(∇_W L_SGC(real_c), ∇_W L_MLP(X'_c))`` with the loop of
    :class:`condensers._graph.GraphMatchingCondenser` (on the identity adjacency the SGC is a
    linear classifier of ``X'``), then splits them per class into proxy train / val nodes of one
    edgeless proxy graph.

    Defaults follow the GCond reference for Cora (``hops`` 2, ``outer_loop`` 20, ``inner_loop``
    15, Adam with ``lr_model`` 0.01) with fewer iterations than its 2000 epochs and a larger
    feature step (``lr_feat``) so that CPU runs move the features; presets shrink further.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "iterations": 200, "outer_loop": 20, "inner_loop": 15, "lr_feat": 0.01, "lr_model": 0.01,
        "hops": 2, "batch_real": 256,
    }
    test_params: ClassVar[dict[str, Any]] = {"iterations": 3, "outer_loop": 2, "inner_loop": 1}
