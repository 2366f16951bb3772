"""The cross-validation space (cv_folds) and task (cv) of HCDC's appendix K."""

from __future__ import annotations

import pytest
import torch

from harness.data import load_task
from harness.errors import ConfigError
from harness.spaces import get_space
from harness.spaces.cv_folds import fold_of, interleave_folds
from harness.testing import tiny_image_task
from harness.types import Split, TrainProtocol

TINY_CV = {"base": "digits", "base_params": {"train_size": 40, "val_size": 20, "test_size": 30}}


def _space(folds: int = 3, image_size: int = 8):
    return get_space("cv_folds", folds=folds, width=4, depth=1, image_size=image_size, in_channels=1, num_classes=10)


def test_fold_rule_is_the_per_class_occurrence_index_modulo_folds():
    y = torch.tensor([0, 1, 0, 0, 1, 2, 0, 1])
    # class 0 at positions 0, 2, 3, 6 -> folds 0, 1, 0, 1; class 1 at 1, 4, 7 -> 0, 1, 0; class 2 at 5 -> 0
    assert fold_of(y, 2).tolist() == [0, 0, 1, 0, 1, 0, 1, 0]


def test_interleaving_puts_every_part_back_in_its_fold_in_order():
    parts = [Split(torch.full((4, 1, 2, 2), float(j)) + torch.arange(4.0).view(4, 1, 1, 1) / 10,
                   torch.tensor([1, 0, 1, 0])) for j in range(3)]
    pool = interleave_folds(parts, num_classes=2)
    folds = fold_of(pool.y, 3)
    for j, part in enumerate(parts):
        mine = pool.subset(torch.nonzero(folds == j, as_tuple=True)[0])
        for c in range(2):
            assert torch.equal(mine.x[mine.y == c], part.x[part.y == c])  # same images, same per-class order
    with pytest.raises(ConfigError, match="same number"):
        interleave_folds([parts[0], parts[1].subset(torch.tensor([0, 1, 2]))], num_classes=2)


def test_cv_task_validates_on_its_own_train_pool():
    task = load_task("cv", **TINY_CV)
    assert task.val is task.train and len(task.train) == 60 and len(task.test) == 30
    assert task.meta["val_is_train"] and task.meta["base"] == "digits"
    with pytest.raises(ConfigError, match="base"):
        load_task("cv", base="cv")


def test_space_candidates_sampling_and_checks():
    space = _space(folds=4)
    assert space.sample(4, seed=0) == ["fold:0", "fold:1", "fold:2", "fold:3"]
    subset = space.sample(2, seed=1)
    assert len(subset) == 2 and subset == sorted(subset) and subset == space.sample(2, seed=1)
    assert space.canonical("fold:3") == "fold:3"
    for bad in ("fold:4", "fold:-1", "3", "fold:x"):
        with pytest.raises(ConfigError, match="fold:<i>"):
            space.canonical(bad)
    with pytest.raises(ConfigError, match="between 1 and 4"):
        space.sample(5, seed=0)
    assert space.build("fold:0")(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    space.check_task(load_task("cv", **TINY_CV))
    with pytest.raises(ConfigError, match="val split is its train pool"):
        space.check_task(tiny_image_task())
    with pytest.raises(ConfigError, match="image_size: 8"):
        _space(image_size=16).check_task(load_task("cv", **TINY_CV))


def test_candidate_trains_without_its_fold_and_is_validated_only_on_it(monkeypatch):
    import harness.training

    task = load_task("cv", **TINY_CV)
    space = _space(folds=3)
    seen = {}

    def spy(space_, arch, train, evaluations, protocol, seed, device):
        seen.update(train=train, **evaluations)
        return {"val_acc": 0.0}

    monkeypatch.setattr(harness.training, "train_candidate", spy)
    space.train_candidate("fold:1", task.train, {"val": task.val, "test": task.test}, TrainProtocol(), 0, "cpu")
    folds = fold_of(task.train.y, 3)
    expected_train = task.train.x[folds != 1]
    expected_val = task.val.x[folds == 1]
    assert torch.equal(seen["train"].x, expected_train) and torch.equal(seen["val"].x, expected_val)
    assert len(seen["train"]) + len(seen["val"]) == len(task.train)
    assert seen["test"] is task.test  # the held-out test set is no part of the cross-validation


def test_oracle_path_trains_each_fold_on_real_data():
    task = load_task("cv", **TINY_CV)
    result = _space(folds=2).train_candidate("fold:0", task.train, {"val": task.val}, TrainProtocol(epochs=1, batch_size=16),
                                             0, torch.device("cpu"))
    assert 0.0 <= result["val_acc"] <= 100.0 and result["train_seconds"] > 0


def test_cv_preset_expands_into_valid_cells():
    from harness.config import load_config
    from harness.sweep import expand_cells

    config = load_config("cv-cpu")
    cells, skipped = expand_cells(config, load_task("cv", **TINY_CV))
    assert not skipped and len(cells) == 5 * 2 * 3
    assert {cell.condenser for cell in cells} == {"per_fold", "early_stopping", "hcdc"}


def test_cross_validation_sweep_end_to_end(tmp_path):
    from harness.config import parse_config
    from harness.sweep import run_sweep

    config = parse_config({
        "name": "cv-tiny", "task": {"name": "cv", "params": TINY_CV},
        "space": {"name": "cv_folds", "params": {"folds": 2, "width": 4, "depth": 1, "image_size": 8}, "candidates": 2},
        "protocol": {"epochs": 2, "batch_size": 32, "lr": 0.05}, "oracle": {"seeds": [0, 1], "rank_by": "val_loss"},
        "condensers": [{"name": "per_fold", "ipc": [4], "params": {"folds": 2, "inner": "random"}},
                       {"name": "early_stopping", "ipc": [4]},
                       {"name": "hcdc", "ipc": [4], "params": {"cv": {"train_source_params": {"folds": 2, "inner": "random"},
                                                                       "folds": 2, "width": 4, "depth": 1, "epochs": 2,
                                                                       "lambda_period": 1, "batch_train": 16,
                                                                       "batch_real": 16, "neumann_terms": 2}}}],
        "search_algos": ["grid"], "seeds": [0], "topk": 1})
    frame = run_sweep(config, results_root=tmp_path, progress=False, device="cpu").set_index("condenser")
    assert (frame["status"] == "ok").all(), frame["error"].tolist()
    assert frame["n_candidates"].eq(2).all() and frame["noise_ceiling_spearman"].notna().all()
    not_cv = parse_config({"name": "bad", "task": {"name": "digits", "params": TINY_CV["base_params"]},
                           "space": {"name": "cv_folds", "params": {"folds": 2, "image_size": 8}, "candidates": 2},
                           "condensers": ["original"], "search_algos": ["grid"]})
    with pytest.raises(ConfigError, match="val split is its train pool"):
        run_sweep(not_cv, results_root=tmp_path, progress=False, device="cpu")
