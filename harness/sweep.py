"""Run a sweep: expand a config into cells, compute the shared stages once, run the cells.

Stages (see DESIGN.md):

1. load the task, sample the candidates, compute the oracle (cached per run);
2. condense once per (condenser, params, ipc, seed) (cached);
3. search on each cell's proxy (grid on ``original`` under an oracle seed is that oracle run,
   read, not retrained);
4. score the search against the oracle and write the cell's row atomically.

Rerunning a sweep skips every cell that already has a row (failed cells too, unless
``retry_failed``), so a killed sweep resumes where it stopped with nothing lost or repeated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from harness import metrics, parallel, provenance
from harness.batched_training import group_size
from harness.cache import Cache, canonical_json, content_key
from harness.config import PluginEntry, SweepConfig
from harness.data import load_task
from harness.errors import ConfigError, CondnasError
from harness.fileio import atomic_write_text
from harness.oracle import (ORACLE_STAGE, OracleTable, benchmark_oracle, compute_oracle, oracle_groups,
                            oracle_run_spec, train_oracle_runs)
from harness.parallel import run_jobs
from harness.registry import CONDENSERS, SEARCH_ALGOS
from harness.results import merge_rows, read_rows, write_row
from harness.spaces import get_space
from harness.training import default_device
from harness.types import ProxyData, RunContext, SearchResult, Split, Task, TrainProtocol

CONDENSE_STAGE = "condensed"


@dataclass(frozen=True)
class Cell:
    """One unit of a sweep: a condenser at an ipc, a search algorithm and a seed."""

    condenser: str
    condenser_params: str  # canonical JSON, so cells are hashable
    ipc: int | None
    search_algo: str
    search_params: str
    seed: int

    @property
    def cell_id(self) -> str:
        """A readable, unique id: ``random-ipc10-grid-s0-<hash>``."""
        ipc = "full" if self.ipc is None else f"ipc{self.ipc}"
        digest = content_key("cell", dataclasses.asdict(self))[:8]
        return f"{self.condenser}-{ipc}-{self.search_algo}-s{self.seed}-{digest}"

    def condense_job(self) -> tuple[str, str, int | None, int]:
        """The shared condensation this cell needs."""
        return (self.condenser, self.condenser_params, self.ipc, self.seed)


@dataclass(frozen=True)
class Setup:
    """Everything a worker needs to rebuild a sweep's task, space and context (picklable)."""

    task: dict[str, Any]
    space: dict[str, Any]
    protocol: dict[str, Any]
    rank_by: str
    cache_root: str
    device: str
    budget_seconds: float | None

    def context(self, seed: int) -> RunContext:
        """A :class:`RunContext` for one plugin call."""
        return RunContext(seed=seed, device=torch.device(self.device),
                          protocol=TrainProtocol(**self.protocol), cache=Cache(self.cache_root),
                          rank_by=self.rank_by, budget_seconds=self.budget_seconds,
                          upstream=functools.partial(_upstream_proxy, self, seed))


@functools.lru_cache(maxsize=4)
def _load_task_cached(task_json: str) -> Task:
    spec = json.loads(task_json)
    return load_task(spec["name"], **spec["params"])


def task_of(setup: Setup) -> Task:
    """The setup's task, loaded once per process."""
    return _load_task_cached(canonical_json(setup.task))


def space_of(setup: Setup) -> Any:
    """The setup's search space."""
    return get_space(setup.space["name"], **setup.space["params"])


def run_sweep(config: SweepConfig, results_root: str | Path = "results", n_jobs: int = 1,
              retry_failed: bool = False, progress: bool = True, cache_dir: str | Path | None = None,
              device: str | None = None, backend: str = "loky", scheduler: str | None = None) -> pd.DataFrame:
    """Run (or resume) a sweep and return its merged rows.

    Args:
        results_root: rows go to ``results_root/<config.name>/``.
        n_jobs: worker processes (joblib loky); 1 runs everything in this process.
        retry_failed: run cells whose previous attempt failed again.
        cache_dir: the shared-stage cache (default ``results_root/.cache``).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when present).
        backend: ``"loky"``, ``"dask"`` or ``"ray"`` (see :func:`harness.parallel.backend`).
        scheduler: the dask scheduler address (default: a local cluster of ``n_jobs`` workers).
    """
    results_dir = Path(results_root) / config.name
    results_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results_dir / "config.yaml", yaml.safe_dump(config.as_dict(), sort_keys=False))
    task = load_task(config.task["name"], **config.task["params"])
    space = get_space(config.space["name"], **config.space["params"],
                      in_channels=task.in_channels, num_classes=task.num_classes)
    if hasattr(space, "check_task"):
        space.check_task(task)  # a space that suits only some tasks (e.g. cv_folds) refuses the others
    setup = Setup(task=config.task, space={"name": config.space["name"], "params": space.describe()},
                  protocol=config.protocol.as_dict(), rank_by=config.rank_by,
                  cache_root=str(cache_dir or Path(results_root) / ".cache"),
                  device=device or str(default_device()), budget_seconds=config.budget_seconds)
    candidates = _candidates(config, space)
    cells, skipped = expand_cells(config, task)
    done = read_rows(results_dir)
    pending = [c for c in cells if c.cell_id not in done
               or (retry_failed and done[c.cell_id]["status"] == "failed")]
    with parallel.backend(backend, n_jobs, scheduler) as backend_label:
        row_base = _row_base(config, setup, backend_label, n_jobs, candidates)
        for cell, reason in skipped:
            write_row(results_dir, {**row_base, **_cell_columns(cell), "status": "skipped", "error": reason})
        if pending:
            _run_pending(config, setup, candidates, pending, row_base, results_dir, n_jobs, progress)
    return merge_rows(results_dir, keep={c.cell_id for c in cells} | {c.cell_id for c, _ in skipped})


def _candidates(config: SweepConfig, space: Any) -> list[str]:
    if isinstance(config.candidates, list):
        for arch in config.candidates:
            space.canonical(arch)  # raises ConfigError naming the expected format
        return list(config.candidates)
    return space.sample(config.candidates, config.sample_seed,
                        drop_disconnected=config.drop_disconnected, drop_isomorphs=config.drop_isomorphs)


def _run_pending(config: SweepConfig, setup: Setup, candidates: list[str], pending: list[Cell],
                 row_base: dict[str, Any], results_dir: Path, n_jobs: int, progress: bool) -> None:
    clock = _StageClock()
    with clock("oracle"):
        oracle = _oracle_stage(config, setup, candidates, n_jobs, progress)
    with clock("condense"):
        condensed = _condense_stage(setup, pending, n_jobs, progress)
    with clock("search"):
        job = functools.partial(_run_cell, setup, candidates, oracle, config.topk, row_base, str(results_dir),
                                config.benchmark_file is None)
        jobs = [(cell, condensed[cell.condense_job()]) for cell in pending]
        _drain(run_jobs(job, jobs, n_jobs), len(jobs), "cells", progress)
    atomic_write_text(results_dir / "stages.json", json.dumps(clock.seconds, indent=1))


class _StageClock:
    """Wall seconds per stage of this invocation (written to ``stages.json``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[stage] = time.perf_counter() - start


def expand_cells(config: SweepConfig, task: Task) -> tuple[list[Cell], list[tuple[Cell, str]]]:
    """All cells of a sweep, and the cells skipped with the reason (unsupported modality).

    Raises:
        ConfigError: an unknown plugin or parameter, or a condenser given no ipc.
    """
    condensers = _resolve_entries(config.condensers, CONDENSERS, task)
    algos = _resolve_entries(config.search_algos, SEARCH_ALGOS, task)
    cells, skipped = [], []
    for entry in condensers:
        condenser = CONDENSERS.create(entry.name, **entry.params)
        ipcs = entry.ipcs if condenser.uses_ipc else [None]
        if condenser.uses_ipc and None in ipcs:
            raise ConfigError(f"condenser {entry.name!r} needs `ipc:` (images per class), e.g. ipc: [10]")
        for algo_entry in algos:
            algo = SEARCH_ALGOS.create(algo_entry.name, **algo_entry.params)
            reason = condenser.unsupported_reason(task) or algo.unsupported_reason(task)
            for ipc in ipcs:
                for seed in config.seeds:
                    cell = Cell(entry.name, canonical_json(condenser.params), ipc,
                                algo_entry.name, canonical_json(algo.params), seed)
                    (skipped.append((cell, reason)) if reason else cells.append(cell))
    return cells, skipped


def _resolve_entries(entries: list[PluginEntry] | str, registry: Any, task: Task) -> list[PluginEntry]:
    if entries != "all":
        return entries
    supported = [name for name in registry.names() if registry.get(name).unsupported_reason(
        registry.create(name), task) is None]
    default_ipc = [10]
    return [PluginEntry(name=name, ipcs=default_ipc) for name in supported]


def _oracle_stage(config: SweepConfig, setup: Setup, candidates: list[str], n_jobs: int,
                  progress: bool) -> OracleTable:
    if config.benchmark_file:
        from harness.spaces.nasbench201_benchmark import read_benchmark

        table = read_benchmark(config.benchmark_file, config.benchmark_dataset, candidates)
        return benchmark_oracle(candidates, {a: {"val_acc": v["valid_acc"], "test_acc": v["test_acc"]}
                                             for a, v in table.items()})
    protocol = TrainProtocol(**setup.protocol)
    size = _oracle_group_size(setup, protocol)

    def spec_of(arch: str, seed: int) -> dict[str, Any]:
        return oracle_run_spec(setup.task, setup.space, protocol, arch, seed, size)

    def run_missing(missing: list[tuple[str, int]]) -> dict:
        groups = oracle_groups(candidates, config.oracle_seeds, missing, space_of(setup), task_of(setup), protocol,
                               torch.device(setup.device))
        results = _drain(run_jobs(functools.partial(_oracle_job, setup), [(g,) for g in groups], n_jobs),
                         len(groups), "oracle", progress)
        wanted = set(missing)
        return {run: value for group in results for run, value in group.items() if run in wanted}

    return compute_oracle(candidates, config.oracle_seeds, spec_of, Cache(setup.cache_root), run_missing)


def _oracle_job(setup: Setup, group: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, float]]:
    """Train a group of oracle runs and cache each (keeping a value another process cached first)."""
    protocol = TrainProtocol(**setup.protocol)
    cache = Cache(setup.cache_root)
    trained = train_oracle_runs(task_of(setup), space_of(setup), protocol, group, torch.device(setup.device))
    size = _oracle_group_size(setup, protocol)
    return {(arch, seed): cache.get_or_compute(ORACLE_STAGE, oracle_run_spec(setup.task, setup.space, protocol,
                                                                             arch, seed, size), lambda v=value: v)
            for (arch, seed), value in trained.items()}


def _oracle_group_size(setup: Setup, protocol: TrainProtocol) -> int:
    return group_size(space_of(setup), task_of(setup).train, protocol.batch_size, torch.device(setup.device))


def condense_spec(setup: Setup, condenser: Any, ipc: int | None, seed: int) -> dict[str, Any]:
    """The cache spec of one condensation (the plugin's source hash included)."""
    return {"task": setup.task, "condenser": condenser.describe(), "source": condenser.source_hash(),
            "protocol": setup.protocol, "ipc": ipc, "seed": seed}


def _condense_stage(setup: Setup, cells: list[Cell], n_jobs: int, progress: bool) -> dict[tuple, dict[str, Any]]:
    jobs = sorted({cell.condense_job() for cell in cells}, key=str)
    outcomes = _drain(run_jobs(functools.partial(_condense_job, setup), jobs, n_jobs),
                      len(jobs), "condense", progress)
    return dict(outcomes)


def _condense_job(setup: Setup, name: str, params_json: str, ipc: int | None,
                  seed: int) -> tuple[tuple, dict[str, Any]]:
    """Condense (or find in the cache) and return the cache spec, seconds, or the error."""
    key = (name, params_json, ipc, seed)
    try:
        spec, seconds = condense_cached(setup, name, json.loads(params_json), ipc, seed)
    except Exception as exc:  # recorded on every cell that needed this proxy
        return key, {"spec": None, "seconds": math.nan, "error": _describe_error(exc)}
    return key, {"spec": spec, "seconds": seconds, "error": None}


def condense_cached(setup: Setup, name: str, params: dict[str, Any], ipc: int | None,
                    seed: int) -> tuple[dict[str, Any], float]:
    """Make sure the proxy of ``name`` is in the cache; return its spec and what it cost.

    The cost is the condenser's own wall time plus that of any upstream proxy it used
    (``upstream_seconds`` in its meta), as measured when it was first computed.
    """
    condenser = CONDENSERS.create(name, **params)
    spec = condense_spec(setup, condenser, ipc, seed)

    def compute() -> dict[str, Any]:
        start = time.perf_counter()
        proxy = condenser.condense(task_of(setup), ipc, setup.context(seed))
        seconds = time.perf_counter() - start + float(proxy.meta.get("upstream_seconds", 0.0))
        return _proxy_payload(proxy, seconds)

    stored = Cache(setup.cache_root).get_or_compute(CONDENSE_STAGE, spec, compute, kind="torch")
    return spec, stored["seconds"]


def _upstream_proxy(setup: Setup, seed: int, name: str, params: dict[str, Any], ipc: int | None) -> ProxyData:
    spec, seconds = condense_cached(setup, name, params, ipc, seed)
    proxy = load_proxy(Cache(setup.cache_root), spec)
    proxy.meta = {**proxy.meta, "condense_seconds": seconds}
    return proxy


def _proxy_payload(proxy: ProxyData, seconds: float) -> dict[str, Any]:
    return {"train": proxy.train.state(), "val": proxy.val.state(), "meta": proxy.meta, "seconds": seconds}


def load_proxy(cache: Cache, spec: dict[str, Any]) -> ProxyData:
    """Read a condensed proxy back from the cache."""
    found, stored = cache.load(CONDENSE_STAGE, spec, kind="torch")
    if not found:
        raise FileNotFoundError(f"condensed set {content_key(CONDENSE_STAGE, spec)} vanished from the cache")
    return ProxyData(Split.from_state(stored["train"]), Split.from_state(stored["val"]), stored["meta"])


def _run_cell(setup: Setup, candidates: list[str], oracle: OracleTable, topk: int, row_base: dict[str, Any],
              results_dir: str, train_outside: bool, cell: Cell, condensed: dict[str, Any]) -> str:
    row = {**row_base, **_cell_columns(cell), "condense_seconds": condensed["seconds"]}
    try:
        if condensed["error"]:
            raise _CondenseFailed(condensed["error"])
        answered = _oracle_grid_search(setup, oracle, cell)
        if answered:
            result, search_seconds = answered
        else:
            proxy = load_proxy(Cache(setup.cache_root), condensed["spec"])
            algo = SEARCH_ALGOS.create(cell.search_algo, **json.loads(cell.search_params))
            start = time.perf_counter()
            result = algo.search(space_of(setup), candidates, proxy, setup.context(cell.seed))
            search_seconds = time.perf_counter() - start
        if len(result.scores) != len(candidates):
            raise RuntimeError(f"{cell.search_algo} returned {len(result.scores)} scores "
                               f"for {len(candidates)} candidates")
        row.update(score_cell(result.scores, result.selected, oracle, cell.seed, setup.rank_by, topk))
        row.update(status="ok", error=None, search_seconds=search_seconds,
                   total_seconds=condensed["seconds"] + search_seconds,
                   scores=json.dumps([_finite_or_none(s) for s in result.scores]),
                   proxy_val_acc=json.dumps(result.meta["proxy_val_acc"]) if "proxy_val_acc" in result.meta else None,
                   trace=json.dumps(trace_test_accuracies(setup, oracle, result.trace, train_outside)),
                   own_choice=result.meta.get("own_choice"))
    except Exception as exc:  # one failing cell must not stop the sweep
        row.update(status="failed", error=_describe_error(exc))
    write_row(Path(results_dir), row)
    return row["status"]


def _oracle_grid_search(setup: Setup, oracle: OracleTable, cell: Cell) -> tuple[SearchResult, float] | None:
    """Grid on ``original`` under an oracle seed, without a budget, is the oracle run of that seed
    (:meth:`OracleTable.grid_search`): read it instead of training every candidate a second time."""
    if (cell.condenser, cell.search_algo) != ("original", "grid") or setup.budget_seconds is not None:
        return None
    if json.loads(cell.search_params).get("epochs") is not None:
        return None
    return oracle.grid_search(cell.seed, setup.rank_by)


def trace_test_accuracies(setup: Setup, oracle: OracleTable, trace: list[tuple[float, str]],
                          train_outside: bool) -> list[list[Any]]:
    """A search trace as rows ``[seconds, best_so_far, test_acc]``, ``test_acc`` being the whole-data
    test accuracy (%) of ``best_so_far`` that Figure 4 plots.

    For a candidate it is the oracle's (mean over the oracle seeds). An architecture outside the
    candidates (e.g. a GraphNAS child) is trained on the task's whole train split under each
    oracle seed like an oracle run, and cached in the oracle stage, so no cell or rerun trains
    it twice; with ``train_outside`` false (a benchmark-file oracle, which cannot be extended)
    its ``test_acc`` is ``None``.
    """
    known = dict(zip(oracle.candidates, oracle.test_acc.mean(axis=0).tolist()))
    for arch in dict.fromkeys(arch for _, arch in trace):
        if arch not in known and train_outside:
            runs = _oracle_job(setup, [(arch, seed) for seed in oracle.seeds]).values()
            known[arch] = sum(run["test_acc"] for run in runs) / len(runs)
    return [[float(t), arch, known.get(arch)] for t, arch in trace]


class _CondenseFailed(CondnasError):
    """The proxy this cell needs could not be built."""


def score_cell(scores: list[float], selected: str, oracle: OracleTable, seed: int, rank_by: str,
               topk: int) -> dict[str, Any]:
    """The ranking and selection metrics of one search result against the oracle."""
    truth = oracle.truth(rank_by)
    same_seed = oracle.seed_truth(seed, rank_by)
    test_acc = oracle.test_acc.mean(axis=0)
    best = metrics.argbest(truth)
    if selected not in oracle.candidates:
        raise ValueError(f"selected architecture {selected!r} is not among the candidates")
    perf = float(test_acc[oracle.candidates.index(selected)])
    return {
        "spearman": metrics.spearman(scores, truth),
        "kendall": metrics.kendall(scores, truth),
        "spearman_same_seed": metrics.spearman(scores, same_seed) if same_seed is not None else math.nan,
        "topk": topk,
        "topk_overlap": metrics.topk_overlap(scores, truth, topk),
        "noise_ceiling_spearman": oracle.noise_ceiling(rank_by, "spearman"),
        "noise_ceiling_kendall": oracle.noise_ceiling(rank_by, "kendall"),
        "selected": selected,
        "perf": perf,
        "optimal": oracle.candidates[best],
        "optimal_perf": float(test_acc[best]),
        "regret": float(test_acc[best]) - perf,
        "true_val_acc": json.dumps(oracle.val_acc.mean(axis=0).tolist()),
        "true_val_loss": json.dumps(oracle.val_loss.mean(axis=0).tolist()),
        "true_test_acc": json.dumps(test_acc.tolist()),
    }


def _cell_columns(cell: Cell) -> dict[str, Any]:
    return {"cell_id": cell.cell_id, "condenser": cell.condenser, "condenser_params": cell.condenser_params,
            "ipc": cell.ipc, "search_algo": cell.search_algo, "search_params": cell.search_params,
            "seed": cell.seed, "condenser_source": CONDENSERS.get(cell.condenser).source_hash()[:12],
            "search_source": SEARCH_ALGOS.get(cell.search_algo).source_hash()[:12]}


def _row_base(config: SweepConfig, setup: Setup, backend_label: str, n_jobs: int,
              candidates: list[str]) -> dict[str, Any]:
    return {"sweep": config.name, "task": config.task["name"], "space": config.space["name"],
            "n_candidates": len(candidates), "rank_by": config.rank_by, "candidates": json.dumps(candidates),
            "backend": backend_label, "workers": n_jobs, "device": setup.device,
            "config_hash": config.config_hash(), "host": provenance.host(), "git_commit": provenance.git_commit(),
            "versions": json.dumps(provenance.versions())}


def _drain(results: Iterable[Any], total: int, stage: str, progress: bool) -> list[Any]:
    return list(tqdm(results, total=total, desc=stage, disable=not progress, leave=False))


def _describe_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
