"""What counts as an integer or a number in a user's parameters.

Python's ``bool`` is an ``int``, so ``isinstance(True, int)`` holds; a YAML ``true`` written
where a count or a rate was meant must still be refused. Every parameter check asks these.
"""

from __future__ import annotations

from typing import Any


def is_int(value: Any) -> bool:
    """Whether ``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is an ``int`` or a ``float`` and not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
