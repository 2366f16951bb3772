"""``random``: a class-balanced random sample of the training set (the coreset baseline); on a
graph, the subgraph induced by randomly sampled labelled nodes."""

from __future__ import annotations

import torch

from condensers._graph import graph_split_counts, induced_proxy, labelled_by_class
from harness.errors import ConfigError
from harness.plugin import Condenser
from harness.proxy import class_indices, split_per_class
from harness.registry import register_condenser
from harness.types import ProxyData, RunContext, Task


@register_condenser("random")
class RandomSelection(Condenser):
    """``ipc`` training images drawn uniformly per class, split into proxy train / val in the
    original val ratio (the "Random" column of the paper's Table 1).

    On a graph task (the "Random" column of Table 2): ``ipc`` training nodes and
    :func:`condensers._graph.graph_split_counts` validation nodes drawn uniformly per class from
    the task's train and val masks; the proxy is the subgraph they induce, masked into train
    and val.
    """

    modalities = ("image", "graph")

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Sample ``ipc`` images of each class without replacement and split them (on a graph:
        sample nodes and take their induced subgraph)."""
        if task.modality == "graph":
            return self._condense_graph(task, ipc, ctx)
        generator = ctx.generator("random")
        chosen = []
        for c, index in enumerate(class_indices(task.train.y, task.num_classes)):
            if len(index) < ipc:
                raise ConfigError(f"class {c} has {len(index)} training images, fewer than ipc={ipc}; "
                                  "lower ipc or use more training images")
            chosen.append(index[torch.randperm(len(index), generator=generator)[:ipc]])
        source = torch.cat(chosen)
        proxy = split_per_class(task.train.subset(source), task.num_classes, task.val_fraction, generator)
        proxy.meta = {"ipc": ipc, "source_indices": source.tolist()}
        return proxy

    def _condense_graph(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        generator = ctx.generator("random")
        counts = graph_split_counts(task, ipc)
        pools = zip(labelled_by_class(task.train, task.num_classes), labelled_by_class(task.val, task.num_classes))
        train_nodes, val_nodes = [], []
        for c, ((n_train, n_val), (train, val)) in enumerate(zip(counts, pools)):
            if len(train) < n_train or len(val) < n_val:
                raise ConfigError(f"class {c} has {len(train)} training and {len(val)} validation nodes, fewer "
                                  f"than the {n_train} and {n_val} a proxy with ipc={ipc} needs; lower ipc")
            train_nodes.append(train[torch.randperm(len(train), generator=generator)[:n_train].to(train.device)])
            val_nodes.append(val[torch.randperm(len(val), generator=generator)[:n_val].to(val.device)])
        proxy = induced_proxy(task.train, torch.cat(train_nodes), torch.cat(val_nodes))
        proxy.meta = {"ipc": ipc, "source_indices": torch.cat(train_nodes + val_nodes).tolist(),
                      "num_edges": int(proxy.train.edge_index.shape[1])}
        return proxy
