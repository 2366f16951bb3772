"""HCDC's graph branch: val node features learned on hypergradients over polynomial filters."""

from typing import Any, ClassVar

import pytest
import torch

pytest.importorskip("torch_geometric")

import condensers.random_selection  # noqa: E402,F401  (the train source of the small settings)
from condensers._hcdc_graph import GRAPH_TEST_PARAMS, condense_graph, graph_settings  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.plugin import Condenser  # noqa: E402
from harness.testing import check_condenser, tiny_context, tiny_graph_task  # noqa: E402

SMALL = {**GRAPH_TEST_PARAMS, "trajectories": 1, "epochs": 3, "lambda_period": 1}


class GraphHCDC(Condenser):
    """What the ``hcdc`` plugin does on a graph task: hand its ``graph`` settings to :func:`condense_graph`."""

    modalities = ("graph",)
    defaults: ClassVar[dict[str, Any]] = {"graph": {}}

    def condense(self, task, ipc, ctx):
        return condense_graph(task, ipc, ctx, self.params["graph"])


@pytest.fixture(scope="module")
def task():
    return tiny_graph_task()


def test_graph_hcdc_conforms(task):
    proxy = check_condenser(GraphHCDC(graph=SMALL), task=task, ipc=3)
    assert bool(proxy.train.mask.all())  # S_train: the train source's training nodes only
    assert proxy.meta["trajectories_done"] == 1 and len(proxy.meta["alignment_curve"]) == 1


def test_each_trajectory_reports_its_progress(task):
    messages = []
    ctx = tiny_context()
    ctx.progress = messages.append
    condense_graph(task, 3, ctx, {**SMALL, "trajectories": 2})
    assert [m.split(":")[0] for m in messages] == ["hcdc repeat 1/1 trajectory 1/2", "hcdc repeat 1/1 trajectory 2/2"]


def test_val_features_are_learned_and_the_rest_is_the_train_source(task):
    ctx = tiny_context(seed=1)
    source = condensers.random_selection.RandomSelection().condense(task, 3, ctx)
    proxy = condense_graph(task, 3, ctx, {**SMALL, "lr_val": 0.5})
    val_nodes = proxy.val.mask
    assert torch.equal(proxy.val.edge_index, source.val.edge_index) and torch.equal(proxy.val.y, source.val.y)
    assert torch.equal(proxy.val.x[~val_nodes], source.val.x[~val_nodes])  # train nodes untouched
    assert not torch.allclose(proxy.val.x[val_nodes], source.val.x[val_nodes])
    assert torch.equal(proxy.train.x, source.train.x[source.train.mask])
    kept = proxy.train.edge_index.shape[1]
    train_only = source.train.mask[source.train.edge_index].all(0).sum()
    assert kept == int(train_only)


def test_zero_budget_keeps_the_source_val_nodes(task):
    source = condensers.random_selection.RandomSelection().condense(task, 3, tiny_context())
    proxy = condense_graph(task, 3, tiny_context(budget_seconds=0.0), SMALL)
    assert proxy.meta["stopped_by_budget"] and proxy.meta["trajectories_done"] == 0
    assert torch.equal(proxy.val.x, source.val.x)


def test_real_val_init_copies_original_val_nodes_of_the_class(task):
    proxy = condense_graph(task, 3, tiny_context(budget_seconds=0.0), {**SMALL, "val_init": "real"})
    learned = proxy.val.x[proxy.val.mask]
    labels = proxy.val.y[proxy.val.mask]
    real = task.val.x[task.val.mask]
    real_labels = task.val.y[task.val.mask]
    same = (learned[:, None, :] == real[None, :, :]).all(-1)
    assert (same & (labels[:, None] == real_labels[None, :])).any(1).all()


def test_settings_are_checked():
    assert graph_settings({})["trajectories"] == 80
    for bad in ({"trajectories": 0}, {"basis": "spectral"}, {"neumann_alpha": 0}, {"train_source": "hcdc"},
                {"val_init": "noise"}):
        with pytest.raises(ConfigError, match="hcdc"):
            graph_settings(bad)
    with pytest.raises(ConfigError, match="unknown graph settings"):
        graph_settings({"C": 16})
