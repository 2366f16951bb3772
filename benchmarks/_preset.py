"""What the speed benchmarks share: a preset's task, space and candidates, ready to train."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import SweepConfig, load_config
from harness.data import load_task
from harness.spaces import get_space
from harness.types import Task


@dataclass
class Preset:
    """A preset sweep's config with its task loaded, its space built and its candidates sampled."""

    config: SweepConfig
    task: Task
    space: object
    candidates: list[str]


def load_preset(name: str) -> Preset:
    """Load preset ``name`` (or a config path) the way a sweep does."""
    config = load_config(name)
    task = load_task(config.task["name"], **config.task["params"])
    space = get_space(config.space["name"], **config.space["params"], in_channels=task.in_channels,
                      num_classes=task.num_classes)
    candidates = (list(config.candidates) if isinstance(config.candidates, list) else
                  space.sample(config.candidates, config.sample_seed, config.drop_disconnected,
                               config.drop_isomorphs))
    return Preset(config, task, space, candidates)
