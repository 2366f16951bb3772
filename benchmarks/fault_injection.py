"""Fault injection: kill and corrupt a sweep at random points, then check that nothing is lost.

Each round starts the sweep as a subprocess, then injects one fault at a random moment:

- ``kill``: SIGKILL the whole process group mid-run;
- ``corrupt-cache``: truncate or scribble over a random cached artifact (oracle run or
  condensed set) after a kill;
- ``corrupt-row-tmp``: leave a half-written temporary row file behind, as a crash mid-write would.

After all rounds the sweep runs once more to completion, and the script checks that every
cell has exactly one row, every row is ``ok``, the merged table holds each cell once, and the
rows equal those of an undisturbed reference sweep (timings aside). It ends by printing
``N faults injected, N survived, 0 rows lost``.

Usage::

    python benchmarks/fault_injection.py --rounds 8 --seed 0
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

SWEEP = {
    "name": "faults",
    "task": {"name": "digits", "params": {"train_size": 100, "val_size": 100, "test_size": 100}},
    "space": {"name": "nasbench201", "params": {"C": 4, "N": 1}, "candidates": 6},
    "protocol": {"epochs": 2, "batch_size": 32, "lr": 0.05},
    "oracle": {"seeds": [0, 1], "rank_by": "val_loss"},
    "condensers": ["original", {"name": "random", "ipc": [4, 6]}, {"name": "herding", "ipc": [4],
                                                                  "params": {"width": 16, "depth": 2}}],
    "search_algos": ["grid"],
    "seeds": [0, 1, 2, 3, 4, 5],
}
VOLATILE = ["condense_seconds", "search_seconds", "total_seconds", "speedup", "trace", "backend", "workers",
            "host", "git_commit"]


def _command(config: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", str(config), "--results-dir", str(results),
            "--no-progress", "--device", "cpu", "--jobs", "2"]


def _kill_at_random(command: list[str], rng: random.Random, max_seconds: float) -> bool:
    """Start the sweep and SIGKILL it after a random delay; return whether it was still running."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.5, max_seconds))
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return alive


def _corrupt_cache(cache: Path, rng: random.Random) -> str | None:
    """Truncate or scribble over one cached artifact; return its name (``None``: nothing cached)."""
    artifacts = [p for p in cache.rglob("*") if p.suffix in (".pt", ".json") and not p.name.endswith(".spec.json")]
    if not artifacts:
        return None
    victim = rng.choice(artifacts)
    data = victim.read_bytes()
    if rng.random() < 0.5:
        victim.write_bytes(data[: len(data) // 2])
    else:
        victim.write_bytes(bytes(b ^ 0xFF for b in data[:64]) + data[64:])
    return f"{victim.parent.name}/{victim.name[:12]}"


def _corrupt_row_tmp(rows: Path) -> str:
    rows.mkdir(parents=True, exist_ok=True)
    (rows / ".half-written.json.tmp").write_text('{"cell_id": "x", "sta')
    return "corrupt-row-tmp"


def main() -> None:
    """Run the fault-injection rounds and print the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-kill-seconds", type=float, default=20.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="condnas-faults-"))
    config = work / "sweep.yaml"
    config.write_text(yaml.safe_dump(SWEEP))
    try:
        reference, disturbed = work / "reference", work / "disturbed"
        subprocess.run(_command(config, reference), check=True, stdout=subprocess.DEVNULL)
        expected = pd.read_parquet(reference / "faults" / "runs.parquet")
        injected = 0
        for round_index in range(args.rounds):
            fault = rng.choice(["kill", "corrupt-cache", "corrupt-row-tmp"])
            if not _kill_at_random(_command(config, disturbed), rng, args.max_kill_seconds):
                print(f"round {round_index + 1}: the sweep finished before the kill; stopping", flush=True)
                break
            description = "kill"
            injected += 1
            if fault == "corrupt-cache":
                corrupted = _corrupt_cache(disturbed / ".cache", rng)
                injected += corrupted is not None
                description += f" + corrupt-cache {corrupted}" if corrupted else ""
            elif fault == "corrupt-row-tmp":
                description += " + " + _corrupt_row_tmp(disturbed / "faults" / "rows")
                injected += 1
            done = len(list((disturbed / "faults" / "rows").glob("*.json")))
            print(f"round {round_index + 1}: {description} ({done} rows so far)", flush=True)
        subprocess.run(_command(config, disturbed), check=True, stdout=subprocess.DEVNULL)
        merged = pd.read_parquet(disturbed / "faults" / "runs.parquet")
        row_files = list((disturbed / "faults" / "rows").glob("*.json"))
        lost = len(set(expected["cell_id"]) - set(merged["cell_id"]))
        duplicated = len(merged) - merged["cell_id"].nunique()
        failed = int((merged["status"] != "ok").sum())
        mine = merged.drop(columns=VOLATILE).sort_values("cell_id").reset_index(drop=True)
        theirs = expected.drop(columns=VOLATILE).sort_values("cell_id").reset_index(drop=True)
        differing = [c for c in mine.columns if not mine[c].equals(theirs[c])]
        same = not differing
        if differing:
            print(f"columns differing from the undisturbed sweep: {differing}")
        survived = injected if (lost == 0 and duplicated == 0 and failed == 0 and same
                                and len(row_files) == len(expected)) else 0
        print(f"cells {len(expected)}, row files {len(row_files)}, duplicated {duplicated}, failed {failed}, "
              f"rows equal to the undisturbed sweep: {same}")
        print(f"{injected} faults injected, {survived} survived, {lost} rows lost")
        sys.exit(0 if survived == injected else 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
