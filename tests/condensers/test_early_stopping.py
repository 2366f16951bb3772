"""``early_stopping``: the whole data, trained for c/n of the protocol's epochs, which grid honours."""

from __future__ import annotations

import dataclasses

from condensers.early_stopping import EarlyStopping
from harness.data import load_task
from harness.spaces import get_space
from harness.testing import check_condenser, tiny_context
from search_algos.grid import GridSearch


def test_early_stopping_keeps_the_data_and_shortens_grid_training(monkeypatch):
    task = load_task("cv", base="digits", base_params={"train_size": 60, "val_size": 20, "test_size": 30})
    ctx = tiny_context()
    ctx = dataclasses.replace(ctx, protocol=dataclasses.replace(ctx.protocol, epochs=20))
    proxy = EarlyStopping().condense(task, 4, ctx)
    assert proxy.train is task.train and proxy.val is task.val
    assert proxy.meta["epochs"] == round(20 * 40 / 80) and proxy.meta["val_is_train"]
    epochs_seen = []
    space = get_space("cv_folds", folds=2, width=4, depth=1, image_size=8, in_channels=1, num_classes=10)
    monkeypatch.setattr(type(space), "train_candidate",
                        lambda self, arch, train, evaluations, protocol, seed, device:
                        epochs_seen.append(protocol.epochs) or {"val_acc": 1.0, "val_loss": 1.0})
    GridSearch().search(space, ["fold:0", "fold:1"], proxy, ctx)
    GridSearch(epochs=3).search(space, ["fold:0"], proxy, ctx)
    assert epochs_seen == [10, 10, 3]  # the proxy's epochs unless grid sets its own


def test_early_stopping_conforms():
    check_condenser(EarlyStopping())
