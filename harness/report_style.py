"""Conventions shared by the report's tables and figures: how rows are read and named.

Private to :mod:`harness.report`. Three things live here so that every table and figure
agrees on them:

- **Reading rows.** :func:`prepare` coerces the numeric columns; :func:`aggregate` turns
  the rows of one (task, condenser, ipc, search algorithm) group — one per seed — into a
  :class:`Stat`: mean and population std (``ddof=0``, so one seed reads ``± 0``) of a
  column over the ``ok`` seeds that have a value, and counts of failed and skipped seeds
  with the first error.
- **Naming and order.** Condensers are grouped as in the paper's Table 1 — coresets,
  standard condensation, HCDC — with third-party condensers under "Other" (never
  dropped) and ``original`` last as the reference; a wrapping condenser (``per_fold``)
  is named and placed after the condenser it wraps. Known plugins, tasks and search
  algorithms get the paper's spelling (``kcenter`` -> "K-Center").
- **Look.** One matplotlib style: Okabe & Ito's (2008) colour-blind-safe palette for
  categories, viridis for ranks, and per-condenser colour + marker pairs, identical in
  every figure.

A task is a *cross-validation* task (the paper's Table 7, appendix K) when its search
space's name contains ``fold`` (e.g. ``cv_folds``: the M folds are the candidates).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd
from cycler import cycler

ORIGINAL = "original"
GRID = "grid"
OK, FAILED, SKIPPED = "ok", "failed", "skipped"
GROUP_KEYS = ["task", "condenser", "ipc", "search_algo"]
WRAPPED = "/"  # "per_fold/dc": the wrapper per_fold over dc (see report_condenser)
NUMERIC = ["ipc", "seed", "spearman", "kendall", "spearman_same_seed", "topk", "topk_overlap",
           "noise_ceiling_spearman", "noise_ceiling_kendall", "perf", "optimal_perf", "regret",
           "condense_seconds", "search_seconds", "total_seconds", "speedup", "n_candidates"]
GroupKey = tuple[str, str, int | None, str]  # (task, condenser, ipc, search_algo)
ERROR_CHARS = 160  # an error note keeps the first line, cut to this many characters

CONDENSER_GROUPS = (
    ("Coresets", ("random", "kcenter", "herding")),
    ("Standard condensation", ("dc", "dsa", "dm", "kip", "tm", "gcond", "gcond_x")),
    ("HCDC", ("hcdc",)),
)
OTHER_GROUP = "Other"
REFERENCE_GROUP = "Reference"
NAMES = {
    "random": "Random", "kcenter": "K-Center", "herding": "Herding", "dc": "DC", "dsa": "DSA",
    "dm": "DM", "kip": "KIP", "tm": "TM", "gcond": "GCond", "gcond_x": "GCond-X", "hcdc": "HCDC",
    "original": "Original", "early_stopping": "Early-Stopping", "per_fold": "per fold",
    "grid": "Grid", "darts_pt": "DARTS-PT", "reinforce": "REINFORCE",
    "gdas": "GDAS", "graphnas": "GraphNAS", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
    "digits": "Digits", "cora": "Cora", "citeseer": "Citeseer", "pubmed": "PubMed",
    "ogbn-arxiv": "Ogbn-arxiv", "reddit": "Reddit",
}

# Okabe & Ito (2008), ordered so that yellow (low contrast on white) comes late.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
RANK_CMAP = "viridis"  # perceptually uniform and colour-blind safe; light = better rank
MISSING_COLOUR = "#BBBBBB"
STYLE = {
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}


@dataclass(frozen=True)
class Stat:
    """One column over the seeds of one group: ``mean ± std`` and what went wrong.

    ``n`` counts the values used (ok seeds with a finite value); ``ok``, ``failed`` and
    ``skipped`` count seeds by status; ``error`` is the first failed (else skipped) seed's
    error, ``"seed s: first line"``.
    """

    mean: float
    std: float
    n: int
    ok: int
    failed: int
    skipped: int
    error: str | None

    @property
    def troubled(self) -> bool:
        """Whether some seed of the group did not finish."""
        return bool(self.failed or self.skipped)


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with numeric columns coerced (bad values become NaN), ``ipc`` as ``Int64`` and each
    wrapping condenser named after what it wraps (:func:`report_condenser`)."""
    frame = frame.assign(**{name: pd.to_numeric(frame[name], errors="coerce") for name in NUMERIC})
    if "condenser_params" in frame:
        frame = frame.assign(condenser=[report_condenser(name, params) for name, params
                                        in zip(frame["condenser"], frame["condenser_params"])])
    return frame.astype({"ipc": "Int64"})


def report_condenser(name: str, params_json: Any) -> str:
    """``"<name>/<inner>"`` for a condenser that wraps another (its parameters name an ``inner``
    condenser, e.g. ``per_fold`` over ``dc``), so that wrappers of different condensers are
    reported apart; ``name`` otherwise."""
    try:
        inner = json.loads(params_json).get("inner") if isinstance(params_json, str) else None
    except (ValueError, AttributeError):
        inner = None
    return f"{name}{WRAPPED}{inner}" if isinstance(inner, str) else name


def aggregate(rows: pd.DataFrame, column: str) -> Stat:
    """``column`` over the seeds in ``rows`` (mean, population std) with the failure counts."""
    ok = rows[rows["status"] == OK]
    values = ok[column].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    troubled = rows[rows["status"].isin([FAILED, SKIPPED])]
    troubled = troubled.sort_values(["status", "seed"], key=_failed_first, kind="stable")
    return Stat(
        mean=float(values.mean()) if values.size else math.nan,
        std=float(values.std(ddof=0)) if values.size else math.nan,
        n=int(values.size),
        ok=len(ok),
        failed=int((rows["status"] == FAILED).sum()),
        skipped=int((rows["status"] == SKIPPED).sum()),
        error=first_error(troubled.iloc[0]) if len(troubled) else None,
    )


def seed_groups(frame: pd.DataFrame) -> dict[GroupKey, pd.DataFrame]:
    """The rows of each (task, condenser, ipc, search algorithm), one row per seed."""
    groups = {}
    for (task, condenser, ipc, algo), rows in frame.groupby(GROUP_KEYS, dropna=False, sort=False):
        groups[(task, condenser, None if missing(ipc) else int(ipc), algo)] = rows
    return groups


def _failed_first(column: pd.Series) -> pd.Series:
    return column.map({FAILED: 0, SKIPPED: 1}) if column.name == "status" else column


def first_error(row: pd.Series) -> str:
    """``"seed s: <first line of the error>"``, cut to :data:`ERROR_CHARS` characters."""
    error = row["error"] if isinstance(row["error"], str) else ""
    line = error.strip().splitlines()[0] if error.strip() else f"{row['status']}, no message"
    if len(line) > ERROR_CHARS:
        line = line[: ERROR_CHARS - 1] + "…"
    seed = "seed ?" if missing(row["seed"]) else f"seed {int(row['seed'])}"
    return f"{seed}: {line}"


def missing(value: Any) -> bool:
    """Whether a cell holds no value (None, NaN or pandas' NA)."""
    return value is None or bool(pd.isna(value))


def json_list(value: Any) -> list[Any] | None:
    """A per-candidate column (JSON text or a list) as a list; ``None`` when absent."""
    if isinstance(value, str):
        value = json.loads(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return list(value)


def floats(value: Any) -> np.ndarray | None:
    """A per-candidate numeric column as floats (``None`` entries become NaN)."""
    values = json_list(value)
    return None if values is None else np.array([math.nan if v is None else v for v in values], float)


def truth(row: pd.Series) -> np.ndarray | None:
    """The oracle's per-candidate quality the row was ranked against (higher is better)."""
    if row["rank_by"] == "val_loss":
        losses = floats(row["true_val_loss"])
        return None if losses is None else -losses
    return floats(row["true_val_acc"])


def trace_points(row: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """A row's trace as (seconds, test accuracy of the best so far), in time order.

    The accuracy is a trace entry's third element when it has one (the whole-data test
    accuracy the sweep records), else the candidate's ``true_test_acc``; entries with neither
    are dropped, and times are floored at 1 ms for log axes. ``None`` when no entry is left.
    """
    test_acc = floats(row["true_test_acc"])
    accuracy = dict(zip(json_list(row["candidates"]) or [], test_acc if test_acc is not None else []))
    points = []
    for entry in json_list(row["trace"]) or []:
        value = entry[2] if len(entry) > 2 and entry[2] is not None else accuracy.get(entry[1], math.nan)
        if np.isfinite(value):
            points.append((max(float(entry[0]), 1e-3), float(value)))
    if not points:
        return None
    times, values = np.array(sorted(points, key=lambda point: point[0])).T
    return times, values


def is_cross_validation(space: Any) -> bool:
    """Whether rows of this search space are Table 7's M-fold cross-validation task."""
    return isinstance(space, str) and "fold" in space.lower()


def display(name: Any) -> str:
    """The paper's spelling of a known plugin, task or search algorithm (a wrapper after what it
    wraps: ``per_fold/dc`` -> "DC (per fold)"); others unchanged."""
    wrapper, sep, inner = str(name).partition(WRAPPED)
    if sep:
        return f"{display(inner)} ({display(wrapper)})"
    return NAMES.get(str(name), str(name))


def condenser_group(name: str) -> str:
    """The Table 1 column group of a condenser ("Other" for unknown ones)."""
    if name == ORIGINAL:
        return REFERENCE_GROUP
    inner = name.partition(WRAPPED)[2] or name
    return next((group for group, names in CONDENSER_GROUPS if inner in names), OTHER_GROUP)


def condenser_order(names: Iterable[str]) -> list[str]:
    """Distinct condensers in the paper's order: groups, paper order, others by name, original last."""
    known = [name for _, group in CONDENSER_GROUPS for name in group]

    def key(name: str) -> tuple[int, int, str]:
        if name == ORIGINAL:
            return (2, 0, name)
        inner = name.partition(WRAPPED)[2] or name  # a wrapper sits with what it wraps
        return (0, known.index(inner), name) if inner in known else (1, 0, name)

    return sorted(set(names), key=key)


def algo_order(names: Iterable[str]) -> list[str]:
    """Distinct search algorithms, ``grid`` first, then by name."""
    return sorted(set(names), key=lambda name: (name != GRID, name))


def ipc_label(ipc: Any) -> str:
    """An ipc as text; ``original`` keeps every image, shown as ``full``."""
    return "full" if missing(ipc) else str(int(ipc))


def proxy_label(condenser: str, ipc: Any, with_ipc: bool) -> str:
    """A proxy's display name, e.g. ``DC`` or ``DC (10)`` when ipcs vary."""
    if with_ipc and not missing(ipc) and condenser != ORIGINAL:
        return f"{display(condenser)} ({int(ipc)})"
    return display(condenser)


def condenser_styles(condensers: Iterable[str]) -> dict[str, tuple[str, str]]:
    """A (colour, marker) pair per condenser; ``original`` is black circles.

    Six Okabe-Ito colours (yellow is too faint for lines, black is kept for ``original``)
    cycle with twelve markers, so no two condensers share a pair and lines stay
    distinguishable without colour.
    """
    styles = {}
    for index, name in enumerate(name for name in condenser_order(condensers) if name != ORIGINAL):
        styles[name] = (OKABE_ITO[index % 6], MARKERS[index % len(MARKERS)])
    styles[ORIGINAL] = ("#000000", "o")
    return styles
