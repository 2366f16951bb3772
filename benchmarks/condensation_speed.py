"""Condensation speed: seconds per iteration of each condenser of a preset, in one run.

Each condenser of the preset condenses the preset's task once (seed 0, its first ipc, the
preset's parameters); iterative condensers report the seconds per iteration. Every time is
also given as a multiple of training one candidate on the original data with the preset's
protocol (measured in the same run), the unit a proxy has to save to pay for itself.

Usage::

    python benchmarks/condensation_speed.py --preset quick
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from _preset import load_preset
from harness.registry import CONDENSERS
from harness.types import RunContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick", help="a preset name or a config path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    preset = load_preset(args.preset)
    config, task = preset.config, preset.task
    ctx = RunContext(seed=0, device=torch.device("cpu"), protocol=config.protocol, rank_by=config.rank_by)
    unit = min(_seconds(lambda: preset.space.train_candidate(preset.candidates[0], task.train, {}, config.protocol,
                                                             0, ctx.device)) for _ in range(2))  # the first warms up
    print(f"{args.preset}: one candidate trains on the original data in {unit:.2f} s")
    for entry in config.condensers:
        condenser = CONDENSERS.create(entry.name, **entry.params)
        start = time.perf_counter()
        proxy = condenser.condense(task, entry.ipcs[0], ctx)
        seconds = time.perf_counter() - start
        iterations = proxy.meta.get("iterations")
        per_iteration = f", {1000 * seconds / iterations:.1f} ms per iteration ({iterations})" if iterations else ""
        print(f"  {entry.name:10s} ipc {entry.ipcs[0]}: {seconds:7.2f} s = {seconds / unit:6.2f} candidate "
              f"trainings{per_iteration}")


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
