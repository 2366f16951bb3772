"""Tests of harness.report: the paper's tables checked against hand-computed aggregates,
the rendering rules (LaTeX shape, bold best, failure markers), what is skipped and why,
and that each figure is drawn when the rows support it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.errors import CondnasError
from harness.report import ReportSummary, write_report
from harness.report_figures import _mean_trace
from harness.report_style import trace_points
from harness.results import ROW_COLUMNS, write_row

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CANDIDATES = ["a0", "a1", "a2", "a3"]
TRUE_VAL_ACC = [60.0, 70.0, 65.0, 80.0]
TRUE_TEST_ACC = [59.0, 71.0, 64.0, 79.0]


def make_row(condenser: str = "random", ipc: int | None = 10, search_algo: str = "grid", seed: int = 0,
             status: str = "ok", task: str = "cifar10", space: str = "nasbench201", **values: Any) -> dict[str, Any]:
    """A complete result row; ``values`` override its metrics (or ``error``)."""
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(
        sweep="demo", task=task, space=space, condenser=condenser, ipc=ipc, search_algo=search_algo,
        seed=seed, status=status, cell_id=f"{task}-{condenser}-{ipc}-{search_algo}-{seed}",
        condenser_params="{}", search_params="{}", n_candidates=4, rank_by="val_acc", topk=2,
        candidates=json.dumps(CANDIDATES),
    )
    if status == "ok":
        row.update(
            spearman=0.5, kendall=0.4, spearman_same_seed=0.5, topk_overlap=0.5, noise_ceiling_spearman=0.9,
            noise_ceiling_kendall=0.8, selected="a3", perf=79.0, optimal="a3", optimal_perf=79.0, regret=0.0,
            condense_seconds=10.0, search_seconds=20.0, total_seconds=30.0,
            scores=json.dumps([0.1, 0.3, 0.2, 0.4]), true_val_acc=json.dumps(TRUE_VAL_ACC),
            true_val_loss=json.dumps([1.0, 0.8, 0.9, 0.5]), true_test_acc=json.dumps(TRUE_TEST_ACC),
            proxy_val_acc=json.dumps([30.0, 42.0, 35.0, 50.0]),
            trace=json.dumps([[1.0 + seed, "a0"], [4.0 + seed, "a1"], [9.0 + seed, "a3"]]),
        )
    row.update(values)
    return row


def report(results_dir: Path, rows: list[dict[str, Any]], formats: tuple[str, ...] = ()) -> ReportSummary:
    """Write ``rows`` as a sweep in ``results_dir`` and report on it."""
    for row in rows:
        write_row(results_dir, row)
    return write_report(results_dir, formats=formats)


def markdown_rows(path: Path) -> list[dict[str, str]]:
    """A Markdown table's body as dicts keyed by full column names (``"Group · column"``),
    with the row labels left blank under an equal label filled in from the row above."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    labels = split_cells(lines[1]).count("---")
    header, group = [], None
    for index, cell in enumerate(split_cells(lines[0])):
        if index >= labels and " · " in cell:
            group = cell.split(" · ")[0]
        header.append(f"{group} · {cell}" if group and " · " not in cell else cell)
    rows, previous = [], None
    for line in lines[2:]:
        cells = split_cells(line)
        if previous is not None:
            cells = [cell or previous[i] if i < labels - 1 else cell for i, cell in enumerate(cells)]
        rows.append(dict(zip(header, cells, strict=True)))
        previous = cells
    return rows


def split_cells(line: str) -> list[str]:
    """The cells of one Markdown table line."""
    return [cell.strip() for cell in line.strip()[1:-1].split(" | ")]


def pick(rows: list[dict[str, str]], **labels: str) -> dict[str, str]:
    """The one table row whose labels match."""
    (row,) = [row for row in rows if all(row[key] == value for key, value in labels.items())]
    return row


# --- Table 1 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table1_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportSummary]:
    """Grid on one task: two seeds of random and hcdc, a partly and a wholly failed condenser,
    a third-party condenser and original."""
    results_dir = tmp_path_factory.mktemp("table1")
    summary = report(results_dir, [
        make_row("random", seed=0, spearman=0.2, perf=80.0, optimal_perf=92.0),
        make_row("random", seed=1, spearman=0.4, perf=84.0, optimal_perf=92.0),
        make_row("hcdc", seed=0, spearman=0.8, perf=90.0, optimal_perf=92.0),
        make_row("hcdc", seed=1, spearman=0.6, perf=88.0, optimal_perf=92.0),
        make_row("kcenter", seed=0, status="failed", error="RuntimeError: out of memory\nTraceback (most recent)"),
        make_row("kcenter", seed=1, spearman=0.3, perf=70.0, optimal_perf=92.0),
        make_row("dc", seed=0, status="failed", error="ValueError: bad lr"),
        make_row("dc", seed=1, status="skipped", error="dc supports image tasks only"),
        make_row("my_proxy", seed=0, spearman=0.1, perf=60.0, optimal_perf=92.0, noise_ceiling_spearman=0.7),
        make_row("original", ipc=None, seed=0, spearman=0.95, perf=91.0, optimal_perf=92.0),
    ])
    return results_dir, summary


def test_table1_cells_are_mean_and_population_std_over_seeds(table1_sweep):
    results_dir, _ = table1_sweep
    rows = markdown_rows(results_dir / "report" / "table1.md")
    corr, perf = pick(rows, **{"": "Corr."}), pick(rows, **{"": "Perf. (%)"})
    assert corr["Dataset"] == "CIFAR-10"
    assert corr["Coresets · Random"] == "0.30 ± 0.10"
    assert perf["Coresets · Random"] == "82.0 ± 2.0"
    assert corr["HCDC · HCDC"] == "**0.70 ± 0.10**"  # the best condenser is bold
    assert perf["HCDC · HCDC"] == "**89.0 ± 1.0**"
    assert corr["Reference · Original"] == "0.95 ± 0.00"  # a reference, never bold
    # the ceiling is the mean over every ok row: (6 × 0.9 + 0.7) / 7
    assert corr["Reference · Noise ceiling"] == "0.87" and perf["Reference · Noise ceiling"] == ""
    assert perf["Reference · Optimal"] == "92.0" and corr["Reference · Optimal"] == ""


def test_table1_groups_condensers_and_keeps_third_party_ones(table1_sweep):
    results_dir, _ = table1_sweep
    header = split_cells((results_dir / "report" / "table1.md").read_text().splitlines()[2])
    assert header[2:] == ["Coresets · Random", "K-Center", "Standard condensation · DC", "HCDC · HCDC",
                          "Other · my_proxy", "Reference · Original", "Noise ceiling", "Optimal"]


def test_failed_and_skipped_seeds_are_marked_with_their_first_error(table1_sweep):
    results_dir, _ = table1_sweep
    text = (results_dir / "report" / "table1.md").read_text()
    corr = pick(markdown_rows(results_dir / "report" / "table1.md"), **{"": "Corr."})
    assert corr["Coresets · K-Center"] == "0.30 ± 0.00 [1]"  # the one ok seed, marked
    assert corr["Standard condensation · DC"] == "failed [2]"
    assert "- [1] cifar10 / kcenter / 10 / grid: 1 of 2 seeds failed; seed 0: RuntimeError: out of memory" in text
    assert ("- [2] cifar10 / dc / 10 / grid: 1 of 2 seeds failed, 1 of 2 seeds skipped; "
            "seed 0: ValueError: bad lr") in text
    assert "Traceback" not in text


def test_latex_is_booktabs_shaped_with_bold_best_and_escapes(table1_sweep):
    results_dir, _ = table1_sweep
    tex = (results_dir / "report" / "table1.tex").read_text()
    unescaped = re.sub(r"\\[{}]", "", tex)
    assert unescaped.count("{") == unescaped.count("}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}"):
        assert tex.count(rule) == 1
    assert tex.count(r"\cmidrule") == 5  # Coresets, Standard condensation, HCDC, Other, Reference
    columns = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
    body = tex[tex.index(r"\midrule"): tex.index(r"\bottomrule")].splitlines()[1:]
    assert all(line.count(" & ") == len(columns) - 1 for line in body if line.endswith(r"\\"))
    assert r"\textbf{0.70 $\pm$ 0.10}" in tex and r"\textbf{89.0 $\pm$ 1.0}" in tex
    assert tex.count(r"\textbf") == 2
    assert r"my\_proxy" in tex and "my_proxy" not in tex
    assert "±" not in tex and r"Perf. (\%)" in tex


def test_csv_has_one_numeric_line_per_cell(table1_sweep):
    results_dir, _ = table1_sweep
    table = pd.read_csv(results_dir / "report" / "table1.csv")
    hcdc = table[(table["condenser"] == "hcdc") & (table["metric"] == "spearman")].iloc[0]
    assert hcdc["mean"] == pytest.approx(0.7) and hcdc["std"] == pytest.approx(0.1)
    assert hcdc["n"] == 2 and bool(hcdc["best"])
    kcenter = table[(table["condenser"] == "kcenter") & (table["metric"] == "perf")].iloc[0]
    assert (kcenter["ok"], kcenter["failed"]) == (1, 1)


def test_summary_table_keeps_every_metric_and_seed_counts(table1_sweep):
    results_dir, _ = table1_sweep
    rows = markdown_rows(results_dir / "report" / "table.md")
    assert pick(rows, Condenser="K-Center")["Seeds"] == "1/2 [1]"
    assert pick(rows, Condenser="Random")["Kendall"] == "0.40 ± 0.00"
    assert [row["Condenser"] for row in rows][-1] == "Original"


def test_single_algorithm_single_ratio_skips_tables_2_3_7_with_reasons(table1_sweep):
    _, summary = table1_sweep
    reasons = {note.split(":")[0]: note for note in summary.skipped}
    assert "single ratio (ipc)" in reasons["table2"] and "several ipc values" in reasons["table2"]
    assert "grid is the only search algorithm" in reasons["table3"]
    assert "no cross-validation task" in reasons["table7"]
    assert reasons["figures"] == "figures: no figure format requested"


# --- Tables 2, 3 and 7 ----------------------------------------------------------------------


def test_table2_rows_per_ratio_with_missing_pairs_and_original_once(tmp_path):
    report(tmp_path, [
        make_row("random", ipc=10, spearman=0.2, perf=80.0),
        make_row("random", ipc=50, spearman=0.6, perf=85.0),
        make_row("hcdc", ipc=10, spearman=0.9, perf=88.0),  # hcdc never ran at ipc 50
        make_row("original", ipc=None, perf=91.0),
    ])
    rows = markdown_rows(tmp_path / "report" / "table2.md")
    assert [row["Ratio (IPC)"] for row in rows] == ["10", "50"]
    assert rows[0]["HCDC · Corr."] == "**0.90 ± 0.00**" and rows[1]["HCDC · Corr."] == "—"
    assert rows[1]["Random · Corr."] == "0.60 ± 0.00"  # alone in its row: nothing to be best of
    assert rows[0]["Original · Perf. (%)"] == "91.0 ± 0.0" and rows[1]["Original · Perf. (%)"] == ""
    table1 = markdown_rows(tmp_path / "report" / "table1.md")
    assert pick(table1, IPC="50", **{"": "Perf. (%)"})["HCDC · HCDC"] == "—"


def test_table3_time_perf_and_speedup_against_original(tmp_path):
    rows = [make_row("original", ipc=None, search_algo=algo, seed=seed, search_seconds=100.0 * scale, perf=90.0)
            for algo, scale in (("grid", 1), ("reinforce", 3)) for seed in (0, 1)]
    rows += [make_row("random", search_algo="grid", seed=0, search_seconds=10.0, perf=80.0),
             make_row("random", search_algo="grid", seed=1, search_seconds=20.0, perf=82.0),
             make_row("random", search_algo="reinforce", seed=0, search_seconds=30.0, perf=85.0),
             make_row("random", search_algo="reinforce", seed=1, status="failed", error="RuntimeError: boom")]
    summary = report(tmp_path, rows)
    table = markdown_rows(tmp_path / "report" / "table3.md")
    grid, reinforce = pick(table, **{"NAS algorithm": "Grid"}), pick(table, **{"NAS algorithm": "REINFORCE"})
    assert grid["Random · Time (sec)"] == "15.0 ± 5.0"  # one proxy: nothing is bold
    assert grid["Random · Speed-up (×)"] == "7.5 ± 2.5"  # 100/10 and 100/20, per seed
    assert grid["Original · Time (sec)"] == "100.0 ± 0.0" and grid["Original · Perf. (%)"] == "90.0 ± 0.0"
    assert reinforce["Random · Perf. (%)"] == "85.0 ± 0.0 [1]"
    assert reinforce["Random · Speed-up (×)"] == "10.0 ± 0.0 [1]"
    assert not any(note.startswith("table3") for note in summary.skipped)


def test_search_time_table_reads_time_to_within_one_point_of_the_original_best(tmp_path):
    """Original's final best-so-far test accuracies are 80 and 82 (target 81 - 1 = 80)."""
    def trace(*points):
        return json.dumps([[t, f"child{i}", acc] for i, (t, acc) in enumerate(points)])

    rows = [make_row("original", ipc=None, search_algo="graphnas", seed=0, trace=trace((1, 70.0), (10, 80.0))),
            make_row("original", ipc=None, search_algo="graphnas", seed=1, trace=trace((2, 70.0), (20, 82.0))),
            make_row("hcdc", search_algo="graphnas", seed=0, trace=trace((0.5, 75.0), (2.0, 80.5))),
            make_row("hcdc", search_algo="graphnas", seed=1, trace=trace((0.4, 79.0))),
            make_row("random", search_algo="graphnas", seed=0, trace=trace((0.1, 60.0), (0.3, 65.0))),
            make_row("random", search_algo="graphnas", seed=1, search_seconds=5.0, trace=trace((1.0, 70.0)))]
    summary = report(tmp_path, rows)
    (row,) = markdown_rows(tmp_path / "report" / "search_time.md")
    assert row["Original · Best (%)"] == "81.0 ± 1.0" and row["Original · To target (s)"] == "15.0 ± 5.0"
    assert row["HCDC · Best (%)"] == "**79.8 ± 0.8**" and row["HCDC · To target (s)"] == "2.0 ± 0.0 (1/2)"
    assert row["Random · Best (%)"] == "67.5 ± 2.5" and row["Random · To target (s)"] == "not reached"
    assert row["Random · Time (sec)"] == "12.5 ± 7.5"
    assert tmp_path / "report" / "search_time.csv" in summary.written


def test_table7_for_a_cross_validation_task_only(tmp_path):
    rows = [make_row(name, ipc=ipc, space="cv_folds", spearman=rho)
            for name, ipc, rho in (("random", 2, -0.1), ("random", 4, 0.1), ("hcdc", 2, 0.9), ("hcdc", 4, 0.95))]
    summary = report(tmp_path, rows + [make_row("original", ipc=None, space="cv_folds", spearman=1.0)])
    table = markdown_rows(tmp_path / "report" / "table7.md")
    assert [row["Method"] for row in table] == ["Random", "HCDC", "Original"]
    assert pick(table, Method="HCDC")["IPC 2 · Corr."] == "**0.90 ± 0.00**"
    assert pick(table, Method="Random")["IPC 4 · Corr."] == "0.10 ± 0.00"
    assert pick(table, Method="Original")["IPC 4 · Corr."] == "1.00 ± 0.00"
    assert any(note.startswith("table1") and "cross-validation" in note for note in summary.skipped)


def test_table7_reports_per_fold_wrappers_apart_after_what_they_wrap(tmp_path):
    rows = [make_row("per_fold", ipc=20, space="cv_folds", spearman=rho, condenser_params=json.dumps({"inner": inner}),
                     cell_id=f"per_fold-{inner}") for inner, rho in (("dm", 0.5), ("random", 0.1), ("dc", 0.3))]
    rows += [make_row("early_stopping", ipc=20, space="cv_folds", spearman=0.2),
             make_row("hcdc", ipc=20, space="cv_folds", spearman=0.7)]
    report(tmp_path, rows)
    table = markdown_rows(tmp_path / "report" / "table7.md")
    assert [row["Method"] for row in table] == ["Random (per fold)", "DC (per fold)", "DM (per fold)", "HCDC",
                                                "Early-Stopping"]
    assert pick(table, Method="DC (per fold)")["IPC 20 · Corr."] == "0.30 ± 0.00"


def test_stale_files_of_skipped_parts_are_removed(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "table3.md").write_text("from an earlier report")
    (tmp_path / "report" / "figure4.png").write_bytes(PNG_MAGIC)
    (tmp_path / "report" / "notes.txt").write_text("the user's own file")
    report(tmp_path, [make_row()])
    assert not (tmp_path / "report" / "table3.md").exists()
    assert not (tmp_path / "report" / "figure4.png").exists()
    assert (tmp_path / "report" / "notes.txt").exists()
    assert "## Skipped" in (tmp_path / "report" / "README.md").read_text()


def test_unknown_format_and_empty_sweep_are_user_errors(tmp_path):
    write_row(tmp_path, make_row())
    with pytest.raises(CondnasError, match="unknown figure format"):
        write_report(tmp_path, formats=("bmpx",))
    (tmp_path / "rows" / "cifar10-random-10-grid-0.json").unlink()
    with pytest.raises(CondnasError, match="no result rows"):
        write_report(tmp_path)


# --- figures --------------------------------------------------------------------------------

FIGURES = ("correlation", "figure2", "figure4", "figure6")


def test_every_figure_is_drawn_from_realistic_rows(tmp_path):
    rng = np.random.default_rng(0)
    rows = [make_row(name, ipc=ipc, search_algo=algo, seed=seed, spearman=float(rng.uniform(-0.2, 0.9)),
                     scores=json.dumps(rng.normal(size=4).tolist()),
                     proxy_val_acc=json.dumps(rng.uniform(20, 50, 4).tolist()) if algo == "grid" else None)
            for name, ipc in (("random", 10), ("dm", 10), ("hcdc", 10), ("hcdc", 50), ("original", None))
            for algo in ("grid", "reinforce") for seed in (0, 1)]
    rows.append(make_row("dm", search_algo="reinforce", seed=2, status="failed", error="RuntimeError: boom"))
    summary = report(tmp_path, rows, formats=("png", "pdf"))
    for name in FIGURES:
        assert (tmp_path / "report" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert (tmp_path / "report" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert tmp_path / "report" / f"{name}.png" in summary.written
        assert f"({name}.png)" in (tmp_path / "report" / "README.md").read_text()
    assert "figure6: reinforce on cifar10 records no proxy_val_acc" in summary.skipped


def test_figures_are_skipped_with_reasons_when_rows_lack_their_data(tmp_path):
    summary = report(tmp_path, [make_row(seed=seed, spearman=float("nan"), scores=None, trace=None,
                                         proxy_val_acc=None) for seed in (0, 1)], formats=("png",))
    for name in FIGURES:
        assert not (tmp_path / "report" / f"{name}.png").exists()
    assert "correlation: no ok row has a Spearman correlation" in summary.skipped
    assert "figure2: no ok row has scores and ground truth" in summary.skipped
    assert "figure4: no ok row has a search trace" in summary.skipped
    assert any(note.startswith("figure6") and "proxy_val_acc" in note for note in summary.skipped)


def test_trace_points_are_oracle_test_accuracies_of_the_best_so_far():
    row = make_row(trace=json.dumps([[0.5, "a1"], [2.0, "outside"], [3.0, "outside", 88.0], [4.0, "a3"]]))
    times, accuracies = trace_points(row)
    assert times.tolist() == [0.5, 3.0, 4.0]  # a candidate outside the oracle has no accuracy
    assert accuracies.tolist() == [71.0, 88.0, 79.0]


def test_seed_traces_are_averaged_once_every_seed_has_started():
    first = (np.array([1.0, 3.0]), np.array([50.0, 60.0]))
    second = (np.array([2.0, 4.0]), np.array([55.0, 70.0]))
    times, mean, low, high = _mean_trace([first, second])
    assert times.tolist() == [2.0, 3.0, 4.0]
    assert mean.tolist() == [52.5, 57.5, 65.0]
    assert low.tolist() == [50.0, 55.0, 60.0] and high.tolist() == [55.0, 60.0, 70.0]
