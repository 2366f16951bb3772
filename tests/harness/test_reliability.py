"""Faults a long sweep must survive: backends, concurrency, divergence, bad input, determinism."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

from harness.config import parse_config
from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.registry import CONDENSERS
from harness.results import read_rows
from harness.sweep import run_sweep
from harness.types import ProxyData, Split

# Columns that legitimately differ between two runs of the same cells.
_VOLATILE = {"condense_seconds", "search_seconds", "total_seconds", "speedup", "trace", "backend", "workers",
             "host", "git_commit"}


def _same_rows(*frames):
    stable = [f.drop(columns=sorted(_VOLATILE)).reset_index(drop=True) for f in frames]
    return all(stable[0].equals(other) for other in stable[1:])


def _run(config, root, **kwargs):
    return run_sweep(parse_config(config), results_root=root, progress=False, device="cpu", **kwargs)


def test_same_config_and_seed_give_identical_rows(tiny_sweep, tmp_path):
    first = _run(tiny_sweep, tmp_path / "a")
    second = _run(tiny_sweep, tmp_path / "b")
    assert _same_rows(first, second)


@pytest.mark.slow
def test_loky_and_dask_give_the_rows_of_a_sequential_run(tiny_sweep, tmp_path):
    sequential = _run(tiny_sweep, tmp_path / "seq")
    loky = _run(tiny_sweep, tmp_path / "loky", n_jobs=2)
    dask = _run(tiny_sweep, tmp_path / "dask", n_jobs=2, backend="dask")
    assert _same_rows(sequential, loky, dask)
    assert dask["backend"].str.startswith("dask:tcp://").all() and (dask["workers"] == 2).all()


@CONDENSERS.register("nan_images")
class NanImages(Condenser):
    """Returns a proxy of NaN images: training on it diverges."""

    modalities = ("image",)

    def condense(self, task, ipc, ctx):
        bad = Split(torch.full_like(task.train.x[: 3 * ipc], float("nan")), task.train.y[: 3 * ipc])
        return ProxyData(bad, bad)


def test_diverging_cell_is_recorded_as_failed_and_others_finish(tiny_sweep, tmp_path):
    tiny_sweep["condensers"].append({"name": "nan_images", "ipc": [4]})
    frame = _run(tiny_sweep, tmp_path).set_index("condenser")
    assert frame.loc["nan_images", "status"] == "failed"
    assert "diverged" in frame.loc["nan_images", "error"]
    assert (frame.drop("nan_images")["status"] == "ok").all()


def test_explicit_candidates_and_invalid_architecture(tiny_sweep, tmp_path):
    archs = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|",
             "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|skip_connect~2|",
             "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"]
    tiny_sweep["space"]["candidates"] = archs
    frame = _run(tiny_sweep, tmp_path)
    assert json.loads(frame["candidates"][0]) == archs
    tiny_sweep["space"]["candidates"] = archs[:2] + ["|conv~0|+|"]
    with pytest.raises(ConfigError, match="arch"):
        _run(tiny_sweep, tmp_path / "bad")


def test_invalid_architecture_is_one_line_in_the_cli(tiny_sweep, tmp_path):
    tiny_sweep["space"]["candidates"] = ["|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep))
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--results-dir",
                             str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("condnas: error:")


def test_rows_carry_provenance(tiny_sweep, tmp_path):
    row = _run(tiny_sweep, tmp_path).iloc[0]
    versions = json.loads(row["versions"])
    assert versions["torch"] == torch.__version__ and "python" in versions
    assert len(row["config_hash"]) == 12 and len(row["condenser_source"]) == 12 and len(row["search_source"]) == 12
    assert row["host"] and row["device"] == "cpu"


@pytest.mark.slow
def test_two_sweeps_writing_one_results_directory(tiny_sweep, tmp_path):
    tiny_sweep["seeds"] = [0, 1, 2]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep))
    command = [sys.executable, "-m", "harness.cli", "run", str(path), "--results-dir", str(tmp_path / "r"),
               "--no-progress", "--device", "cpu"]
    processes = [subprocess.Popen(command) for _ in range(2)]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    rows = read_rows(tmp_path / "r" / "tiny")
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows.values())
    import pandas as pd

    merged = pd.read_parquet(tmp_path / "r" / "tiny" / "runs.parquet")
    assert sorted(merged["cell_id"]) == sorted(rows)
