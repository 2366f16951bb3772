"""Read ground-truth accuracies from a NAS-Bench-201 benchmark file.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020. The files (``NAS-Bench-201-v1_0-e61699.pth``,
``NAS-Bench-201-v1_1-096897.pth``) are ``torch.save``-d plain containers:

* ``meta_archs``: the arch strings, position = arch index;
* ``evaluated_indexes``: the indices that have results;
* ``arch2infos``: ``{index: {"less": results, "full": results}}`` where ``less`` is
  the 12-epoch and ``full`` the 200-epoch training schedule, and each ``results``
  holds ``all_results``: ``{(dataset, seed): trial}`` with each trial's
  ``eval_acc1es`` mapping ``"<eval set>@<epoch>"`` to a top-1 accuracy in percent.

This module reads that layout directly, without the ``nas_201_api`` package.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from harness.errors import ConfigError, DataError
from harness.spaces.nasbench201 import parse_arch

EVAL_SETS: dict[str, tuple[str | None, str]] = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": (None, "ori-test"),
    "cifar100": ("x-valid", "x-test"),
    "ImageNet16-120": ("x-valid", "x-test"),
}
"""Per dataset, the eval sets read as (validation, test); ``None``: not recorded."""

SCHEDULES: dict[int, str] = {12: "less", 200: "full"}
"""Training schedules (total epochs) and their key in ``arch2infos`` entries."""


def read_benchmark(
    path: str, dataset: str = "cifar10-valid", archs: list[str] | None = None, epochs: int = 200
) -> dict[str, dict]:
    """Return final validation and test accuracies per architecture, averaged over seeds.

    Args:
        path: a NAS-Bench-201 ``.pth`` benchmark file (loaded whole into memory).
        dataset: ``"cifar10-valid"`` (trained on CIFAR-10's train half), ``"cifar10"``
            (trained on train + valid), ``"cifar100"`` or ``"ImageNet16-120"``.
        archs: the arch strings to read; ``None`` reads every evaluated architecture.
        epochs: the training schedule, 200 (``full``) or 12 (``less``; in the v1_0
            file only for ``cifar10-valid``). Accuracies are taken after the last
            epoch, i.e. keys ``<set>@{epochs-1}``.

    Returns:
        ``{arch: {"valid_acc": float | None, "test_acc": float, "seeds": int}}`` with
        accuracies in percent, averaged over the ``seeds`` trials stored for
        ``dataset``. ``valid_acc`` reads ``x-valid``; ``test_acc`` reads ``ori-test``
        for ``cifar10-valid`` and ``cifar10`` and ``x-test`` for ``cifar100`` and
        ``ImageNet16-120``. For ``cifar10`` the validation images were trained on,
        so no validation accuracy exists and ``valid_acc`` is ``None``.

    Raises:
        ConfigError: unknown ``dataset`` or ``epochs``, or a malformed arch string.
        DataError: the file is missing, unreadable or not in the NAS-Bench-201
            layout, or lacks a requested architecture or result.
    """
    if dataset not in EVAL_SETS:
        raise ConfigError(
            f"unknown NAS-Bench-201 dataset {dataset!r}; choose from {list(EVAL_SETS)}"
        )
    if epochs not in SCHEDULES:
        raise ConfigError(
            f"NAS-Bench-201 has no {epochs}-epoch schedule; choose from {list(SCHEDULES)}"
        )
    if archs is not None:
        for arch in archs:
            parse_arch(arch)
    bench = _load(path)
    index_of = {arch: index for index, arch in enumerate(bench["meta_archs"])}
    if archs is None:
        wanted = [(bench["meta_archs"][i], i) for i in sorted(bench["evaluated_indexes"])]
    else:
        missing = [arch for arch in archs if arch not in index_of]
        if missing:
            raise DataError(f"{len(missing)} architectures are not in {path}, e.g. {missing[0]!r}")
        wanted = [(arch, index_of[arch]) for arch in archs]
    valid_set, test_set = EVAL_SETS[dataset]
    last = epochs - 1
    out: dict[str, dict] = {}
    for arch, index in wanted:
        if index not in bench["arch2infos"]:
            raise DataError(f"{path} has no results for architecture {index} {arch!r}")
        trials = _trials(bench["arch2infos"][index][SCHEDULES[epochs]], dataset, arch, path)
        valid = None if valid_set is None else _mean_acc(trials, f"{valid_set}@{last}", arch, path)
        out[arch] = {
            "valid_acc": valid,
            "test_acc": _mean_acc(trials, f"{test_set}@{last}", arch, path),
            "seeds": len(trials),
        }
    return out


def _load(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise DataError(
            f"NAS-Bench-201 benchmark file not found: {path} (download "
            "NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth)"
        )
    try:
        bench = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DataError(f"could not read NAS-Bench-201 benchmark file {path}: {exc}") from exc
    keys = ("meta_archs", "arch2infos", "evaluated_indexes")
    if not isinstance(bench, dict) or any(key not in bench for key in keys):
        raise DataError(
            f"{path} is not a NAS-Bench-201 benchmark file: expected a dict with keys {list(keys)}"
        )
    return bench


def _trials(results: dict[str, Any], dataset: str, arch: str, path: str) -> list[dict[str, Any]]:
    trials = [trial for (name, _seed), trial in results["all_results"].items() if name == dataset]
    if not trials:
        recorded = sorted({name for name, _seed in results["all_results"]})
        raise DataError(f"{path} has no {dataset!r} results for {arch!r}; it has {recorded}")
    return trials


def _mean_acc(trials: list[dict[str, Any]], key: str, arch: str, path: str) -> float:
    try:
        return float(np.mean([trial["eval_acc1es"][key] for trial in trials]))
    except KeyError as exc:
        raise DataError(f"{path} lacks accuracy {key!r} for {arch!r}") from exc
