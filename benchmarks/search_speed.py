"""Search speed: a search algorithm's time on each proxy of a preset against the original data.

Each condenser of the preset condenses the task once (seed 0, its first ipc); each search
algorithm of the preset then searches the preset's candidates on every proxy, once per
trainer (``CONDNAS_TRAINER``), the trainers interleaved. Printed: the search seconds and the
speed-up over searching the ``original`` data with the same trainer, all measured in one run.

Usage::

    python benchmarks/search_speed.py --preset quick --trainers sequential auto
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from _preset import load_preset
from harness.batched_training import TRAINER_ENV, TRAINERS
from harness.config import PluginEntry
from harness.registry import CONDENSERS, SEARCH_ALGOS
from harness.types import RunContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick", help="a preset name or a config path")
    parser.add_argument("--trainers", nargs="+", default=["sequential", "auto"], choices=TRAINERS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    preset = load_preset(args.preset)
    config, task = preset.config, preset.task
    ctx = RunContext(seed=0, device=torch.device("cpu"), protocol=config.protocol, rank_by=config.rank_by)
    entries = list(config.condensers)
    if not any(entry.name == "original" for entry in entries):
        entries.insert(0, PluginEntry("original"))
    proxies = {entry.name: CONDENSERS.create(entry.name, **entry.params).condense(task, entry.ipcs[0], ctx)
               for entry in entries}
    for algo_entry in config.search_algos:
        seconds = {(trainer, name): 0.0 for trainer in args.trainers for name in proxies}
        for name, proxy in proxies.items():
            for trainer in args.trainers:
                os.environ[TRAINER_ENV] = trainer
                algo = SEARCH_ALGOS.create(algo_entry.name, **algo_entry.params)
                start = time.perf_counter()
                algo.search(preset.space, preset.candidates, proxy, ctx)
                seconds[trainer, name] = time.perf_counter() - start
        print(f"{args.preset}, {algo_entry.name} over {len(preset.candidates)} candidates "
              f"(seconds, speed-up over original with the same trainer):")
        for name in proxies:
            cells = "   ".join(f"{trainer} {seconds[trainer, name]:7.2f} s "
                               f"{seconds[trainer, 'original'] / seconds[trainer, name]:6.1f}×"
                               for trainer in args.trainers)
            print(f"  {name:10s} {cells}")


if __name__ == "__main__":
    main()
