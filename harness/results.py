"""Result rows: one JSON file per cell, written atomically, merged into a table.

A sweep's directory looks like::

    results/<sweep>/
        config.yaml          the validated config the sweep ran
        rows/<cell_id>.json  one row per finished (or failed) cell
        runs.parquet         all rows merged (also runs.csv)
        report/              tables and figures written by ``condnas report``

Columns of a row (``ROW_COLUMNS``):

- identity: ``sweep``, ``cell_id``, ``status`` (``ok`` / ``failed`` / ``skipped``),
  ``error``, ``task``, ``space``, ``condenser``, ``condenser_params`` (JSON),
  ``ipc`` (``None`` for ``original``), ``search_algo``, ``search_params`` (JSON), ``seed``;
- ranking: ``n_candidates``, ``rank_by`` (``val_acc`` or ``val_loss``), ``spearman``,
  ``kendall``, ``spearman_same_seed`` (against the oracle run with the cell's own seed,
  when there is one), ``topk``, ``topk_overlap``, ``noise_ceiling_spearman``,
  ``noise_ceiling_kendall`` (the same correlations between independent oracle seeds);
- selection: ``selected``, ``perf`` (selected candidate's oracle test accuracy, %),
  ``optimal``, ``optimal_perf``, ``regret`` (``optimal_perf - perf``);
- time: ``condense_seconds``, ``search_seconds``, ``total_seconds``, ``speedup``
  (search seconds of the same algorithm and seed on ``original`` over this cell's);
- per candidate (JSON lists, candidates' order): ``candidates``, ``scores``,
  ``true_val_acc``, ``true_val_loss``, ``true_test_acc``, ``proxy_val_acc``
  (proxy validation accuracy where the algorithm measured one);
- search trace: ``trace`` (JSON list of ``[wall_seconds, best_so_far, test_acc]``, ``test_acc``
  the whole-data test accuracy of the best architecture so far, trained for the purpose when it
  is not a candidate, ``null`` when unknown) and ``own_choice`` (the algorithm's own discrete
  choice when it lies outside the candidates);
- provenance: ``backend``, ``workers``, ``device``, ``host``, ``config_hash``, ``git_commit``,
  ``versions`` (JSON), ``condenser_source`` / ``search_source`` (the plugins' source hashes).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.fileio import atomic_write_bytes, atomic_write_text

ROW_COLUMNS = [
    "sweep", "cell_id", "status", "error", "task", "space", "condenser", "condenser_params",
    "ipc", "search_algo", "search_params", "seed",
    "n_candidates", "rank_by", "spearman", "kendall", "spearman_same_seed", "topk",
    "topk_overlap", "noise_ceiling_spearman", "noise_ceiling_kendall",
    "selected", "perf", "optimal", "optimal_perf", "regret",
    "condense_seconds", "search_seconds", "total_seconds", "speedup",
    "candidates", "scores", "true_val_acc", "true_val_loss", "true_test_acc", "proxy_val_acc",
    "trace", "own_choice",
    "backend", "workers", "device", "host", "config_hash", "git_commit", "versions",
    "condenser_source", "search_source",
]


def write_row(results_dir: Path, row: dict[str, Any]) -> Path:
    """Write one cell's row to ``rows/<cell_id>.json`` atomically and return its path."""
    path = Path(results_dir) / "rows" / f"{row['cell_id']}.json"
    atomic_write_text(path, json.dumps(row, sort_keys=True, default=_jsonable))
    return path


def read_rows(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Return every readable row of a sweep, keyed by cell id.

    A row file that cannot be parsed (a crash mid-write by a foreign tool) is skipped,
    so its cell simply runs again.
    """
    rows = {}
    for path in sorted((Path(results_dir) / "rows").glob("*.json")):
        try:
            row = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        rows[row["cell_id"]] = row
    return rows


def merge_rows(results_dir: Path, keep: set[str] | None = None) -> pd.DataFrame:
    """Merge the row files into ``runs.parquet`` and ``runs.csv``; return the frame.

    ``keep`` restricts the merge to these cell ids: rows left by an earlier version of the
    sweep's config stay on disk but out of the table.

    ``speedup`` is filled here, since it compares rows: the search seconds of the same
    search algorithm, parameters and seed on the ``original`` proxy over this row's.
    """
    results_dir = Path(results_dir)
    rows = [row for cell_id, row in read_rows(results_dir).items() if keep is None or cell_id in keep]
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS) if rows else pd.DataFrame(columns=ROW_COLUMNS)
    frame = add_speedup(frame.sort_values("cell_id", kind="stable").reset_index(drop=True))
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    atomic_write_bytes(results_dir / "runs.parquet", parquet.getvalue())
    atomic_write_text(results_dir / "runs.csv", frame.to_csv(index=False))
    return frame


def add_speedup(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill ``speedup`` from the matching ``original`` rows (NaN where there is none)."""
    keys = ["task", "search_algo", "search_params", "seed"]
    ok = frame[(frame["status"] == "ok") & (frame["condenser"] == "original")]
    reference = ok.set_index(keys)["search_seconds"]
    reference = reference[~reference.index.duplicated()]
    index = pd.MultiIndex.from_frame(frame[keys])
    original_seconds = reference.reindex(index).to_numpy(dtype=float)
    frame["speedup"] = original_seconds / frame["search_seconds"].to_numpy(dtype=float)
    return frame


def load_runs(results_dir: Path) -> pd.DataFrame:
    """Read a sweep's merged rows (merging first when only row files exist)."""
    results_dir = Path(results_dir)
    if (results_dir / "runs.parquet").exists():
        return pd.read_parquet(results_dir / "runs.parquet")
    if (results_dir / "rows").is_dir():
        return merge_rows(results_dir)
    raise FileNotFoundError(
        f"no results in {results_dir}: expected rows/ or runs.parquet; run `condnas run` first"
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a result row")
