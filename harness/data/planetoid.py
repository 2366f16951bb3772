"""The Planetoid citation graphs (Cora, CiteSeer, PubMed) with their public split.

Yang, Cohen & Salakhutdinov, "Revisiting Semi-Supervised Learning with Graph Embeddings",
ICML 2016; read through PyTorch Geometric's ``Planetoid`` dataset (the optional extra
``graph``). The public split labels 20 training nodes per class, 500 validation nodes and
1000 test nodes of one graph (Cora: 2708 nodes, 1433 binary word features, 7 classes).

``root`` holds the raw files in ``<root>/<Name>/raw/ind.<name>.{x,y,tx,ty,allx,ally,graph,
test.index}``. PyG writes ``processed/`` beside ``raw/``, so the raw files are first copied
into a writable cache directory and PyG reads that copy: ``root`` may be read-only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness.errors import ConfigError, DataError
from harness.types import GraphSplit, Task

NAMES: dict[str, str] = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
"""Accepted names (any case) and PyG's spelling of each."""

RAW_SUFFIXES: tuple[str, ...] = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def default_cache_dir() -> Path:
    """Where downloaded and processed graphs are kept: ``$CONDNAS_DATA_CACHE`` if set, else
    ``$XDG_CACHE_HOME/condnas/graphs`` (``~/.cache/condnas/graphs``)."""
    if os.environ.get("CONDNAS_DATA_CACHE"):
        return Path(os.environ["CONDNAS_DATA_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "condnas" / "graphs"


def load_planetoid(
    *,
    root: str | Path,
    dataset: str = "Cora",
    download: bool = False,
    normalize_features: bool = True,
    cache_dir: str | Path | None = None,
) -> Task:
    """Load a Planetoid graph with the public split as a graph :class:`Task`.

    Args:
        root: the directory holding ``<Name>/raw/`` (read-only is fine).
        dataset: ``"Cora"``, ``"CiteSeer"`` or ``"PubMed"`` (any case).
        download: fetch the raw files from the Planetoid repository into the cache when
            ``root`` lacks them (needs a network).
        normalize_features: divide each node's features by their sum (PyG's
            ``NormalizeFeatures``, the usual preprocessing of these bag-of-words features).
        cache_dir: where the raw copy and PyG's ``processed/`` go (default
            :func:`default_cache_dir`).

    Returns:
        A task whose ``train`` / ``val`` / ``test`` are :class:`GraphSplit` views of the same
        graph (``x`` ``N×F``, symmetric ``edge_index``) with the public masks.

    Raises:
        ConfigError: an unknown name or a parameter of the wrong type.
        DataError: the raw files are missing and ``download`` is false, or unreadable.
        ImportError: PyTorch Geometric is not installed.
    """
    canonical = NAMES.get(str(dataset).lower())
    if canonical is None:
        raise ConfigError(f"unknown Planetoid graph {dataset!r}; choose one of {sorted(NAMES.values())}")
    for param, value in (("download", download), ("normalize_features", normalize_features)):
        if not isinstance(value, bool):
            raise ConfigError(f"dataset parameter {param!r} must be true or false, got {value!r}")
    try:
        from torch_geometric.datasets import Planetoid
    except ImportError as exc:
        raise ImportError("graph tasks need PyTorch Geometric: pip install 'condnas[graph]' "
                          "(or pip install torch_geometric)") from exc
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    source = _raw_source(Path(root).expanduser(), canonical)
    target = cache / "planetoid"
    if source is not None:
        _copy_raw(source, target / canonical / "raw", canonical)
    elif not download:
        expected = ", ".join(f"ind.{canonical.lower()}.{s}" for s in RAW_SUFFIXES)
        raise DataError(f"no {canonical} raw files under {Path(root).expanduser() / canonical / 'raw'} "
                        f"(expected {expected}); point 'root' at the directory holding {canonical}/raw, "
                        "or set download: true to fetch them")
    try:
        data = Planetoid(str(target), canonical, split="public")[0]
    except Exception as exc:  # PyG raises many kinds for truncated or foreign files
        raise DataError(f"could not read the {canonical} Planetoid files copied to {target / canonical}: "
                        f"{type(exc).__name__}: {exc}") from exc
    x = data.x.float()
    if normalize_features:
        x = x / x.sum(dim=1, keepdim=True).clamp_min(1e-12)
    y, edge_index = data.y.long(), data.edge_index.long()
    splits = {split: GraphSplit(x, y, edge_index, None, getattr(data, f"{split}_mask").bool())
              for split in ("train", "val", "test")}
    meta = {"source": str(source or target / canonical / "raw"), "name": canonical, "split": "public",
            "num_nodes": int(x.shape[0]), "num_edges": int(edge_index.shape[1]),
            "normalize_features": normalize_features}
    return Task(name=canonical.lower(), modality="graph", num_classes=int(y.max()) + 1, meta=meta, **splits)


def _raw_source(root: Path, canonical: str) -> Path | None:
    """The ``raw`` directory under ``root`` holding every raw file of ``canonical`` (the
    graph's folder may be spelled in any case), or ``None``."""
    if not root.is_dir():
        return None
    folders = [root / canonical] + sorted(p for p in root.iterdir() if p.name.lower() == canonical.lower())
    for folder in folders:
        raw = folder / "raw"
        if all((raw / f"ind.{canonical.lower()}.{s}").is_file() for s in RAW_SUFFIXES):
            return raw
    return None


def _copy_raw(source: Path, target: Path, canonical: str) -> None:
    """Copy the raw files into ``target`` unless an identical-size copy is there.

    The copy is made in a temporary sibling and renamed into place, so concurrent loaders
    never see a half-written directory.
    """
    files = [f"ind.{canonical.lower()}.{s}" for s in RAW_SUFFIXES]
    if target.is_dir() and all((target / f).is_file() and (target / f).stat().st_size == (source / f).stat().st_size
                               for f in files):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".raw-", dir=target.parent))
    for f in files:
        shutil.copyfile(source / f, staging / f)
    stale = target.parent / "processed"
    if target.exists():
        shutil.rmtree(target)
    if stale.exists():  # processed from other raw files
        shutil.rmtree(stale)
    try:
        staging.rename(target)
    except OSError:  # another process put its identical copy in place first
        shutil.rmtree(staging, ignore_errors=True)
    if not all((target / f).is_file() for f in files):
        raise DataError(f"could not copy the {canonical} raw files from {source} to {target}")
