"""Checks and a ``repr`` shared by the search spaces, whose ``__init__`` only stores parameters."""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ``ConfigError`` unless the space parameter ``name`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"space parameter {name} must be an integer >= {minimum}, got {value!r}")


def check_dropout(value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is a dropout probability in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"space parameter dropout must be a number in [0, 1), got {value!r}")


class SpaceRepr:
    """``Name(param=value, ...)`` from the space's ``describe()``."""

    def describe(self) -> dict[str, Any]:  # pragma: no cover - every space defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"{type(self).__name__}({params})"
