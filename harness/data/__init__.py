"""The dataset registry: turn a dataset name and its parameters into a :class:`Task`.

>>> sorted(list_datasets())
['cifar10', 'cifar100', 'csbm', 'cv', 'digits', 'npz', 'ogbn-arxiv', 'planetoid']
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from harness.data.cifar import CIFAR10, CIFAR100, load_cifar
from harness.data.csbm import load_csbm
from harness.data.cv import load_cv
from harness.data.digits import load_digits
from harness.data.npz import load_npz
from harness.data.ogb_arxiv import load_ogbn_arxiv
from harness.data.planetoid import load_planetoid
from harness.errors import ConfigError, PluginNotFoundError, unknown_name_message
from harness.types import Task

__all__ = ["list_datasets", "load_task"]

_LOADERS: dict[str, Callable[..., Task]] = {
    "cifar10": functools.partial(load_cifar, CIFAR10),
    "cifar100": functools.partial(load_cifar, CIFAR100),
    "csbm": load_csbm,
    "cv": load_cv,
    "digits": load_digits,
    "npz": load_npz,
    "ogbn-arxiv": load_ogbn_arxiv,
    "planetoid": load_planetoid,
}


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted."""
    return sorted(_LOADERS)


def load_task(name: str, **params: Any) -> Task:
    """Load the dataset registered as ``name`` with the loader's keyword ``params``.

    Raises:
        PluginNotFoundError: ``name`` is not registered (the message suggests a close name).
        ConfigError: a parameter is unknown, missing or of the wrong kind.
        DataError: the data is missing, unreadable or malformed.
    """
    loader = _resolve(name)
    _check_params(name, loader, params)
    return loader(**params)


def _resolve(name: str) -> Callable[..., Task]:
    """The loader registered as ``name``, or ``PluginNotFoundError`` with a suggestion."""
    if name in _LOADERS:
        return _LOADERS[name]
    raise PluginNotFoundError(unknown_name_message("dataset", name, list_datasets()))


def _check_params(name: str, loader: Callable[..., Task], params: dict[str, Any]) -> None:
    """Raise ``ConfigError`` for parameters the loader does not accept or requires but lacks."""
    signature = inspect.signature(loader).parameters
    accepted = list(signature)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"dataset {name!r} does not accept parameter(s) {unknown}; accepted: {accepted}"
        )
    required = [p for p, spec in signature.items() if spec.default is inspect.Parameter.empty]
    missing = [p for p in required if p not in params]
    if missing:
        raise ConfigError(f"dataset {name!r} requires parameter(s) {missing}; accepted: {accepted}")
