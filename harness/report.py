"""Report of a sweep: a summary table and two figures in ``<results>/report/``.

:func:`write_report` reads the merged rows (:func:`harness.results.load_runs`) and writes

- ``table.md`` and ``table.tex``: one row per (task, condenser, ipc, search algorithm),
  ``original`` last, each metric as ``mean ± std`` over the group's ok seeds
  (correlations with 2 decimals, percentages, seconds and speed-ups with 1);
- ``table.csv``: the same groups with numeric ``<metric>_mean`` / ``<metric>_std``
  columns (and ``failed`` / ``first_error``), for further analysis;
- ``correlation.<fmt>``: mean Spearman per (condenser[, ipc]) and search algorithm with
  std error bars and the noise ceiling as a dashed line;
- ``scatter.<fmt>``: per condenser, the first ok cell's proxy vs true validation accuracy
  of every candidate.

Conventions:

- ``std`` is the population standard deviation (``ddof=0``) over the ok seeds, so a
  single seed reads ``± 0.00`` (no spread observed) rather than NaN.
- Only rows with status ``ok`` enter the metrics. Rows with status ``failed`` are counted
  in a ``failed`` column (shown when any cell of the sweep failed) whose cells point to a
  note below the table with the group's first error. Rows with status ``skipped`` count
  in neither.
- A metric with no value in a group (e.g. no ok seed) reads ``—`` (``---`` in LaTeX).
- In LaTeX the best mean Spearman and Perf. of each task, as displayed, are bold.
  ``original`` is the reference rather than a contender: it is considered only when no
  condensed row of the task has a value.
- The noise-ceiling line is the mean ``noise_ceiling_spearman`` over all ok rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from cycler import cycler  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from harness.errors import CondnasError  # noqa: E402
from harness.results import load_runs  # noqa: E402

ORIGINAL = "original"
GROUP_KEYS = ["task", "condenser", "ipc", "search_algo"]
KEY_LABELS = ["Task", "Condenser", "IPC", "Search"]
FULL_IPC = "full"  # the IPC cell of ``original``, which keeps every image

# Okabe & Ito (2008) colour-blind-safe palette, ordered so that yellow (low contrast on
# white) comes late; every figure takes its colours from here.
OKABE_ITO = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
)
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
ROTATE_ABOVE_TICKS = 4  # bar charts with more ticks, or a longer label, slant them
ROTATE_ABOVE_CHARS = 14
ERROR_CHARS = 160  # an error note keeps the first line, cut to this many characters


@dataclass(frozen=True)
class Metric:
    """A result-row column shown in the table as ``mean ± std``."""

    column: str
    label: str
    decimals: int


METRICS = (
    Metric("spearman", "Spearman", 2),
    Metric("kendall", "Kendall", 2),
    Metric("topk_overlap", "Top-k overlap", 2),
    Metric("perf", "Perf. (%)", 1),
    Metric("regret", "Regret", 1),
    Metric("noise_ceiling_spearman", "Noise ceiling (Spearman)", 2),
    Metric("condense_seconds", "Condense (s)", 1),
    Metric("search_seconds", "Search (s)", 1),
    Metric("speedup", "Speed-up", 1),
)
BOLD_BEST = ("spearman", "perf")  # higher is better for both
SUMMARY_COLUMNS = GROUP_KEYS + ["seeds", "failed", "first_error"] + [
    f"{metric.column}_{stat}" for metric in METRICS for stat in ("mean", "std")
]


@dataclass
class ReportSummary:
    """What :func:`write_report` produced: files written and parts left out, with why."""

    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def write_report(results_dir: Path, formats: tuple[str, ...] = ("png", "pdf")) -> ReportSummary:
    """Write the sweep's tables and figures into ``results_dir/report/``.

    ``formats`` are the figure file types (any matplotlib can save, e.g. ``png``,
    ``pdf``, ``svg``). Raises :class:`CondnasError` for an unknown format or a sweep
    without rows.
    """
    results_dir = Path(results_dir)
    _check_formats(formats)
    frame = load_runs(results_dir)
    if frame.empty:
        raise CondnasError(f"no result rows in {results_dir}; run `condnas run` first")
    frame = _numeric_metrics(frame)
    report_dir = results_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    groups = summarise(frame)
    summary = ReportSummary()
    summary.written += _write_tables(frame, groups, report_dir)
    with plt.rc_context(STYLE):
        _add_figure(summary, report_dir, "correlation", formats, _correlation_figure(frame, groups))
        _add_figure(summary, report_dir, "scatter", formats, _scatter_figure(frame, groups))
    return summary


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (task, condenser, ipc, search_algo), sorted with ``original`` last.

    Columns: the group keys (``ipc`` nullable ``Int64``, NA for ``original``), ``seeds`` (ok rows),
    ``failed`` (failed rows), ``first_error`` (``None`` without failures) and, for every
    metric of :data:`METRICS`, ``<column>_mean`` and ``<column>_std`` (ddof=0, NaN when
    the group has no value).
    """
    frame = _numeric_metrics(frame)
    records = [
        _summarise_group(key, rows)
        for key, rows in frame.groupby(GROUP_KEYS, dropna=False, sort=False)
    ]
    summary = pd.DataFrame.from_records(sorted(records, key=_group_order), columns=SUMMARY_COLUMNS)
    return summary.astype({"ipc": "Int64"})


# --- summary -------------------------------------------------------------------------


def _check_formats(formats: tuple[str, ...]) -> None:
    supported = FigureCanvasBase.get_supported_filetypes()
    unknown = [fmt for fmt in formats if fmt not in supported]
    if unknown:
        raise CondnasError(
            f"unknown figure format(s) {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(supported))}"
        )


def _numeric_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [metric.column for metric in METRICS] + ["ipc", "seed", "n_candidates", "topk"]
    return frame.assign(**{name: pd.to_numeric(frame[name], errors="coerce") for name in columns})


def _summarise_group(key: tuple[Any, ...], rows: pd.DataFrame) -> dict[str, Any]:
    ok = rows[rows["status"] == "ok"]
    failed = rows[rows["status"] == "failed"].sort_values("seed")
    record: dict[str, Any] = dict(zip(GROUP_KEYS, key))
    record["ipc"] = None if _missing(record["ipc"]) else int(record["ipc"])
    record["seeds"] = len(ok)
    record["failed"] = len(failed)
    record["first_error"] = _first_error(failed.iloc[0]) if len(failed) else None
    for metric in METRICS:
        values = ok[metric.column].dropna().to_numpy(dtype=float)
        record[f"{metric.column}_mean"] = values.mean() if values.size else math.nan
        record[f"{metric.column}_std"] = values.std(ddof=0) if values.size else math.nan
    return record


def _group_order(record: dict[str, Any]) -> tuple[Any, ...]:
    ipc = record["ipc"]
    return (
        str(record["task"]),
        record["condenser"] == ORIGINAL,
        str(record["condenser"]),
        ipc is None,
        ipc or 0,
        str(record["search_algo"]),
    )


def _first_error(row: pd.Series) -> str:
    error = row["error"] if isinstance(row["error"], str) else ""
    line = error.strip().splitlines()[0] if error.strip() else "no error message"
    if len(line) > ERROR_CHARS:
        line = line[: ERROR_CHARS - 1] + "…"
    seed = "seed ?" if _missing(row["seed"]) else f"seed {int(row['seed'])}"
    return f"{seed}: {line}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- tables --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """How one table format writes the pieces that differ between formats."""

    escape: Callable[[str], str]
    plus_minus: str
    dash: str
    bold: Callable[[str], str]


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _markdown_escape(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


MARKDOWN = _Dialect(_markdown_escape, "±", "—", lambda cell: cell)
LATEX = _Dialect(_latex_escape, r"$\pm$", "---", lambda cell: rf"\textbf{{{cell}}}")


def _write_tables(frame: pd.DataFrame, groups: pd.DataFrame, report_dir: Path) -> list[Path]:
    title = _title_fields(frame)
    paths = [report_dir / "table.md", report_dir / "table.csv", report_dir / "table.tex"]
    paths[0].write_text(_markdown(groups, title))
    groups.to_csv(paths[1], index=False)
    paths[2].write_text(_latex(groups, title))
    return paths


def _title_fields(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Sweep, task, rank_by, candidates and top-k, each as the distinct values joined."""
    fields = [("sweep", "sweep"), ("task", "task"), ("rank_by", "rank_by"),
              ("candidates", "n_candidates"), ("top-k", "topk")]
    return [(name, _distinct(frame[column])) for name, column in fields]


def _distinct(column: pd.Series) -> str:
    values = column.dropna().unique()
    shown = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values]
    return ", ".join(shown) or "?"


def _cells(
    groups: pd.DataFrame, dialect: _Dialect
) -> tuple[list[str], list[list[str]], list[str]]:
    """Return the header and body rows of the table in ``dialect``, and the failure notes."""
    show_failed = bool(groups["failed"].sum())
    header = KEY_LABELS + ["Seeds"] + ["Failed"] * show_failed + [m.label for m in METRICS]
    best = {column: _best_mask(groups, column) for column in BOLD_BEST}
    rows, notes = [], []
    for index, group in groups.iterrows():
        row = [str(group[key]) for key in GROUP_KEYS] + [str(group["seeds"])]
        row[GROUP_KEYS.index("ipc")] = _ipc_label(group["ipc"])
        if show_failed:
            row.append(f"{group['failed']} [{len(notes) + 1}]" if group["failed"] else "0")
        if show_failed and group["failed"]:
            notes.append(f"[{len(notes) + 1}] {_group_name(group)} {dialect.dash} "
                         f"{group['first_error']}")
        row = [dialect.escape(cell) for cell in row]
        for metric in METRICS:
            cell = _mean_std(group, metric, dialect)
            is_best = metric.column in best and best[metric.column][index]
            row.append(dialect.bold(cell) if is_best else cell)
        rows.append(row)
    escape = dialect.escape
    return [escape(label) for label in header], rows, [escape(note) for note in notes]


def _mean_std(group: pd.Series, metric: Metric, dialect: _Dialect) -> str:
    mean, std = group[f"{metric.column}_mean"], group[f"{metric.column}_std"]
    if math.isnan(mean):
        return dialect.dash
    return f"{mean:.{metric.decimals}f} {dialect.plus_minus} {std:.{metric.decimals}f}"


def _best_mask(groups: pd.DataFrame, column: str) -> pd.Series:
    """Rows holding their task's highest displayed mean of ``column`` (ties all win)."""
    decimals = next(metric.decimals for metric in METRICS if metric.column == column)
    shown = groups[f"{column}_mean"].round(decimals)
    mask = pd.Series(False, index=groups.index)
    for _, task_rows in groups.groupby("task", dropna=False):
        values = shown[task_rows.index].dropna()
        contenders = values[task_rows.loc[values.index, "condenser"] != ORIGINAL]
        contenders = contenders if len(contenders) else values
        if len(contenders):
            mask[contenders.index[contenders == contenders.max()]] = True
    return mask


def _markdown(groups: pd.DataFrame, title: list[tuple[str, str]]) -> str:
    header, rows, notes = _cells(groups, MARKDOWN)
    numeric = len(KEY_LABELS)
    align = ["---"] * numeric + ["---:"] * (len(header) - numeric)
    lines = [" · ".join(f"**{name}:** {MARKDOWN.escape(value)}" for name, value in title), ""]
    lines += ["| " + " | ".join(cells) + " |" for cells in (header, align, *rows)]
    if notes:
        lines += ["", "Failed cells (first error of each group):", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _latex(groups: pd.DataFrame, title: list[tuple[str, str]]) -> str:
    header, rows, notes = _cells(groups, LATEX)
    columns = "l" * len(KEY_LABELS) + "r" * (len(header) - len(KEY_LABELS))
    lines = ["% " + "; ".join(f"{name}: {value}" for name, value in title).replace("\n", " "),
             rf"\begin{{tabular}}{{{columns}}}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines += [r"\par\smallskip", r"{\footnotesize"] + [note + r"\par" for note in notes] + ["}"]
    return "\n".join(lines) + "\n"


# --- figures -------------------------------------------------------------------------


def _add_figure(
    summary: ReportSummary,
    report_dir: Path,
    name: str,
    formats: tuple[str, ...],
    drawn: tuple[plt.Figure | None, list[str]],
) -> None:
    """Save a drawn figure in every format, or remove a stale one; record both."""
    figure, notes = drawn
    summary.skipped += notes
    if figure is None:
        for stale in report_dir.glob(f"{name}.*"):
            stale.unlink()
        return
    try:
        figure.tight_layout()
        for fmt in formats:
            path = report_dir / f"{name}.{fmt}"
            figure.savefig(path)
            summary.written.append(path)
    finally:
        plt.close(figure)


def _correlation_figure(
    frame: pd.DataFrame, groups: pd.DataFrame
) -> tuple[plt.Figure | None, list[str]]:
    """Grouped bars of mean Spearman (colour: search algorithm) and the noise ceiling."""
    missing = groups["spearman_mean"].isna()
    notes = [f"correlation: no Spearman for {_group_name(group)} (no ok seed)"
             for _, group in groups[missing].iterrows()]
    if missing.all():
        return None, notes + ["correlation: no ok row has a Spearman"]
    multi_task = groups["task"].nunique(dropna=False) > 1
    labels = list(dict.fromkeys(_bar_label(group, multi_task) for _, group in groups.iterrows()))
    algos = list(dict.fromkeys(groups["search_algo"]))
    width = 0.8 / len(algos)
    figure, axes = plt.subplots(figsize=(_bar_figure_width(len(groups), len(labels)), 4.0))
    for position, algo in enumerate(algos):
        bars = groups[groups["search_algo"] == algo]
        x = np.array([labels.index(_bar_label(group, multi_task)) for _, group in bars.iterrows()])
        x = x + (position - (len(algos) - 1) / 2) * width
        axes.bar(x, bars["spearman_mean"].fillna(0), width, yerr=bars["spearman_std"], capsize=3,
                 color=OKABE_ITO[position % len(OKABE_ITO)], label=str(algo),
                 error_kw={"elinewidth": 1, "ecolor": "#333333"})
        for gap in x[bars["spearman_mean"].isna().to_numpy()]:
            axes.text(gap, 0.02, "no ok seed", rotation=90, ha="center", va="bottom", fontsize=8,
                      color="#555555")
    ceiling = frame.loc[frame["status"] == "ok", "noise_ceiling_spearman"].mean()
    if math.isnan(ceiling):
        notes.append("correlation: no noise_ceiling_spearman in rows, ceiling line omitted")
    else:
        axes.axhline(ceiling, color="black", linestyle="--", linewidth=1.2,
                     label=f"noise ceiling ({ceiling:.2f})")
    lowest = (groups["spearman_mean"] - groups["spearman_std"]).min()
    axes.set_ylim(min(0.0, lowest) - 0.05, 1.05)
    axes.axhline(0, color="#666666", linewidth=0.8)
    _set_bar_ticks(axes, labels)
    axes.set_ylabel("Spearman ρ with ground truth\n(mean ± std over seeds)")
    axes.set_xlabel("condenser (images per class)")
    axes.set_title(f"Ranking quality per condenser — sweep {_distinct(frame['sweep'])}")
    handles, names = axes.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda index: names[index].startswith("noise ceiling"))
    axes.legend([handles[i] for i in order], [names[i] for i in order],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure, notes


def _bar_figure_width(bars: int, ticks: int) -> float:
    return max(5.0, min(16.0, 3.0 + 0.45 * bars + 0.25 * ticks))


def _group_name(group: pd.Series) -> str:
    ipc = _ipc_label(group["ipc"])
    return f"{group['task']} / {group['condenser']} / {ipc} / {group['search_algo']}"


def _ipc_label(ipc: Any) -> str:
    return FULL_IPC if pd.isna(ipc) else str(int(ipc))


def _bar_label(group: pd.Series, multi_task: bool) -> str:
    ipc = group["ipc"]
    label = str(group["condenser"]) if pd.isna(ipc) else f"{group['condenser']} ({int(ipc)})"
    return f"{group['task']}: {label}" if multi_task else label


def _set_bar_ticks(axes: plt.Axes, labels: list[str]) -> None:
    slanted = len(labels) > ROTATE_ABOVE_TICKS or max(map(len, labels)) > ROTATE_ABOVE_CHARS
    axes.set_xticks(range(len(labels)), labels, rotation=30 if slanted else 0,
                    ha="right" if slanted else "center", rotation_mode="anchor")
    axes.grid(axis="x", visible=False)


def _scatter_figure(
    frame: pd.DataFrame, groups: pd.DataFrame
) -> tuple[plt.Figure | None, list[str]]:
    """Per condenser, the first ok cell's proxy vs true val. accuracy per candidate."""
    cells, notes = _scatter_cells(frame, list(dict.fromkeys(groups["condenser"])))
    if not cells:
        return None, notes + ["scatter: no proxy_val_acc in rows"]
    columns = min(len(cells), 4)
    rows = math.ceil(len(cells) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.3 * columns, 3.1 * rows + 0.4),
                                sharey=True, squeeze=False)
    for axes, (row, proxy, true) in zip(grid.flat, cells):
        axes.scatter(proxy, true, s=20, alpha=0.8, color=OKABE_ITO[0], edgecolors="white",
                     linewidths=0.4)
        ipc = "" if pd.isna(row["ipc"]) else f", ipc {int(row['ipc'])}"
        axes.set_title(f"{row['task']} / {row['condenser']}{ipc}\n"
                       f"{row['search_algo']}, seed {_seed(row)}\n"
                       f"Spearman ρ = {row['spearman']:.2f}")
        axes.set_xlabel("proxy val. accuracy")
    for axes in grid[:, 0]:
        axes.set_ylabel("true val. accuracy")
    for axes in grid.flat[len(cells):]:
        axes.set_visible(False)
    figure.suptitle("Proxy vs true validation accuracy per candidate (first ok seed)")
    return figure, notes


def _seed(row: pd.Series) -> str:
    return "?" if _missing(row["seed"]) else str(int(row["seed"]))


def _scatter_cells(
    frame: pd.DataFrame, condensers: list[str]
) -> tuple[list[tuple[pd.Series, np.ndarray, np.ndarray]], list[str]]:
    """The first ok row with proxy accuracies of each condenser, and the condensers without."""
    ok = frame[frame["status"] == "ok"].assign(_no_ipc=lambda rows: rows["ipc"].isna())
    ok = ok.sort_values(["task", "_no_ipc", "ipc", "search_algo", "seed"], kind="stable")
    cells, notes = [], []
    for condenser in condensers:
        found = None
        for _, row in ok[ok["condenser"] == condenser].iterrows():
            proxy, true = _accuracy_pairs(row)
            if proxy.size:
                found = (row, proxy, true)
                break
        if found is None:
            notes.append(f"scatter: condenser {condenser} has no ok row with proxy_val_acc")
        else:
            cells.append(found)
    return cells, notes


def _accuracy_pairs(row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Candidates' (proxy, true) val. accuracies where both are known."""
    proxy, true = _json_list(row["proxy_val_acc"]), _json_list(row["true_val_acc"])
    if proxy is None or true is None:
        return np.empty(0), np.empty(0)
    pairs = np.array([(p, t) for p, t in zip(proxy, true, strict=True)
                      if not (_missing(p) or _missing(t))], dtype=float).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _json_list(value: Any) -> list[Any] | None:
    if isinstance(value, str):
        value = json.loads(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return list(value)
