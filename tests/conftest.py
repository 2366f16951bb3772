"""Shared fixtures: small sweep configs on the bundled digits data, isolated result dirs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

TINY_SWEEP: dict[str, Any] = {
    "name": "tiny",
    "task": {"name": "digits", "params": {"train_size": 60, "val_size": 60, "test_size": 60}},
    "space": {"name": "nasbench201", "params": {"C": 4, "N": 1}, "candidates": 4},
    "protocol": {"epochs": 2, "batch_size": 32, "lr": 0.05},
    "oracle": {"seeds": [0, 1], "rank_by": "val_loss"},
    "condensers": ["original", {"name": "random", "ipc": [4]}],
    "search_algos": ["grid"],
    "seeds": [0],
    "topk": 2,
}


@pytest.fixture
def tiny_sweep() -> dict[str, Any]:
    """A sweep config small enough to run end to end in a few seconds."""
    return copy.deepcopy(TINY_SWEEP)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny networks gain nothing from threads; one avoids oversubscribing shared CI cores."""
    import torch

    torch.set_num_threads(1)
