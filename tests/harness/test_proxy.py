import pytest
import torch

from harness.errors import ConfigError
from harness.proxy import split_counts, split_per_class
from harness.types import Split


@pytest.mark.parametrize("ipc, fraction, expected", [(10, 0.5, (5, 5)), (10, 0.2, (8, 2)), (2, 0.9, (1, 1)),
                                                     (50, 1 / 6, (42, 8))])
def test_split_counts(ipc, fraction, expected):
    assert split_counts(ipc, fraction) == expected


def test_split_counts_rejects_single_image():
    with pytest.raises(ConfigError, match="ipc must be at least 2"):
        split_counts(1, 0.5)


def test_split_per_class_keeps_every_image_once():
    y = torch.arange(3).repeat_interleave(10)
    split = Split(torch.arange(30.0).reshape(30, 1, 1, 1), y)
    proxy = split_per_class(split, 3, 0.2, torch.Generator().manual_seed(0))
    for c in range(3):
        assert int((proxy.train.y == c).sum()) == 8 and int((proxy.val.y == c).sum()) == 2
    values = torch.cat([proxy.train.x, proxy.val.x]).flatten().sort().values
    assert torch.equal(values, torch.arange(30.0))
