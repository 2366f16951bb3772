"""The report's tables: the paper's Tables 1, 2, 3 and 7 and a summary of every metric.

Private to :mod:`harness.report`. Each builder turns the prepared rows
(:func:`harness.report_style.prepare`) into a :class:`Table` of :class:`Cell` s, or
returns the reason it does not apply; :func:`markdown`, :func:`latex` and
:func:`tidy_csv` render any table.

Layouts (HCDC paper, section 7 and appendix K):

- **Table 1**: rows *dataset × {Corr., Perf. (%)}* (plus IPC and search algorithm levels
  when the sweep varies them); columns the condensers grouped as coresets / standard
  condensation / HCDC / Other, then a Reference group: Original, the noise ceiling (on
  the Corr. row) and Optimal (on the Perf. row: the best candidate's test accuracy).
- **Table 2**: rows *dataset × ratio (ipc)*; Corr. and Perf. per condenser; Original's
  Perf. (the paper's "whole graph") on the first row of each dataset.
- **Table 3**: rows per search algorithm; Time (sec) (search seconds), Perf. (%) and the
  speed-up over the same search on ``original`` per proxy.
- **Table 7**: rows per condenser of a cross-validation task; Corr. and Perf. per ratio.
- **Search time** (Figure 4 in numbers): rows per dataset and search algorithm; per proxy the
  final best-so-far test accuracy of its trace, the search seconds until that came within one
  point of the search on ``original``, and the whole search's seconds.
- **Summary** (``table``): one row per (task, condenser, ipc, search algorithm) with
  every metric.

Cells read ``mean ± std`` over seeds (Optimal and the noise ceiling, which do not vary
with the seed, read their mean). A cell with no rows at all (a pair the sweep did not
run) reads ``—``; a group whose seeds all failed reads ``failed`` (or ``skipped``); a
group with some failed or skipped seeds carries a note marker ``[k]`` whose note below
the table gives the count and the first error. The best value of each row (Table 7: of
each column) among two or more condensers — never Original or the references — is bold;
ties are all bold, compared as displayed. LaTeX uses booktabs rules and escapes everything.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import pandas as pd

from harness.report_style import (
    GRID,
    GROUP_KEYS,
    OK,
    ORIGINAL,
    REFERENCE_GROUP,
    GroupKey,
    Stat,
    aggregate,
    algo_order,
    condenser_group,
    condenser_order,
    display,
    ipc_label,
    missing,
    proxy_label,
    seed_groups,
    trace_points,
)

@dataclass(frozen=True)
class Metric:
    """A row column shown as ``mean ± std``; ``better`` is ``high`` or ``low``."""

    column: str
    label: str
    decimals: int
    better: str = "high"


CORR = Metric("spearman", "Corr.", 2)
PERF = Metric("perf", "Perf. (%)", 1)
TIME = Metric("search_seconds", "Time (sec)", 1, "low")
SPEEDUP = Metric("speedup", "Speed-up (×)", 1)
CEILING = Metric("noise_ceiling_spearman", "Noise ceiling", 2)
OPTIMAL = Metric("optimal_perf", "Optimal", 1)
SUMMARY_METRICS = (
    Metric("spearman", "Spearman", 2), Metric("kendall", "Kendall", 2),
    Metric("topk_overlap", "Top-k overlap", 2), PERF, Metric("regret", "Regret", 1, "low"),
    Metric("noise_ceiling_spearman", "Noise ceiling (Spearman)", 2),
    Metric("condense_seconds", "Condense (s)", 1, "low"), Metric("search_seconds", "Search (s)", 1, "low"),
    Metric("speedup", "Speed-up", 1),
)
TRACE_BEST = Metric("trace_best", "Best (%)", 1)
TO_TARGET = Metric("trace_to_target", "To target (s)", 1, "low")
TARGET_MARGIN = 1.0  # points of test accuracy below the original search's best that count as reached
SUMMARY_BOLD = ("spearman", "perf")
TABLE3_MAX_PROXIES = 6  # wider than the paper's four proxies, Table 3 turns a row per proxy


@dataclass
class Cell:
    """One table cell: a statistic, a fixed text, or nothing (``—``).

    ``compete``: cells with the same (non-``None``) value compete for bold; ``key`` names
    the cell for the CSV (``task``, ``condenser``, ``ipc``, ``search_algo``, ``metric``).
    """

    stat: Stat | None = None
    metric: Metric | None = None
    std: bool = True
    text: str | None = None
    compete: Hashable | None = None
    key: dict[str, Any] | None = None
    note: int | None = None
    bold: bool = False

    def shown(self) -> float:
        """The mean as displayed (rounded), NaN when there is none."""
        if self.stat is None or self.metric is None or self.stat.n == 0:
            return math.nan
        return round(self.stat.mean, self.metric.decimals)


@dataclass
class Table:
    """A table in one of the paper's layouts, independent of the output format.

    ``columns`` are tuples of one or two header levels (the same depth throughout);
    each row is its labels (one per ``row_header`` entry) and one cell per column.
    """

    caption: str
    row_header: list[str]
    columns: list[tuple[str, ...]]
    rows: list[tuple[list[str], list[Cell]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Cells:
    """Cells of one table from the seed groups, numbering a note per troubled group."""

    def __init__(self, groups: dict[GroupKey, pd.DataFrame], table: Table) -> None:
        self.groups = groups
        self.table = table
        self.noted: dict[GroupKey, int] = {}

    def group(self, key: GroupKey, metric: Metric, compete: Hashable | None = None) -> Cell:
        """The cell of ``metric`` over the seeds of group ``key`` (``—`` when not run)."""
        csv_key = dict(zip(GROUP_KEYS, key), metric=metric.column)
        rows = self.groups.get(key)
        if rows is None:
            return Cell(metric=metric, key=csv_key)
        stat = aggregate(rows, metric.column)
        return Cell(stat, metric, compete=compete, key=csv_key, note=self._note(key, stat))

    def pooled(self, rows: pd.DataFrame, metric: Metric, task: str) -> Cell:
        """A seed-independent reference (optimal, noise ceiling): the mean over ``rows``."""
        key = {"task": task, "condenser": None, "ipc": None, "search_algo": None, "metric": metric.column}
        return Cell(aggregate(rows[rows["status"] == OK], metric.column), metric, std=False, key=key)

    def _note(self, key: GroupKey, stat: Stat) -> int | None:
        if not stat.troubled:
            return None
        if key not in self.noted:
            total = stat.ok + stat.failed + stat.skipped
            counts = ", ".join(f"{count} of {total} seeds {word}" for count, word in
                               ((stat.failed, "failed"), (stat.skipped, "skipped")) if count)
            name = " / ".join(str(part) if part is not None else "full" for part in key)
            self.table.notes.append(f"{name}: {counts}; {stat.error}")
            self.noted[key] = len(self.table.notes)
        return self.noted[key]


def _condensed_ipcs(rows: pd.DataFrame) -> list[int]:
    return sorted(int(ipc) for ipc in rows.loc[rows["condenser"] != ORIGINAL, "ipc"].dropna().unique())


# --- the paper's layouts ------------------------------------------------------------------


def table1(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Table | str:
    """Table 1: Corr. and Perf. per dataset, condensers in groups, references last."""
    condensers = [name for name in condenser_order(frame["condenser"]) if name != ORIGINAL]
    if not condensers:
        return "table1: no condensed proxy in the rows (only original); add a condenser to the sweep"
    tasks = sorted(frame["task"].unique())
    vary_ipc = any(len(_condensed_ipcs(frame[frame["task"] == task])) > 1 for task in tasks)
    vary_algo = frame["search_algo"].nunique() > 1
    has_original = bool((frame["condenser"] == ORIGINAL).any())
    table = Table(
        "Spearman's rank correlation between the candidates' proxy scores and their true "
        "performance (Corr.), and the true test accuracy of the candidate selected on the proxy "
        "(Perf.), mean ± std over seeds. Noise ceiling: the same correlation between independent "
        "oracle seeds. Optimal: the best candidate's test accuracy.",
        ["Dataset"] + ["Search"] * vary_algo + ["IPC"] * vary_ipc + [""],
        [(condenser_group(name), display(name)) for name in condensers]
        + [(REFERENCE_GROUP, "Original")] * has_original
        + [(REFERENCE_GROUP, CEILING.label), (REFERENCE_GROUP, OPTIMAL.label)],
    )
    cells = _Cells(groups, table)
    for task in tasks:
        task_rows = frame[frame["task"] == task]
        for algo in algo_order(task_rows["search_algo"]):
            for ipc in _condensed_ipcs(task_rows) or [None]:
                labels = [display(task)] + [display(algo)] * vary_algo + [ipc_label(ipc)] * vary_ipc
                for metric, reference in ((CORR, CEILING), (PERF, OPTIMAL)):
                    compete = (task, algo, ipc, metric.column)
                    row = [cells.group((task, name, ipc, algo), metric, compete) for name in condensers]
                    row += [cells.group((task, ORIGINAL, None, algo), metric)] * has_original
                    row += [cells.pooled(task_rows, CEILING, task) if reference is CEILING else Cell(text=""),
                            cells.pooled(task_rows, OPTIMAL, task) if reference is OPTIMAL else Cell(text="")]
                    table.rows.append((labels + [metric.label], row))
    return table


def table2(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Table | str:
    """Table 2: Corr. and Perf. per condenser for each dataset and ratio (ipc)."""
    tasks = sorted(frame["task"].unique())
    if not any(len(_condensed_ipcs(frame[frame["task"] == task])) > 1 for task in tasks):
        return ("table2: every task has a single ratio (ipc), which Table 1 shows; "
                "give a condenser several ipc values to compare ratios")
    condensers = [name for name in condenser_order(frame["condenser"]) if name != ORIGINAL]
    vary_algo = frame["search_algo"].nunique() > 1
    has_original = bool((frame["condenser"] == ORIGINAL).any())
    table = Table(
        "Corr. and Perf. (%) per condenser at each ratio (images per class), mean ± std over "
        "seeds. Original: the search on the whole data (the paper's \"whole graph\").",
        ["Dataset"] + ["Search"] * vary_algo + ["Ratio (IPC)"],
        [(display(name), metric.label) for name in condensers for metric in (CORR, PERF)]
        + [("Original", PERF.label)] * has_original,
    )
    cells = _Cells(groups, table)
    for task in tasks:
        task_rows = frame[frame["task"] == task]
        for algo in algo_order(task_rows["search_algo"]):
            for index, ipc in enumerate(_condensed_ipcs(task_rows)):
                row = [cells.group((task, name, ipc, algo), metric, (task, algo, ipc, metric.column))
                       for name in condensers for metric in (CORR, PERF)]
                if has_original:
                    row.append(cells.group((task, ORIGINAL, None, algo), PERF) if index == 0 else Cell(text=""))
                labels = [display(task)] + [display(algo)] * vary_algo + [ipc_label(ipc)]
                table.rows.append((labels, row))
    return table


def table3(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Table | str:
    """Table 3: search time, Perf. and speed-up per search algorithm and proxy.

    The paper's layout (a row per search algorithm, a column group per proxy) while it
    stays narrow; with more than :data:`TABLE3_MAX_PROXIES` proxies it is transposed to a
    row per proxy and a column group per search algorithm, which still fits a page.
    """
    algos = algo_order(frame["search_algo"])
    if algos == [GRID]:
        return "table3: grid is the only search algorithm; Table 3 compares search algorithms"
    order = condenser_order(frame["condenser"])
    proxies = sorted({(row.condenser, None if missing(row.ipc) else int(row.ipc)) for row in frame.itertuples()},
                     key=lambda proxy: (order.index(proxy[0]), proxy[1] or 0))
    with_ipc = len(_condensed_ipcs(frame)) > 1
    tasks = sorted(frame["task"].unique())
    task_level = ["Dataset"] * (len(tasks) > 1)
    transposed = len(proxies) > TABLE3_MAX_PROXIES
    table = Table(
        "Search time (seconds of the search alone, condensation excluded), Perf. (%) of the "
        "selected candidate and the speed-up over the same search on the original data, "
        "mean ± std over seeds.",
        task_level + (["Proxy"] if transposed else ["NAS algorithm"]),
        [(display(algo), metric.label) for algo in algos for metric in (TIME, PERF, SPEEDUP)] if transposed else
        [(proxy_label(name, ipc, with_ipc), metric.label) for name, ipc in proxies for metric in _table3_metrics(name)],
    )
    cells = _Cells(groups, table)

    def cell(task: str, name: str, ipc: int | None, algo: str, metric: Metric) -> Cell:
        if name == ORIGINAL and metric is SPEEDUP:
            return Cell(text="")
        return cells.group((task, name, ipc, algo), metric, None if name == ORIGINAL else (task, algo, metric.column))

    for task in tasks:
        label = [display(task)] * (len(tasks) > 1)
        if transposed:
            for name, ipc in proxies:
                table.rows.append((label + [proxy_label(name, ipc, with_ipc)],
                                   [cell(task, name, ipc, algo, metric) for algo in algos
                                    for metric in (TIME, PERF, SPEEDUP)]))
        else:
            for algo in algo_order(frame.loc[frame["task"] == task, "search_algo"]):
                table.rows.append((label + [display(algo)], [cell(task, name, ipc, algo, metric)
                                                            for name, ipc in proxies
                                                            for metric in _table3_metrics(name)]))
    return table


def _table3_metrics(condenser: str) -> tuple[Metric, ...]:
    return (TIME, PERF) if condenser == ORIGINAL else (TIME, PERF, SPEEDUP)


def table7(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Table | str:
    """Table 7: Corr. and Perf. per condenser and ratio on an M-fold cross-validation task."""
    if frame.empty:
        return "table7: no cross-validation task (a search space whose name contains 'fold')"
    tasks = sorted(frame["task"].unique())
    vary_algo = frame["search_algo"].nunique() > 1
    ipcs = _condensed_ipcs(frame) or [None]
    table = Table(
        "M-fold cross-validation: Corr. and Perf. (%) of the fold ranked / selected on each "
        "proxy, per ratio (images per class), mean ± std over seeds. Original does not "
        "depend on the ratio.",
        ["Dataset"] * (len(tasks) > 1) + ["Search"] * vary_algo + ["Method"],
        [(f"IPC {ipc_label(ipc)}", metric.label) for ipc in ipcs for metric in (CORR, PERF)],
    )
    cells = _Cells(groups, table)
    for task in tasks:
        task_rows = frame[frame["task"] == task]
        for algo in algo_order(task_rows["search_algo"]):
            for name in condenser_order(task_rows["condenser"]):
                row = [cells.group((task, name, None, algo), metric) if name == ORIGINAL else
                       cells.group((task, name, ipc, algo), metric, (task, algo, ipc, metric.column))
                       for ipc in ipcs for metric in (CORR, PERF)]
                labels = [display(task)] * (len(tasks) > 1) + [display(algo)] * vary_algo + [display(name)]
                table.rows.append((labels, row))
    return table


def search_time_table(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Table | str:
    """Figure 4 in numbers: per proxy, the final best-so-far test accuracy of the search and the
    search seconds until its best-so-far came within :data:`TARGET_MARGIN` points of the search
    on ``original`` (the mean over its seeds of their final best-so-far accuracy)."""
    traced = frame.assign(**_trace_columns(frame))
    if not traced["trace_best"].notna().any():
        return "search_time: no ok row has a search trace with test accuracies"
    keys = [key for key, rows in seed_groups(traced).items()
            if key[1] == ORIGINAL and rows["trace_best"].notna().any()]
    if not keys:
        return "search_time: no search on original has a trace to take the target accuracy from"
    order = condenser_order(traced["condenser"])
    proxies = sorted({(row.condenser, None if missing(row.ipc) else int(row.ipc)) for row in traced.itertuples()
                      if not math.isnan(row.trace_best)}, key=lambda proxy: (order.index(proxy[0]), proxy[1] or 0))
    with_ipc = len(_condensed_ipcs(traced)) > 1
    table = Table(
        "Best (%): whole-data test accuracy of the search's final best-so-far "
        f"architecture. To target (s): search seconds (condensation excluded) until the best-so-far "
        f"reached within {TARGET_MARGIN:g} point of Original's Best (the mean over its seeds); "
        "mean ± std over the seeds that reached it, (k/n) when only k of n did. Search (s): the "
        "whole search.",
        ["Dataset", "Search"],
        [(proxy_label(name, ipc, with_ipc), metric.label) for name, ipc in proxies
         for metric in (TRACE_BEST, TO_TARGET, TIME)],
    )
    cells = _Cells(seed_groups(traced), table)
    for task, _, _, algo in sorted(keys):
        row = []
        for name, ipc in proxies:
            key = (task, name, ipc, algo)
            row += [cells.group(key, TRACE_BEST, None if name == ORIGINAL else (task, algo, TRACE_BEST.column)),
                    _reach_cell(cells.group(key, TO_TARGET)), cells.group(key, TIME)]
        table.rows.append(([display(task), display(algo)], row))
    return table


def _trace_columns(frame: pd.DataFrame) -> dict[str, list[float]]:
    """``trace_best`` (a row's final best-so-far test accuracy) and ``trace_to_target`` (its search
    seconds to reach the target of its task and search algorithm) of every row (NaN where none)."""
    points = [trace_points(row) if row["status"] == OK else None for _, row in frame.iterrows()]
    best = [math.nan if p is None else float(p[1][-1]) for p in points]
    original = frame.assign(trace_best=best)
    original = original[original["condenser"] == ORIGINAL].groupby(["task", "search_algo"])["trace_best"].mean()
    to_target = []
    for (_, row), found in zip(frame.iterrows(), points):
        target = original.get((row["task"], row["search_algo"]), math.nan) - TARGET_MARGIN
        reached = [] if found is None else [t for t, acc in zip(*found) if acc >= target]
        to_target.append(float(reached[0]) if reached else math.nan)
    return {"trace_best": best, "trace_to_target": to_target}


def _reach_cell(cell: Cell) -> Cell:
    """A time-to-target cell that says so when some or all ok seeds never reached the target."""
    stat = cell.stat
    if stat is not None and stat.ok and stat.n < stat.ok:
        cell.text = "not reached" if stat.n == 0 else (
            f"{stat.mean:.{TO_TARGET.decimals}f} ± {stat.std:.{TO_TARGET.decimals}f} ({stat.n}/{stat.ok})")
    return cell


def summary_table(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame], sweep: str) -> Table:
    """Every metric per (task, condenser, ipc, search algorithm); ``Seeds`` reads ok/total."""
    table = Table(
        f"Sweep {sweep}: every metric per task, condenser, ratio and search algorithm, "
        "mean ± std over the ok seeds.",
        ["Task", "Condenser", "IPC", "Search", "Seeds"],
        [(metric.label,) for metric in SUMMARY_METRICS],
    )
    cells = _Cells(groups, table)
    order = condenser_order(frame["condenser"])
    keys = sorted(groups, key=lambda key: (key[0], order.index(key[1]), key[2] or 0, algo_order(
        frame["search_algo"]).index(key[3])))
    for key in keys:
        task, name, ipc, algo = key
        row = [cells.group(key, metric, (task, metric.column) if metric.column in SUMMARY_BOLD
                           and name != ORIGINAL else None) for metric in SUMMARY_METRICS]
        stat = row[0].stat
        seeds = f"{stat.ok}/{stat.ok + stat.failed + stat.skipped}"
        seeds += f" [{row[0].note}]" if row[0].note else ""
        for cell in row:
            cell.note = None
        table.rows.append(([display(task), display(name), ipc_label(ipc), display(algo), seeds], row))
    return table


def mark_best(table: Table) -> Table:
    """Bold the best displayed value among the cells that compete with each other (two or more)."""
    contests: dict[Hashable, list[Cell]] = {}
    for _, row in table.rows:
        for cell in row:
            if cell.compete is not None and not math.isnan(cell.shown()):
                contests.setdefault(cell.compete, []).append(cell)
    for contest in contests.values():
        if len(contest) < 2:  # a lone value is not "best" of anything
            continue
        pick = max if contest[0].metric.better == "high" else min
        best = pick(cell.shown() for cell in contest)
        for cell in contest:
            cell.bold = cell.shown() == best
    return table


# --- rendering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """How one output format writes the pieces that differ between formats."""

    escape: Callable[[str], str]
    plus_minus: str
    dash: str
    bold: Callable[[str], str]


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "×": r"$\times$", "±": r"$\pm$", "—": "---", "…": r"\ldots{}",
}

MARKDOWN = _Dialect(lambda text: text.replace("|", r"\|").replace("\n", " "), "±", "—",
                    lambda text: f"**{text}**")
LATEX = _Dialect(lambda text: "".join(_LATEX_SPECIAL.get(char, char) for char in text), r"$\pm$",
                 "---", lambda text: rf"\textbf{{{text}}}")


def _render(cell: Cell, dialect: _Dialect) -> str:
    stat = cell.stat
    if cell.text is not None:
        text = dialect.escape(cell.text)
    elif stat is None or stat.n == 0:
        text = "failed" if stat and stat.failed else "skipped" if stat and stat.skipped else dialect.dash
    else:
        decimals = cell.metric.decimals
        text = f"{stat.mean:.{decimals}f}"
        text += f" {dialect.plus_minus} {stat.std:.{decimals}f}" if cell.std else ""
    text = dialect.bold(text) if cell.bold else text
    return f"{text} [{cell.note}]" if cell.note else text


def _row_labels(table: Table) -> list[list[str]]:
    """Row labels with a level left blank where it repeats the row above (the paper's look)."""
    shown, previous = [], None
    for labels, _ in table.rows:
        blanked = [label if previous is None or labels[: level + 1] != previous[: level + 1]
                   or level == len(labels) - 1 else "" for level, label in enumerate(labels)]
        shown.append(blanked)
        previous = labels
    return shown


def _header_groups(table: Table) -> list[tuple[str, int]]:
    """Consecutive runs of the first header level: (label, span)."""
    runs: list[tuple[str, int]] = []
    for column in table.columns:
        if runs and runs[-1][0] == column[0]:
            runs[-1] = (column[0], runs[-1][1] + 1)
        else:
            runs.append((column[0], 1))
    return runs


def markdown(table: Table, title: str) -> str:
    """The table as GitHub Markdown: caption, table (two header levels joined by ·), notes."""
    escape = MARKDOWN.escape
    header = [escape(label) for label in table.row_header]
    for index, column in enumerate(table.columns):
        first = index == 0 or table.columns[index - 1][0] != column[0]
        parts = column if first or len(column) == 1 else column[1:]
        header.append(escape(" · ".join(parts)))
    lines = [f"**{title}.** {escape(table.caption)}", "",
             "| " + " | ".join(header) + " |",
             "| " + " | ".join(["---"] * len(table.row_header) + ["---:"] * len(table.columns)) + " |"]
    for labels, (_, row) in zip(_row_labels(table), table.rows):
        lines.append("| " + " | ".join([escape(label) for label in labels]
                                       + [_render(cell, MARKDOWN) for cell in row]) + " |")
    if table.notes:
        lines += ["", "Seeds that did not finish (first error of each group):", ""]
        lines += [f"- [{number}] {escape(note)}" for number, note in enumerate(table.notes, 1)]
    return "\n".join(lines) + "\n"


def latex(table: Table, title: str) -> str:
    """The table as a booktabs ``tabular`` (its caption in a comment, notes in small print below)."""
    escape = LATEX.escape
    labels = len(table.row_header)
    lines = [f"% {title}; caption ready to paste:", rf"% \caption{{{escape(table.caption)}}}",
             rf"\begin{{tabular}}{{{'l' * labels}{'r' * len(table.columns)}}}", r"\toprule"]
    if len(table.columns[0]) == 2:
        spans, rules, start = [], [], labels + 1
        for label, span in _header_groups(table):
            spans.append(rf"\multicolumn{{{span}}}{{c}}{{{escape(label)}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines += [" & ".join([""] * labels + spans) + r" \\", " ".join(rules)]
    lines.append(" & ".join([escape(label) for label in table.row_header]
                            + [escape(column[-1]) for column in table.columns]) + r" \\")
    lines.append(r"\midrule")
    for index, (shown, (_, row)) in enumerate(zip(_row_labels(table), table.rows)):
        if index and shown[0] and labels > 1:  # a new block of a multi-level row header
            lines.append(r"\addlinespace")
        lines.append(" & ".join([escape(label) for label in shown]
                                + [_render(cell, LATEX) for cell in row]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines += [r"\par\smallskip", r"{\footnotesize"]
        lines += [f"[{number}] {escape(note)}" + r"\par" for number, note in enumerate(table.notes, 1)]
        lines.append("}")
    return "\n".join(lines) + "\n"


def tidy_csv(table: Table) -> str:
    """Every statistic cell as one CSV line: its key, mean, std, seed counts and best flag."""
    records = []
    for _, row in table.rows:
        for cell in row:
            if cell.key is None:
                continue
            stat = cell.stat
            records.append({
                **cell.key,
                "mean": stat.mean if stat else math.nan,
                "std": stat.std if stat and cell.std else math.nan,
                "n": stat.n if stat else 0,
                "ok": stat.ok if stat else 0,
                "failed": stat.failed if stat else 0,
                "skipped": stat.skipped if stat else 0,
                "best": cell.bold,
                "first_error": stat.error if stat else None,
            })
    buffer = io.StringIO()
    frame = pd.DataFrame.from_records(records).astype({"ipc": "Int64"}).drop_duplicates()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()
