"""Architecture search spaces, resolved by name.

A space lists candidate architecture strings, samples them, tells equivalent ones
apart (:meth:`canonical`) and builds a ``torch.nn.Module`` for each. A space that only
makes sense on some tasks defines ``check_task(task)``, which raises ``ConfigError``
for the others; the sweep calls it before anything is trained.
"""

from __future__ import annotations

import inspect

from harness.errors import ConfigError, PluginNotFoundError, unknown_name_message
from harness.spaces.cv_folds import CVFoldsSpace
from harness.spaces.gnn_filters import GNNFilterSpace
from harness.spaces.graphnas import GraphNASSpace
from harness.spaces.nasbench201 import NasBench201Space
from harness.spaces.polynomial_filter import PolynomialFilterSpace

_SPACES: dict[str, type] = {"nasbench201": NasBench201Space, "gnn_filters": GNNFilterSpace,
                            "polynomial_filter": PolynomialFilterSpace, "graphnas": GraphNASSpace,
                            "cv_folds": CVFoldsSpace}


def list_spaces() -> list[str]:
    """Return the registered space names, sorted."""
    return sorted(_SPACES)


Space = NasBench201Space | GNNFilterSpace | PolynomialFilterSpace | GraphNASSpace | CVFoldsSpace
"""Any registered search space."""


def get_space(name: str, **params: object) -> Space:
    """Return the space registered as ``name``, constructed with ``params``.

    Raises:
        PluginNotFoundError: ``name`` is not registered (with a suggestion when one
            is close).
        ConfigError: a parameter is not accepted by that space.
    """
    if name not in _SPACES:
        raise PluginNotFoundError(unknown_name_message("space", name, list_spaces()))
    cls = _SPACES[name]
    accepted = list(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown parameters {unknown} for space {name!r}; accepted: {accepted}")
    return cls(**params)


__all__ = ["CVFoldsSpace", "GNNFilterSpace", "GraphNASSpace", "NasBench201Space", "PolynomialFilterSpace",
           "get_space", "list_spaces"]
