"""ogbn-arxiv: the Open Graph Benchmark's arXiv citation graph (169,343 papers, 40 subject
classes, 128-dimensional word2vec features), with its official time-based split.

Hu et al., "Open Graph Benchmark: Datasets for Machine Learning on Graphs", NeurIPS 2020.
Read through the optional ``ogb`` package (``pip install ogb``), imported only when this
loader runs. The directed citation edges are made symmetric, as usual for node
classification on this graph.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.data.planetoid import default_cache_dir
from harness.errors import ConfigError, DataError
from harness.types import GraphSplit, Task

DATASET = "ogbn-arxiv"


def load_ogbn_arxiv(*, root: str | Path | None = None, download: bool = False) -> Task:
    """Load ogbn-arxiv as a graph :class:`Task` with the official train / valid / test split.

    Args:
        root: the directory holding OGB's ``ogbn_arxiv/`` folder (default: the graph cache,
            :func:`harness.data.planetoid.default_cache_dir`); it must be writable, since OGB
            processes in place.
        download: let OGB fetch the dataset when ``root`` lacks it (about 80 MB).

    Raises:
        ImportError: the ``ogb`` package is not installed (the message says how to add it).
        DataError: the files are missing and ``download`` is false.
    """
    if not isinstance(download, bool):
        raise ConfigError(f"dataset parameter 'download' must be true or false, got {download!r}")
    try:
        from ogb.nodeproppred import PygNodePropPredDataset
        from torch_geometric.utils import to_undirected
    except ImportError as exc:
        raise ImportError(f"the {DATASET} loader needs the optional packages ogb and torch_geometric: "
                          "pip install ogb torch_geometric") from exc
    folder = Path(root).expanduser() if root is not None else default_cache_dir() / "ogb"
    if not download and not (folder / DATASET.replace("-", "_")).is_dir():
        raise DataError(f"no {DATASET} under {folder}; point 'root' at the directory holding "
                        f"{DATASET.replace('-', '_')}/, or set download: true to fetch it")
    dataset = PygNodePropPredDataset(name=DATASET, root=str(folder))
    data, index = dataset[0], dataset.get_idx_split()
    n = data.num_nodes
    edge_index = to_undirected(data.edge_index, num_nodes=n)
    x, y = data.x.float(), data.y.view(-1).long()
    splits = {}
    for split, key in (("train", "train"), ("val", "valid"), ("test", "test")):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[index[key]] = True
        splits[split] = GraphSplit(x, y, edge_index, None, mask)
    meta = {"source": str(folder), "name": DATASET, "split": "official", "num_nodes": n,
            "num_edges": int(edge_index.shape[1])}
    return Task(name=DATASET, modality="graph", num_classes=int(y.max()) + 1, meta=meta, **splits)
