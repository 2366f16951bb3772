"""The ``condnas`` command: ``run`` a sweep, ``report`` on its results, ``list`` plugins."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness.errors import CondnasError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``condnas`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CondnasError as exc:
        print(f"condnas: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="condnas", description="NAS on condensed data: sweeps and reports.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run (or resume) a sweep from a YAML file or a preset name")
    run.add_argument("config", help="a YAML config path, or a preset name (see `condnas list`)")
    run.add_argument("--results-dir", default="results", help="where sweeps write (default: results)")
    run.add_argument("--cache-dir", default=None, help="shared-stage cache (default: RESULTS_DIR/.cache)")
    run.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default: 1)")
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when present)")
    run.add_argument("--backend", default="loky", choices=["loky", "dask", "ray"],
                     help="where jobs run: loky (this machine, default), dask, ray")
    run.add_argument("--scheduler", default=None,
                     help="dask scheduler address, e.g. tcp://host:8786 (default: a local dask cluster)")
    run.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=_run)

    report = commands.add_parser("report", help="write tables and figures for a results directory")
    report.add_argument("results", help="a sweep's results directory, e.g. results/quick")
    report.set_defaults(handler=_report)

    listing = commands.add_parser("list", help="list registered condensers, search algorithms, data, presets")
    listing.set_defaults(handler=_list)
    return parser


def _run(args: argparse.Namespace) -> int:
    from harness.config import load_config
    from harness.sweep import run_sweep

    config = load_config(args.config)
    start = time.perf_counter()
    frame = run_sweep(config, results_root=args.results_dir, n_jobs=args.jobs, retry_failed=args.retry_failed,
                      progress=not args.no_progress, cache_dir=args.cache_dir, device=args.device,
                      backend=args.backend, scheduler=args.scheduler)
    counts = frame["status"].value_counts().to_dict()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    out = Path(args.results_dir) / config.name
    print(f"sweep {config.name!r}: {len(frame)} cells ({summary}) in {time.perf_counter() - start:.1f} s -> {out}")
    stages = out / "stages.json"
    if stages.exists():
        seconds = json.loads(stages.read_text())
        print("  wall seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    failed = frame[frame["status"] == "failed"]
    for _, row in failed.head(3).iterrows():
        print(f"  failed {row['cell_id']}: {row['error']}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    summary = write_report(Path(args.results))
    for path in summary.written:
        print(f"wrote {path}")
    for reason in summary.skipped:
        print(f"skipped {reason}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from harness.config import list_presets
    from harness.data import list_datasets
    from harness.registry import CONDENSERS, SEARCH_ALGOS
    from harness.spaces import list_spaces

    for title, registry in (("condensers", CONDENSERS), ("search algorithms", SEARCH_ALGOS)):
        print(f"{title}:")
        for name in registry.names():
            plugin = registry.get(name)
            print(f"  {name:<12} [{', '.join(plugin.modalities)}] {_summary(plugin.__doc__)}")
    print(f"datasets: {', '.join(list_datasets())}")
    print(f"spaces: {', '.join(list_spaces())}")
    print(f"presets: {', '.join(list_presets())}")
    return 0


def _summary(doc: str | None, width: int = 90) -> str:
    """The first sentence of a docstring on one line, cut to ``width`` characters."""
    words = " ".join((doc or "").strip().split("\n\n")[0].split())
    sentence = words.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
