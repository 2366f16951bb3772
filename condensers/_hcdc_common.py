"""What every HCDC variant (image, graph, cross-validation) shares around its own trajectory.

* Settings: each variant declares which keys are integers (with their minimum), positive
  numbers, non-negative numbers and choices; :func:`check_settings` enforces them and the rules
  all variants share (a valid Neumann series, a train source that is another condenser, its
  parameters a mapping), naming every offending key as the user wrote it (``graph.epochs``).
* Algorithm 1's outer loops: :func:`fetch_train_source` reads ``S_train`` through the sweep's
  cache, :func:`run_trajectories` runs ``repeats`` × the starting points under the deadline and
  records the alignment curve, and :func:`calibration_meta` is the proxy meta they all report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

import torch

from condensers._matching import check_non_negative_float, check_positive_float, check_positive_int
from harness.errors import ConfigError
from harness.hypergradient import check_neumann
from harness.types import Deadline, ProxyData, RunContext, Task

REAL_WEIGHTS: tuple[str, ...] = ("trained", "shared")
"""The ``real_weights`` choices: ``h_T`` at a copy of the network trained on real data alongside, or
at the proxy-trained network itself."""
VAL_MOMENTUM = 0.5
"""SGD momentum of the synthetic validation images, as in the gradient-matching reference
implementation."""

Start = TypeVar("Start")
Trajectory = Callable[[int, int, Start], tuple[list[float], torch.Tensor, torch.Tensor]]
"""``trajectory(repeat, index, start) -> (cosine distances, λ at the start, λ at the end)``."""


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
        check_positive_int("hcdc", rules.prefix + key, p[key], minimum)
    for key in rules.positive:
        check_positive_float("hcdc", rules.prefix + key, p[key])
    for key in rules.non_negative:
        check_non_negative_float("hcdc", rules.prefix + key, p[key])
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


def fetch_train_source(task: Task, ipc: int, ctx: RunContext, p: dict[str, Any]) -> tuple[ProxyData, float]:
    """``S_train``'s proxy from the train source (through the sweep's cache) and the seconds this took."""
    start = time.perf_counter()
    upstream = ctx.proxy_from(p["train_source"], p["train_source_params"], task, ipc)
    return upstream, time.perf_counter() - start


@dataclass
class Calibration:
    """What Algorithm 1's outer loops did: the mean cosine distance and the λ displacement of every
    finished trajectory, and whether the deadline stopped them."""

    curve: list[float] = field(default_factory=list)
    shifts: list[float] = field(default_factory=list)
    stopped: bool = False


def run_trajectories(starts: Sequence[Start], repeats: int, deadline: Deadline, trajectory: Trajectory,
                     progress: Callable[[str], None] | None = None) -> Calibration:
    """Run ``trajectory`` from every start, ``repeats`` times, until done or the deadline passes."""
    calibration = Calibration()
    for k in range(repeats):
        for i, start in enumerate(starts):
            if deadline.expired():
                calibration.stopped = True
                return calibration
            distances, lam_start, lam = trajectory(k, i, start)
            if distances:
                calibration.curve.append(sum(distances) / len(distances))
                calibration.shifts.append(float((lam - lam_start).norm()))
            if progress is not None:
                last = calibration.curve[-1] if calibration.curve else float("nan")
                progress(f"hcdc repeat {k + 1}/{repeats} trajectory {i + 1}/{len(starts)}: cosine distance {last:.4f}")
    return calibration


def calibration_meta(ipc: int, p: dict[str, Any], upstream: ProxyData, fetch_seconds: float, deadline: Deadline,
                     calibration: Calibration) -> dict[str, Any]:
    """The proxy meta every HCDC variant reports."""
    upstream_seconds = float(upstream.meta.get("condense_seconds", 0.0))
    return {
        "ipc": ipc, "train_source": p["train_source"],
        # What the train source cost beyond the time it took inside this call (zero when it was
        # computed here rather than read from the cache), so the sweep counts it once.
        "upstream_seconds": max(0.0, upstream_seconds - fetch_seconds),
        "train_source_seconds": upstream_seconds, "own_seconds": deadline.elapsed(),
        "trajectories_done": len(calibration.curve), "alignment_curve": calibration.curve,
        "lambda_shift": calibration.shifts, "stopped_by_budget": calibration.stopped,
    }
