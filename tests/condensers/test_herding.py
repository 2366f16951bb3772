"""Tests of the ``herding`` condenser."""

from __future__ import annotations

import pytest
import torch

from condensers.herding import Herding
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task


def mean_gaps(features: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``||mean(features[order[:t]]) − mean(features)||`` for ``t = 1..len(order)``."""
    running = features[order].cumsum(0) / torch.arange(1, len(order) + 1)[:, None]
    return (running - features.mean(0)).norm(dim=1)


def test_first_pick_is_the_sample_nearest_the_mean():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=generator)
    nearest = int((x - x.mean(0)).norm(dim=1).argmin())
    assert int(Herding.select(x, 1)[0]) == nearest


def test_greedy_sequence_1d():
    # mean 3.3: 3; then 2.5 (pair mean 2.75); then 1 (2.17); then 10 (4.125); then 0
    x = torch.tensor([[0.0], [1.0], [2.5], [3.0], [10.0]])
    assert Herding.select(x, 5).tolist() == [3, 2, 1, 4, 0]


def test_selected_mean_approaches_the_class_mean_faster_than_random():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=generator)
    k = 20
    herding = mean_gaps(x, Herding.select(x, k))
    randoms = torch.stack([mean_gaps(x, torch.randperm(len(x), generator=generator)[:k]) for _ in range(50)])
    assert (herding < randoms.mean(0)).all(), (herding, randoms.mean(0))
    assert herding[-1] < 0.25 * randoms.mean(0)[-1]


def test_picks_are_without_replacement():
    x = torch.tensor([[0.0], [0.0], [5.0], [-5.0]])  # re-picking 0 would always be best
    assert sorted(Herding.select(x, 4).tolist()) == [0, 1, 2, 3]


def test_selection_stays_within_each_class():
    task = tiny_image_task()
    proxy = Herding(embedding="pixels").condense(task, 6, tiny_context())
    source = torch.tensor(proxy.meta["source_indices"])
    assert proxy.meta["ipc"] == 6
    assert len(set(source.tolist())) == 6 * task.num_classes
    assert task.train.y[source].tolist() == torch.arange(task.num_classes).repeat_interleave(6).tolist()
    index = torch.nonzero(task.train.y == 2, as_tuple=True)[0]
    assert source[12:].tolist() == index[Herding.select(task.train.x[index].flatten(1), 6)].tolist()


@pytest.mark.parametrize("embedding", ["convnet", "pixels"])
def test_conforms(embedding):
    check_condenser(Herding(embedding=embedding, width=16, depth=2))


def test_conforms_with_default_parameters():
    check_condenser(Herding())


def test_seed_changes_the_split_not_the_pixel_selection():
    task = tiny_image_task()
    a = Herding(embedding="pixels").condense(task, 4, tiny_context(seed=0))
    b = Herding(embedding="pixels").condense(task, 4, tiny_context(seed=1))
    assert a.meta["source_indices"] == b.meta["source_indices"]


def test_class_smaller_than_ipc_is_a_config_error():
    with pytest.raises(ConfigError, match="fewer than ipc=17"):
        Herding().condense(tiny_image_task(per_class=16), 17, tiny_context())


def test_ipc_below_two_is_a_config_error():
    with pytest.raises(ConfigError, match="ipc must be at least 2"):
        Herding().condense(tiny_image_task(), 1, tiny_context())


def test_bad_width_is_a_config_error():
    with pytest.raises(ConfigError, match="width must be a positive integer"):
        Herding(width=0)
