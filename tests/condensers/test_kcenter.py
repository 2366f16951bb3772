"""Tests of the ``kcenter`` condenser and of the embedding it shares with ``herding``."""

from __future__ import annotations

import pytest
import torch

from condensers._embedding import embed_images
from condensers.kcenter import KCenter
from harness.errors import ConfigError
from harness.testing import check_condenser, tiny_context, tiny_image_task


def covering_radius(points: torch.Tensor, centers: torch.Tensor) -> float:
    """Largest distance from a point to its nearest center."""
    return float(torch.cdist(points, centers).min(1).values.max())


def test_first_pick_is_nearest_the_mean_then_farthest_points_1d():
    # mean 3.3: start at 3; then 10 (7 away); then 0 (3 from {3, 10}); then 1 (1 vs 0.5 for 2.5)
    x = torch.tensor([[0.0], [1.0], [2.5], [3.0], [10.0]])
    assert KCenter.select(x, 5).tolist() == [3, 4, 0, 1, 2]


def test_farthest_point_sequence_2d():
    x = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 6.0], [5.0, 5.0], [2.0, 2.0]])
    # mean (2.4, 2.6) -> (2,2); farthest from it (0,6) at 4.47 beats (5,5) at 4.24; then (5,5)
    # (min 4.24) beats (5,0) (min 3.61) and (0,0) (min 2.83); then (5,0); then (0,0)
    assert KCenter.select(x, 5).tolist() == [4, 2, 3, 1, 0]


def test_picks_are_distinct_even_with_duplicate_points():
    x = torch.tensor([[0.0], [0.0], [0.0], [1.0]])
    picks = KCenter.select(x, 4).tolist()
    assert sorted(picks) == [0, 1, 2, 3]


def test_covering_radius_no_worse_than_random_subsets():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=generator) * torch.tensor([3.0, 1.0])
    k = 10
    greedy = covering_radius(x, x[KCenter.select(x, k)])
    randoms = [covering_radius(x, x[torch.randperm(len(x), generator=generator)[:k]]) for _ in range(20)]
    assert greedy <= min(randoms), (greedy, randoms)


def test_selection_comes_from_each_class_and_matches_the_proxy_images():
    task = tiny_image_task()
    proxy = KCenter(embedding="pixels").condense(task, 5, tiny_context())
    source = torch.tensor(proxy.meta["source_indices"])
    assert proxy.meta["ipc"] == 5
    assert len(source) == len(set(source.tolist())) == 5 * task.num_classes
    assert task.train.y[source].tolist() == torch.arange(task.num_classes).repeat_interleave(5).tolist()
    selected = task.train.x[source].flatten(1)
    for split in (proxy.train, proxy.val):
        # every proxy image is one of the selected training images, with its label
        match = (split.x.flatten(1)[:, None] == selected[None]).all(-1)
        assert match.any(1).all()
        assert torch.equal(task.train.y[source][match.int().argmax(1)], split.y)


def test_pixel_selection_is_the_per_class_farthest_point_sequence():
    task = tiny_image_task()
    proxy = KCenter(embedding="pixels").condense(task, 4, tiny_context())
    index = torch.nonzero(task.train.y == 1, as_tuple=True)[0]
    expected = index[KCenter.select(task.train.x[index].flatten(1), 4)].tolist()
    assert proxy.meta["source_indices"][4:8] == expected


@pytest.mark.parametrize("embedding", ["convnet", "pixels"])
def test_conforms(embedding):
    check_condenser(KCenter(embedding=embedding, width=16, depth=2))


def test_conforms_with_default_parameters():
    check_condenser(KCenter())


def test_class_smaller_than_ipc_is_a_config_error():
    with pytest.raises(ConfigError, match="fewer than ipc=17"):
        KCenter().condense(tiny_image_task(per_class=16), 17, tiny_context())


def test_unknown_embedding_is_a_config_error():
    with pytest.raises(ConfigError, match="embedding must be one of"):
        KCenter(embedding="resnet")


def test_convnet_embedding_shape_seed_and_batching():
    x = tiny_image_task(per_class=200, channels=3, size=8).train.x  # 600 images: three batches
    features = embed_images(x, "convnet", seed=1, width=8, depth=2)
    assert features.shape == (600, 8 * 2 * 2)
    assert torch.allclose(features[:10], embed_images(x[:10], "convnet", seed=1, width=8, depth=2), atol=1e-6)
    assert torch.equal(features, embed_images(x, "convnet", seed=1, width=8, depth=2))
    assert not torch.allclose(features, embed_images(x, "convnet", seed=2, width=8, depth=2))
    assert torch.equal(embed_images(x, "pixels", seed=1), x.flatten(1))


def test_embedding_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    embed_images(torch.zeros(2, 1, 8, 8), "convnet", seed=5, width=4, depth=1)
    assert torch.equal(torch.rand(3), expected)


def test_too_deep_convnet_is_a_config_error():
    with pytest.raises(ConfigError, match="below one pixel"):
        embed_images(torch.zeros(2, 1, 8, 8), "convnet", seed=0, depth=4)
