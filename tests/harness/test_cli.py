import subprocess
import sys

import yaml

from harness.cli import main


def _condnas(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120)


def test_list_shows_registered_plugins(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "original", "grid", "digits", "quick"):
        assert name in out


def test_malformed_config_is_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [oops\n")
    result = _condnas("run", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("condnas: error:") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_plugin_is_one_clear_line(tmp_path, tiny_sweep):
    tiny_sweep["search_algos"] = ["gird"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep))
    result = _condnas("run", str(path), "--results-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "could not resolve search algorithm 'gird'" in result.stderr and "did you mean 'grid'" in result.stderr


def test_missing_dataset_root_is_one_clear_line(tmp_path, tiny_sweep):
    tiny_sweep["task"] = {"name": "npz", "params": {"root": str(tmp_path / "nowhere")}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep))
    result = _condnas("run", str(path), "--results-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr


def test_run_then_report(tmp_path, tiny_sweep):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep))
    assert main(["run", str(path), "--results-dir", str(tmp_path / "r"), "--no-progress", "--device", "cpu"]) == 0
    assert main(["report", str(tmp_path / "r" / "tiny")]) == 0
    report = tmp_path / "r" / "tiny" / "report"
    assert (report / "table.md").exists() and (report / "correlation.png").exists()
