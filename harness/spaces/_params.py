"""Checks, ``describe`` and ``repr`` shared by the search spaces, whose ``__init__`` only stores parameters."""

from __future__ import annotations

import inspect
from typing import Any

from harness._values import is_int, is_number
from harness.errors import ConfigError


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ``ConfigError`` unless the space parameter ``name`` is an integer ``>= minimum``."""
    if not is_int(value) or value < minimum:
        raise ConfigError(f"space parameter {name} must be an integer >= {minimum}, got {value!r}")


def check_int_list(name: str, values: Any) -> None:
    """Raise ``ConfigError`` unless the space parameter ``name`` is a non-empty list of distinct
    positive integers."""
    if (not isinstance(values, (list, tuple)) or not values or not all(is_int(v) and v >= 1 for v in values)
            or len(set(values)) != len(values)):
        raise ConfigError(f"space parameter {name} must be a non-empty list of distinct positive integers, "
                          f"got {values!r}")


def check_dropout(value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is a dropout probability in ``[0, 1)``."""
    if not is_number(value) or not 0 <= value < 1:
        raise ConfigError(f"space parameter dropout must be a number in [0, 1), got {value!r}")


class SpaceParams:
    """``describe()`` and ``Name(param=value, ...)`` from the constructor's parameters, each stored
    under its own name by ``__init__`` (scikit-learn's ``get_params`` convention)."""

    def describe(self) -> dict[str, Any]:
        """Return the parameters as a plain mapping (for cache keys)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"{type(self).__name__}({params})"
