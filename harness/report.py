"""Report of a sweep: the HCDC paper's tables and figures, from any results directory.

:func:`write_report` reads the merged rows (:func:`harness.results.load_runs`) and writes
into ``<results>/report/`` what the rows support:

=======================  ==================================================================
file                     written when
=======================  ==================================================================
``table.{md,tex,csv}``   always: every metric per (task, condenser, ipc, search algorithm)
``table1.*``             a condensed proxy on a task (Table 1: Corr. / Perf. per condenser)
``table2.*``             a task with several ratios (Table 2: dataset × ratio rows)
``table3.*``             a search algorithm other than ``grid`` (Table 3: time, Perf., speed-up)
``table7.*``             a cross-validation task (Table 7: space name containing ``fold``)
``search_time.*``        a search on ``original`` with a trace (Figure 4's time to its best)
``correlation.<fmt>``    an ok row with a Spearman correlation (bars, error bars, ceiling)
``figure2.<fmt>``        an ok row with scores (candidates in proxy order, coloured by truth)
``figure4.<fmt>``        an ok row with a search trace (best found vs search time)
``figure6.<fmt>``        an ok row with ``proxy_val_acc`` (proxy vs true val. accuracy)
``README.md``            always: every table inline, every figure, and what was skipped
=======================  ==================================================================

Tables come in Markdown, LaTeX (booktabs, best value bold) and a tidy CSV (one line per
cell with its mean, std and seed counts); figures in each of ``formats``. Whatever is left
out is listed in :attr:`ReportSummary.skipped` with the reason, and its files from an
earlier report are deleted, so a report never mixes two states of a sweep. Cross-validation
tasks appear in Table 7 only, the others in Tables 1-3. The layouts and conventions
(``mean ± std`` with ``ddof=0``, how failed seeds are marked, condenser groups) are
documented in :mod:`harness.report_tables`, :mod:`harness.report_figures` and
:mod:`harness.report_style`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from harness import report_figures, report_tables  # noqa: E402
from harness.errors import CondnasError  # noqa: E402
from harness.fileio import atomic_write_text  # noqa: E402
from harness.report_style import STYLE, is_cross_validation, prepare, seed_groups  # noqa: E402
from harness.results import load_runs  # noqa: E402

TABLES: tuple[tuple[str, str, Callable[..., report_tables.Table | str], bool], ...] = (
    # (file stem, title, builder, takes cross-validation rows)
    ("table1", "Table 1", report_tables.table1, False),
    ("table2", "Table 2", report_tables.table2, False),
    ("table3", "Table 3", report_tables.table3, False),
    ("table7", "Table 7", report_tables.table7, True),
    ("search_time", "Figure 4 in numbers", report_tables.search_time_table, False),
)
FIGURES = (
    ("correlation", "Ranking correlation per proxy", report_figures.correlation_figure),
    ("figure2", "Figure 2: rankings on each proxy", report_figures.rankings_figure),
    ("figure4", "Figure 4: best found vs search time", report_figures.search_time_figure),
    ("figure6", "Figure 6: proxy vs true validation accuracy", report_figures.scatter_figure),
)
INDEX = "README.md"


@dataclass
class ReportSummary:
    """What :func:`write_report` produced: files written and parts left out, with why."""

    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def write_report(results_dir: Path, formats: tuple[str, ...] = ("png", "pdf")) -> ReportSummary:
    """Write the sweep's tables and figures into ``results_dir/report/``.

    ``formats`` are the figure file types (any matplotlib saves: ``png``, ``pdf``, ``svg``,
    ...); with none, no figure is drawn. Raises :class:`CondnasError` for an unknown format
    or a sweep without rows.
    """
    results_dir = Path(results_dir)
    _check_formats(formats)
    frame = load_runs(results_dir)
    if frame.empty:
        raise CondnasError(f"no result rows in {results_dir}; run `condnas run` first")
    frame = prepare(frame)
    groups = seed_groups(frame)
    report_dir = results_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = ReportSummary()
    sweep = ", ".join(map(str, frame["sweep"].dropna().unique())) or "?"
    sections = [_write_table(summary, report_dir, "table", "Summary",
                             report_tables.summary_table(frame, groups, sweep))]
    cross_validation = frame["space"].map(is_cross_validation).astype(bool)
    for stem, title, build, for_cv in TABLES:
        rows = frame[cross_validation if for_cv else ~cross_validation]
        built = build(rows, groups) if for_cv or not rows.empty else (
            f"{stem}: the rows hold only cross-validation tasks, which Table 7 shows")
        if isinstance(built, str):
            summary.skipped.append(built)
        else:
            sections.append(_write_table(summary, report_dir, stem, title, built))
    figures = _write_figures(summary, report_dir, frame, groups, formats)
    _remove_stale(report_dir, summary)
    index = report_dir / INDEX
    atomic_write_text(index, _index(frame, sweep, sections, figures, summary.skipped))
    summary.written.append(index)
    return summary


def _check_formats(formats: tuple[str, ...]) -> None:
    supported = FigureCanvasBase.get_supported_filetypes()
    unknown = [fmt for fmt in formats if fmt not in supported]
    if unknown:
        raise CondnasError(
            f"unknown figure format(s) {', '.join(unknown)}; choose from {', '.join(sorted(supported))}"
        )


def _write_table(summary: ReportSummary, report_dir: Path, stem: str, title: str,
                 table: report_tables.Table) -> str:
    """Write one table in every format; return its Markdown for the index."""
    report_tables.mark_best(table)
    text = report_tables.markdown(table, title)
    for suffix, content in ((".md", text), (".tex", report_tables.latex(table, title)),
                            (".csv", report_tables.tidy_csv(table))):
        atomic_write_text(report_dir / f"{stem}{suffix}", content)
        summary.written.append(report_dir / f"{stem}{suffix}")
    return text


def _write_figures(summary: ReportSummary, report_dir: Path, frame: pd.DataFrame,
                   groups: dict, formats: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Draw and save each supported figure; return (title, first file) of each written."""
    if not formats:
        summary.skipped.append("figures: no figure format requested")
        return []
    written = []
    with plt.rc_context(STYLE):
        for stem, title, draw in FIGURES:
            figure, notes = draw(frame, groups)
            summary.skipped += notes
            if figure is None:
                continue
            try:
                for fmt in formats:
                    path = report_dir / f"{stem}.{fmt}"
                    figure.savefig(path)
                    summary.written.append(path)
            finally:
                plt.close(figure)
            written.append((title, report_dir / f"{stem}.{formats[0]}"))
    return written


def _remove_stale(report_dir: Path, summary: ReportSummary) -> None:
    """Delete files of tables and figures that an earlier report wrote and this one did not."""
    stems = {"table"} | {stem for stem, *_ in TABLES} | {stem for stem, *_ in FIGURES}
    for path in report_dir.iterdir():
        if path.stem in stems and path.is_file() and path not in summary.written:
            path.unlink()


def _index(frame: pd.DataFrame, sweep: str, sections: list[str], figures: list[tuple[str, Path]],
           skipped: list[str]) -> str:
    """``report/README.md``: counts, every table, every figure and what was skipped."""
    counts = frame["status"].value_counts()
    status = ", ".join(f"{counts[name]} {name}" for name in sorted(counts.index))
    lines = [f"# Report of sweep {sweep}", "",
             f"{len(frame)} cells ({status}); tasks: {', '.join(sorted(map(str, frame['task'].unique())))}. "
             "Written by `condnas report`; each table is also in LaTeX (`.tex`) and CSV.", ""]
    for text in sections[1:] + sections[:1]:
        lines += [text, ""]
    for title, path in figures:
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    if skipped:
        lines += ["## Skipped", ""] + [f"- {reason}" for reason in skipped] + [""]
    return "\n".join(lines)
