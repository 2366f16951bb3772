"""The "Adding a condenser" guide's template works as written: installed, listed, swept."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-condenser.md"


def _write_guide_files(target: Path) -> list[str]:
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S)
    for name, body in blocks:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return [name for name, _ in blocks]


@pytest.mark.slow
def test_guide_template_installs_lists_and_runs_in_a_sweep(tmp_path, tiny_sweep):
    package, site = tmp_path / "plugin", tmp_path / "site"
    names = _write_guide_files(package)
    assert {"pyproject.toml", "condnas_first_k/__init__.py", "tests/test_first_k.py"} <= set(names)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(package)], check=True, timeout=300)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}

    listing = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True,
                             env=env, check=True, timeout=120)
    assert re.search(r"^\s+first_k\s+\[image\]", listing.stdout, flags=re.M)

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(package / "tests")], capture_output=True, text=True, env=env, timeout=300,
                           cwd=package)
    assert tests.returncode == 0, tests.stdout + tests.stderr

    tiny_sweep["condensers"] = [{"name": "first_k", "ipc": [4], "params": {"offset": 1}}]
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(tiny_sweep))
    subprocess.run([sys.executable, "-m", "harness.cli", "run", str(config), "--results-dir", str(tmp_path / "r"),
                    "--no-progress", "--device", "cpu"], env=env, check=True, timeout=300)
    rows = list((tmp_path / "r" / "tiny" / "rows").glob("first_k-*.json"))
    assert len(rows) == 1 and '"status": "ok"' in rows[0].read_text()
