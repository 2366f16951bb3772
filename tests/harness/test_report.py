"""Tests of harness.report: tables computed by hand from synthetic rows, and figure files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.errors import CondnasError
from harness.report import ReportSummary, write_report
from harness.results import ROW_COLUMNS, write_row

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRUE_VAL_ACC = [60.0, 70.0, 65.0, 80.0]


def make_row(condenser: str = "dc", ipc: int | None = 10, search_algo: str = "random",
             seed: int = 0, status: str = "ok", **values: Any) -> dict[str, Any]:
    """A complete result row; ``values`` override its metrics (or ``error``)."""
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(
        sweep="demo", task="cifar10", space="toy", condenser=condenser, ipc=ipc,
        search_algo=search_algo, seed=seed, status=status,
        cell_id=f"{condenser}-{ipc}-{search_algo}-{seed}",
        condenser_params=json.dumps({}), search_params=json.dumps({}),
        n_candidates=4, rank_by="val_acc", topk=2,
    )
    if status == "ok":
        row.update(
            spearman=0.5, kendall=0.4, spearman_same_seed=0.5, topk_overlap=0.5,
            noise_ceiling_spearman=0.9, noise_ceiling_kendall=0.8, selected="c3", perf=70.0,
            optimal="c3", optimal_perf=75.0, regret=5.0, condense_seconds=10.0,
            search_seconds=20.0, total_seconds=30.0, speedup=4.0,
            candidates=json.dumps(["c0", "c1", "c2", "c3"]),
            scores=json.dumps([0.1, 0.3, 0.2, 0.4]),
            true_val_acc=json.dumps(TRUE_VAL_ACC),
            proxy_val_acc=json.dumps([30.0, 42.0, 35.0, 50.0]),
        )
    row.update(values)
    return row


def write_rows(results_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as row files of a sweep in ``results_dir`` and return it."""
    for row in rows:
        write_row(results_dir, row)
    return results_dir


def markdown_rows(text: str) -> list[dict[str, str]]:
    """The Markdown table's body as dicts keyed by the header."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, body = split_cells(lines[0]), lines[2:]
    return [dict(zip(header, split_cells(line), strict=True)) for line in body]


def split_cells(line: str) -> list[str]:
    """The cells of one Markdown table line."""
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def find(rows: list[dict[str, str]], condenser: str) -> dict[str, str]:
    """The one table row of ``condenser``."""
    (row,) = [row for row in rows if row["Condenser"] == condenser]
    return row


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportSummary]:
    """Two seeds of dc, one of random_subset (plus a failure), an all-failed kip, original."""
    results_dir = write_rows(tmp_path_factory.mktemp("sweep"), [
        make_row(seed=0, spearman=0.6, kendall=0.5, perf=70.0, regret=5.0, search_seconds=10.0),
        make_row(seed=1, spearman=0.8, kendall=0.7, perf=72.0, regret=3.0, search_seconds=20.0),
        make_row("random_subset", seed=0, spearman=0.3, perf=68.0, proxy_val_acc=None),
        make_row("random_subset", seed=1, status="failed",
                 error="RuntimeError: out of memory\nTraceback"),
        make_row("kip", seed=0, status="failed", error="ValueError: bad kernel"),
        make_row("kip", seed=1, status="failed", error="ValueError: later error"),
        make_row("original", ipc=None, seed=0, spearman=0.95, perf=75.0, speedup=1.0),
    ])
    return results_dir, write_report(results_dir, formats=("png",))


def test_table_cells_are_mean_and_population_std_over_seeds(sweep):
    results_dir, _ = sweep
    row = find(markdown_rows((results_dir / "report" / "table.md").read_text()), "dc")
    assert row["Seeds"] == "2"
    assert row["Spearman"] == "0.70 ± 0.10"
    assert row["Kendall"] == "0.60 ± 0.10"
    assert row["Perf. (%)"] == "71.0 ± 1.0"
    assert row["Regret"] == "4.0 ± 1.0"
    assert row["Search (s)"] == "15.0 ± 5.0"
    assert row["Condense (s)"] == "10.0 ± 0.0"
    assert row["Noise ceiling (Spearman)"] == "0.90 ± 0.00"


def test_single_seed_reads_zero_std(sweep):
    results_dir, _ = sweep
    row = find(markdown_rows((results_dir / "report" / "table.md").read_text()), "random_subset")
    assert row["Spearman"] == "0.30 ± 0.00"


def test_rows_sorted_with_original_last_and_full_ipc(sweep):
    results_dir, _ = sweep
    rows = markdown_rows((results_dir / "report" / "table.md").read_text())
    assert [row["Condenser"] for row in rows] == ["dc", "kip", "random_subset", "original"]
    assert rows[-1]["IPC"] == "full"


def test_header_line_names_sweep_task_rank_by_and_candidates(sweep):
    results_dir, _ = sweep
    first = (results_dir / "report" / "table.md").read_text().splitlines()[0]
    for part in ("demo", "cifar10", "val_acc", "**candidates:** 4"):
        assert part in first


def test_failed_cells_counted_with_first_error_in_notes(sweep):
    results_dir, _ = sweep
    text = (results_dir / "report" / "table.md").read_text()
    rows = markdown_rows(text)
    assert find(rows, "dc")["Failed"] == "0"
    assert find(rows, "kip")["Failed"] == "2 [1]"
    assert find(rows, "random_subset")["Failed"] == "1 [2]"
    assert find(rows, "random_subset")["Seeds"] == "1"
    assert "- [1] cifar10 / kip / 10 / random — seed 0: ValueError: bad kernel" in text
    assert ("- [2] cifar10 / random_subset / 10 / random — seed 1: RuntimeError: out of memory"
            in text)
    assert "Traceback" not in text
    assert "later error" not in text


def test_all_failed_group_shows_dashes(sweep):
    results_dir, _ = sweep
    kip = find(markdown_rows((results_dir / "report" / "table.md").read_text()), "kip")
    assert kip["Seeds"] == "0"
    assert all(kip[label] == "—" for label in ("Spearman", "Perf. (%)", "Speed-up"))


def test_no_failed_column_without_failures(tmp_path):
    write_rows(tmp_path, [make_row(seed=0), make_row(seed=1)])
    write_report(tmp_path, formats=())
    (row,) = markdown_rows((tmp_path / "report" / "table.md").read_text())
    assert "Failed" not in row


def test_latex_is_booktabs_with_bold_best_and_escapes(sweep):
    results_dir, _ = sweep
    tex = (results_dir / "report" / "table.tex").read_text()
    unescaped = re.sub(r"\\[{}]", "", tex)
    assert unescaped.count("{") == unescaped.count("}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(rule) == 1
    assert r"\textbf{0.70 $\pm$ 0.10}" in tex  # best Spearman among condensers, not original
    assert r"\textbf{71.0 $\pm$ 1.0}" in tex
    assert tex.count(r"\textbf") == 2
    assert r"random\_subset" in tex and "random_subset" not in tex
    assert "±" not in tex
    assert r"Perf. (\%)" in tex


def test_csv_holds_numeric_means_and_stds(sweep):
    import pandas as pd

    results_dir, _ = sweep
    table = pd.read_csv(results_dir / "report" / "table.csv").set_index("condenser")
    assert table.loc["dc", "spearman_mean"] == pytest.approx(0.7)
    assert table.loc["dc", "spearman_std"] == pytest.approx(0.1)
    assert table.loc["kip", "failed"] == 2


def test_figures_are_png_files_and_listed(sweep):
    results_dir, summary = sweep
    report_dir = results_dir / "report"
    for name in ("correlation.png", "scatter.png"):
        path = report_dir / name
        assert path in summary.written
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert {report_dir / f"table.{ext}" for ext in ("md", "csv", "tex")} <= set(summary.written)


def test_summary_names_condensers_without_proxy_and_failed_bars(sweep):
    _, summary = sweep
    assert any("scatter" in note and "random_subset" in note for note in summary.skipped)
    assert any("correlation" in note and "kip" in note for note in summary.skipped)


def test_scatter_skipped_without_proxy_val_acc(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "scatter.png").write_bytes(PNG_MAGIC)  # from an earlier report
    write_rows(tmp_path, [make_row(seed=0, proxy_val_acc=None)])
    summary = write_report(tmp_path, formats=("png", "pdf"))
    assert "scatter: no proxy_val_acc in rows" in summary.skipped
    assert not (tmp_path / "report" / "scatter.png").exists()
    assert (tmp_path / "report" / "correlation.pdf").read_bytes()[:5] == b"%PDF-"


def test_unknown_format_and_empty_sweep_are_user_errors(tmp_path):
    write_rows(tmp_path, [make_row()])
    with pytest.raises(CondnasError, match="unknown figure format"):
        write_report(tmp_path, formats=("bmpx",))
    (tmp_path / "rows" / "dc-10-random-0.json").unlink()
    with pytest.raises(CondnasError, match="no result rows"):
        write_report(tmp_path)
