import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from harness.config import parse_config
from harness.errors import ConfigError, PluginNotFoundError
from harness.plugin import Condenser
from harness.types import ProxyData
import torch

from harness.data import load_task
from harness.registry import CONDENSERS, SEARCH_ALGOS
from harness.spaces import get_space
from harness.types import RunContext
from harness.results import read_rows
from harness.sweep import run_sweep


def _run(config_dict, tmp_path, **kwargs):
    return run_sweep(parse_config(config_dict), results_root=tmp_path / "results", progress=False,
                     device="cpu", **kwargs)


def test_tiny_sweep_end_to_end(tiny_sweep, tmp_path):
    frame = _run(tiny_sweep, tmp_path)
    assert list(frame["status"]) == ["ok", "ok"]
    assert set(frame["condenser"]) == {"original", "random"}
    out = tmp_path / "results" / "tiny"
    assert (out / "runs.parquet").exists() and (out / "runs.csv").exists() and (out / "config.yaml").exists()
    row = frame.set_index("condenser").loc["random"]
    assert len(json.loads(row["scores"])) == 4 == row["n_candidates"]
    assert -1.0 <= row["spearman"] <= 1.0 and 0.0 <= row["perf"] <= 100.0
    assert row["regret"] == pytest.approx(row["optimal_perf"] - row["perf"])
    assert row["total_seconds"] >= row["search_seconds"] > 0
    assert frame.set_index("condenser").loc["random", "speedup"] > 0


def test_original_proxy_with_the_oracle_seed_reproduces_the_oracle(tiny_sweep, tmp_path):
    """The sanity cell: the same data, protocol and seed as an oracle run give Spearman 1.0."""
    tiny_sweep["condensers"] = ["original"]
    row = _run(tiny_sweep, tmp_path).iloc[0]
    assert row["spearman_same_seed"] == pytest.approx(1.0)
    assert json.loads(row["proxy_val_acc"]) == pytest.approx(
        _oracle_val_acc(tmp_path / "results" / ".cache", seed=0, candidates=json.loads(row["candidates"])))


def test_grid_on_original_read_from_the_oracle_equals_a_real_grid_search(tiny_sweep, tmp_path):
    """The sweep reads grid-on-original from the oracle; running the search for real gives the
    same scores and choice, and the row's search time is the oracle's measured training time."""
    tiny_sweep["condensers"] = ["original"]
    config = parse_config(tiny_sweep)
    row = _run(tiny_sweep, tmp_path).iloc[0]
    task = load_task(config.task["name"], **config.task["params"])
    space = get_space(config.space["name"], **config.space["params"],
                      in_channels=task.in_channels, num_classes=task.num_classes)
    ctx = RunContext(seed=0, device=torch.device("cpu"), protocol=config.protocol, rank_by=config.rank_by)
    whole_data = CONDENSERS.create("original").condense(task, None, ctx)
    real = SEARCH_ALGOS.create("grid").search(space, json.loads(row["candidates"]), whole_data, ctx)
    assert json.loads(row["scores"]) == pytest.approx(real.scores)
    assert row["selected"] == real.selected
    runs = _oracle_runs(tmp_path / "results" / ".cache", seed=0)
    assert row["search_seconds"] == pytest.approx(sum(run["train_seconds"] for run in runs.values()))


def _oracle_runs(cache_root, seed):
    runs = {}
    for spec_path in (cache_root / "oracle").glob("*.spec.json"):
        spec = json.loads(spec_path.read_text())
        if spec["seed"] == seed:
            runs[spec["arch"]] = json.loads(spec_path.with_name(spec_path.name.replace(".spec.json", ".json")).read_text())
    return runs


def _oracle_val_acc(cache_root, seed, candidates):
    runs = _oracle_runs(cache_root, seed)
    return [runs[a]["val_acc"] for a in candidates]


def test_rerun_skips_finished_cells_and_reuses_the_cache(tiny_sweep, tmp_path):
    _run(tiny_sweep, tmp_path)
    rows = tmp_path / "results" / "tiny" / "rows"
    mtimes = {p.name: p.stat().st_mtime_ns for p in rows.iterdir()}
    frame = _run(tiny_sweep, tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in rows.iterdir()} == mtimes
    assert len(frame) == 2


@CONDENSERS.register("always_fails")
class AlwaysFails(Condenser):
    """A condenser that raises, for testing failure handling."""

    modalities = ("image",)

    def condense(self, task, ipc, ctx):
        raise RuntimeError("boom")


def test_failing_cell_is_recorded_and_others_finish(tiny_sweep, tmp_path):
    tiny_sweep["condensers"].append({"name": "always_fails", "ipc": [4]})
    frame = _run(tiny_sweep, tmp_path).set_index("condenser")
    assert frame.loc["always_fails", "status"] == "failed"
    assert "RuntimeError: boom" in frame.loc["always_fails", "error"]
    assert (frame.drop("always_fails")["status"] == "ok").all()
    retried = _run(tiny_sweep, tmp_path, retry_failed=True).set_index("condenser")
    assert retried.loc["always_fails", "status"] == "failed" and len(retried) == 3


def test_unknown_plugin_and_missing_ipc_fail_before_any_work(tiny_sweep, tmp_path):
    tiny_sweep["condensers"] = [{"name": "randon", "ipc": [4]}]
    with pytest.raises(PluginNotFoundError, match="did you mean 'random'"):
        _run(tiny_sweep, tmp_path)
    tiny_sweep["condensers"] = ["random"]
    with pytest.raises(ConfigError, match="needs `ipc:`"):
        _run(tiny_sweep, tmp_path)


def test_all_selects_every_image_plugin(tiny_sweep, tmp_path):
    from harness.config import parse_config
    from harness.data import load_task
    from harness.sweep import expand_cells

    tiny_sweep["condensers"] = "all"
    cells, skipped = expand_cells(parse_config(tiny_sweep), load_task("digits", train_size=60, val_size=60,
                                                                     test_size=60))
    assert {"original", "random"} <= {c.condenser for c in cells} and not skipped


@pytest.mark.slow
def test_killed_sweep_resumes_without_losing_or_duplicating_rows(tiny_sweep, tmp_path):
    tiny_sweep["seeds"] = list(range(5))
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(tiny_sweep))
    command = [sys.executable, "-m", "harness.cli", "run", str(config), "--results-dir", str(tmp_path / "results"),
               "--no-progress", "--device", "cpu"]
    rows = tmp_path / "results" / "tiny" / "rows"
    process = subprocess.Popen(command, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(rows.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    written_before = len(read_rows(tmp_path / "results" / "tiny"))
    assert 0 < written_before < 10, "the kill should land mid-sweep"
    subprocess.run(command, check=True, timeout=300)
    rows_after = read_rows(tmp_path / "results" / "tiny")
    assert len(rows_after) == 10 and all(r["status"] == "ok" for r in rows_after.values())
    assert not list(rows.glob(".*.tmp"))


@CONDENSERS.register("random_twice")
class RandomTwice(Condenser):
    """Builds on `random` through ctx.proxy_from, as HCDC builds on DC."""

    modalities = ("image",)

    def condense(self, task, ipc, ctx):
        upstream = ctx.proxy_from("random", {}, task, ipc)
        return ProxyData(upstream.train, upstream.val, {"upstream_seconds": upstream.meta["condense_seconds"]})


def test_upstream_proxy_comes_from_the_shared_cache(tiny_sweep, tmp_path):
    tiny_sweep["condensers"] = [{"name": "random", "ipc": [4]}, {"name": "random_twice", "ipc": [4]}]
    frame = _run(tiny_sweep, tmp_path).set_index("condenser")
    assert (frame["status"] == "ok").all()
    condensed = list((tmp_path / "results" / ".cache" / "condensed").glob("*.pt"))
    assert len(condensed) == 2  # random once (shared), random_twice once
    assert frame.loc["random_twice", "scores"] == frame.loc["random", "scores"]
    assert frame.loc["random_twice", "condense_seconds"] >= frame.loc["random", "condense_seconds"]


def test_trace_carries_the_whole_data_test_accuracy_of_children_outside_the_candidates(tmp_path):
    """GraphNAS' children are not candidates: the sweep trains each trace child on the whole
    train split under every oracle seed (cached with the oracle runs) for Figure 4."""
    pytest.importorskip("torch_geometric")
    import search_algos.graphnas  # noqa: F401  (registers graphnas without the installed entry point)

    config = {
        "name": "graphnas-tiny",
        "task": {"name": "csbm", "params": {"num_nodes": 90, "num_features": 8, "avg_degree": 4.0,
                                            "train_per_class": 8, "val_per_class": 8}},
        "space": {"name": "graphnas", "params": {"heads": [1, 2], "hidden": [4, 8], "pool_dim": 8}, "candidates": 3},
        "protocol": {"epochs": 2, "lr": 0.01},
        "oracle": {"seeds": [0, 1]},
        "condensers": ["original", {"name": "random", "ipc": [4]}],
        "search_algos": [{"name": "graphnas", "params": {"evaluations": 4, "controller_hidden": 8}}],
    }
    frame = _run(config, tmp_path)
    assert list(frame["status"]) == ["ok", "ok"], list(frame["error"])
    oracle = {}
    for spec_path in (tmp_path / "results" / ".cache" / "oracle").glob("*.spec.json"):
        spec = json.loads(spec_path.read_text())
        run = json.loads(spec_path.with_name(spec_path.name.replace(".spec.json", ".json")).read_text())
        oracle.setdefault(spec["arch"], []).append(run["test_acc"])
    for _, row in frame.iterrows():
        trace = json.loads(row["trace"])
        assert len(trace) == 4 and all(len(entry) == 3 for entry in trace)
        for _, arch, test_acc in trace:
            assert len(oracle[arch]) == 2 and test_acc == pytest.approx(sum(oracle[arch]) / 2)
        assert row["own_choice"] in (trace[-1][1], None)
    candidates = json.loads(frame.iloc[0]["candidates"])
    traced = {arch for trace in frame["trace"] for _, arch, _ in json.loads(trace)}
    assert set(oracle) == set(candidates) | traced  # each child trained once per oracle seed
