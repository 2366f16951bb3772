"""The checks every HCDC variant (image, graph, cross-validation) applies to its settings.

Each variant declares which keys are integers (with their minimum), positive numbers,
non-negative numbers and choices; :func:`check_settings` enforces them and the rules all
variants share (a valid Neumann series, a train source that is another condenser, its
parameters a mapping), naming every offending key as the user wrote it (``graph.epochs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.hypergradient import check_neumann


@dataclass(frozen=True)
class SettingsRules:
    """What an HCDC variant's settings must satisfy.

    Attributes:
        prefix: how keys are named in messages: ``""`` (image), ``"graph."``, ``"cv."``.
        ints: integer keys and their minimum.
        positive: keys that must be numbers > 0.
        non_negative: keys that must be numbers >= 0.
        choices: keys that must take one of the listed values.
        example_source: a train source to suggest when ``train_source`` is invalid.
    """

    prefix: str
    ints: dict[str, int]
    positive: tuple[str, ...]
    non_negative: tuple[str, ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    example_source: str = "dc"


def merged_settings(section: str, defaults: dict[str, Any], params: Any) -> dict[str, Any]:
    """``defaults`` overridden by the mapping ``params`` of the ``section`` (``graph``, ``cv``).

    Raises:
        ConfigError: ``params`` is not a mapping or holds a key ``defaults`` lacks.
    """
    if not isinstance(params, dict):
        raise ConfigError(f"hcdc: {section} must be a mapping of {section} settings, got {params!r}")
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(f"hcdc: unknown {section} settings {unknown}; known: {sorted(defaults)}")
    return {**defaults, **params}


def check_settings(p: dict[str, Any], rules: SettingsRules) -> None:
    """Raise ``ConfigError`` naming the first setting of ``p`` that breaks ``rules``."""
    name = f"hcdc: {rules.prefix}"
    for key, minimum in rules.ints.items():
        if not _is_number(p[key], int) or p[key] < minimum:
            raise ConfigError(f"{name}{key} must be an integer >= {minimum}, got {p[key]!r}")
    for key in rules.positive:
        if not _is_number(p[key]) or not p[key] > 0:
            raise ConfigError(f"{name}{key} must be a positive number, got {p[key]!r}")
    for key in rules.non_negative:
        if not _is_number(p[key]) or p[key] < 0:
            raise ConfigError(f"{name}{key} must be a number >= 0, got {p[key]!r}")
    for key, choices in rules.choices.items():
        if p[key] not in choices:
            raise ConfigError(f"{name}{key} must be one of {list(choices)}, got {p[key]!r}")
    try:
        check_neumann(p["neumann_terms"], p["neumann_alpha"])
    except ConfigError as exc:
        section = rules.prefix.rstrip(".")
        raise ConfigError(f"hcdc: {section + ' ' if section else ''}settings: {exc}") from None
    if not isinstance(p["train_source"], str) or p["train_source"] == "hcdc":
        raise ConfigError(f"{name}train_source must name another condenser (e.g. {rules.example_source!r}), "
                          f"got {p['train_source']!r}")
    if not isinstance(p["train_source_params"], dict):
        raise ConfigError(f"{name}train_source_params must be a mapping of the train source's parameters, "
                          f"got {p['train_source_params']!r}")


def _is_number(value: Any, kind: type | tuple[type, ...] = (int, float)) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)
