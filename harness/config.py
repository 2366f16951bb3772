"""Sweep configs: YAML (or a mapping) validated into a :class:`SweepConfig`.

A config names one task, one search space with its candidate sample, the training
protocol, the oracle, the condensers (each with its ipcs and parameters), the search
algorithms and the seeds::

    name: quick
    task: {name: digits, params: {train_size: 300}}
    space: {name: nasbench201, params: {C: 8, N: 1}, candidates: 30}
    protocol: {epochs: 5, batch_size: 64}
    oracle: {seeds: [0, 1, 2], rank_by: val_loss}
    condensers: [original, {name: random, ipc: [10]}]
    search_algos: [grid]
    seeds: [0, 1, 2]

``condensers: all`` (or ``search_algos: all``) selects every registered plugin that supports
the task's modality. Every error names the offending key and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness._values import is_int
from harness.cache import canonical_json
from harness.errors import ConfigError
from harness.types import TrainProtocol

PRESETS_DIR = Path(__file__).parent / "presets"
RANK_BY = ("val_acc", "val_loss")

_TOP_KEYS = {"name", "description", "task", "space", "protocol", "oracle", "condensers",
             "search_algos", "seeds", "topk", "budget_seconds"}
_REQUIRED = ("name", "task", "space", "condensers", "search_algos")


@dataclass
class PluginEntry:
    """One condenser or search algorithm of a sweep with its parameters.

    ``ipcs`` holds the images-per-class values to run (``[None]`` for search algorithms and
    proxies whose size is fixed, such as ``original``).
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    ipcs: list[int | None] = field(default_factory=lambda: [None])


@dataclass
class SweepConfig:
    """A validated sweep configuration (see the module docstring for the YAML form)."""

    name: str
    task: dict[str, Any]
    space: dict[str, Any]
    candidates: int | list[str]
    sample_seed: int
    drop_isomorphs: bool
    drop_disconnected: bool
    protocol: TrainProtocol
    oracle_seeds: list[int]
    rank_by: str
    benchmark_file: str | None
    benchmark_dataset: str
    condensers: list[PluginEntry] | str
    search_algos: list[PluginEntry] | str
    seeds: list[int]
    topk: int = 5
    budget_seconds: float | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data (for the results directory and hashing)."""
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """A short hash of the whole config, recorded on every row."""
        return hashlib.sha256(canonical_json(self.as_dict()).encode()).hexdigest()[:12]


def resolve_config_path(name_or_path: str) -> Path:
    """A YAML path as given, or the bundled preset of that name (``quick`` -> presets/quick.yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if not preset.exists():
        raise ConfigError(
            f"{name_or_path!r} is neither a config file nor a preset; presets: {list_presets()}")
    return preset


def list_presets() -> list[str]:
    """Names of the bundled presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_config(name_or_path: str) -> SweepConfig:
    """Read and validate a YAML config file or a bundled preset by name."""
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, source: str = "config") -> SweepConfig:
    """Validate a config mapping into a :class:`SweepConfig`.

    Raises:
        ConfigError: naming the key that is missing, unknown or of the wrong type.
    """
    top = _mapping(raw, source)
    _check_keys(top, _TOP_KEYS, source)
    for key in _REQUIRED:
        if key not in top:
            raise ConfigError(f"{source}: missing required key {key!r}")
    space = _mapping(top["space"], f"{source}: space")
    _check_keys(space, {"name", "params", "candidates", "sample_seed", "drop_isomorphs",
                        "drop_disconnected"}, f"{source}: space")
    oracle = _mapping(top.get("oracle", {}), f"{source}: oracle")
    _check_keys(oracle, {"seeds", "rank_by", "benchmark_file", "benchmark_dataset"}, f"{source}: oracle")
    rank_by = oracle.get("rank_by", "val_acc")
    if rank_by not in RANK_BY:
        raise ConfigError(f"{source}: oracle.rank_by must be one of {list(RANK_BY)}, got {rank_by!r}")
    benchmark_file = oracle.get("benchmark_file")
    if benchmark_file and rank_by != "val_acc":
        raise ConfigError(f"{source}: a benchmark file has no losses; use oracle.rank_by: val_acc")
    try:
        protocol = TrainProtocol.from_dict(_mapping(top.get("protocol", {}), f"{source}: protocol"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: protocol: {exc}") from exc
    return SweepConfig(
        name=_string(top["name"], f"{source}: name"),
        description=str(top.get("description", "")),
        task=_named(top["task"], f"{source}: task"),
        space={"name": _string(space.get("name"), f"{source}: space.name"),
               "params": _mapping(space.get("params", {}), f"{source}: space.params")},
        candidates=_candidate_spec(space.get("candidates", 100), f"{source}: space.candidates"),
        sample_seed=_int(space.get("sample_seed", 0), f"{source}: space.sample_seed"),
        drop_isomorphs=_bool(space.get("drop_isomorphs", True), f"{source}: space.drop_isomorphs"),
        drop_disconnected=_bool(space.get("drop_disconnected", True), f"{source}: space.drop_disconnected"),
        protocol=protocol,
        oracle_seeds=_int_list(oracle.get("seeds", [0]), f"{source}: oracle.seeds"),
        rank_by=rank_by,
        benchmark_file=benchmark_file,
        benchmark_dataset=str(oracle.get("benchmark_dataset", "cifar10-valid")),
        condensers=_plugin_entries(top["condensers"], f"{source}: condensers", with_ipc=True),
        search_algos=_plugin_entries(top["search_algos"], f"{source}: search_algos", with_ipc=False),
        seeds=_int_list(top.get("seeds", [0]), f"{source}: seeds"),
        topk=_positive_int(top.get("topk", 5), f"{source}: topk"),
        budget_seconds=top.get("budget_seconds"),
    )


def _candidate_spec(value: Any, where: str) -> int | list[str]:
    """A number of candidates to sample, or an explicit list of architecture strings."""
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a positive integer or a non-empty list of architecture strings")
        if len(set(value)) != len(value):
            raise ConfigError(f"{where}: the candidate list has duplicates")
        return value
    return _positive_int(value, where)


def _plugin_entries(raw: Any, where: str, with_ipc: bool) -> list[PluginEntry] | str:
    if raw == "all":
        return "all"
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: expected 'all' or a non-empty list of names or mappings, got {raw!r}")
    entries = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        item = _mapping(item, here)
        _check_keys(item, {"name", "params", "ipc"} if with_ipc else {"name", "params"}, here)
        ipcs = item.get("ipc", [None])
        ipcs = ipcs if isinstance(ipcs, list) else [ipcs]
        for ipc in ipcs:
            if ipc is not None and (not is_int(ipc) or ipc < 2):
                raise ConfigError(f"{here}.ipc: expected integers >= 2, got {ipc!r}")
        entries.append(PluginEntry(name=_string(item.get("name"), f"{here}.name"),
                                   params=_mapping(item.get("params", {}), f"{here}.params"),
                                   ipcs=ipcs))
    return entries


def _named(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"name": raw}
    raw = _mapping(raw, where)
    _check_keys(raw, {"name", "params"}, where)
    return {"name": _string(raw.get("name"), f"{where}.name"),
            "params": _mapping(raw.get("params", {}), f"{where}.params")}


def _check_keys(mapping: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed keys are {sorted(allowed)}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
    return dict(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _int(value: Any, where: str) -> int:
    if not is_int(value):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if _int(value, where) < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _int_list(value: Any, where: str) -> list[int]:
    if is_int(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of integers, got {value!r}")
    return [_int(v, f"{where}[{i}]") for i, v in enumerate(value)]
