"""Tests of the GraphNAS macro search space (candidate strings, decisions, sampling)."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.spaces import get_space, list_spaces
from harness.spaces.graphnas import GraphNASSpace, LayerChoice, format_candidate, parse_candidate

ARCH = "gat,sum,relu,h8,u16|gcn,mean,elu,h1"


def test_the_default_space_is_graphnas_macro_space():
    space = GraphNASSpace(num_classes=7)
    decisions = space.decisions()
    assert [name for name, _ in decisions] == ["attention", "aggregator", "activation", "heads", "hidden",
                                               "attention", "aggregator", "activation", "heads"]
    assert [len(options) for _, options in decisions] == [7, 4, 8, 6, 7, 7, 4, 8, 6]
    assert space.size() == (7 * 4 * 8 * 6) ** 2 * 7
    assert "graphnas" in list_spaces()
    assert isinstance(get_space("graphnas", in_channels=5, num_classes=3), GraphNASSpace)


def test_candidates_round_trip_and_the_last_layer_is_sized_to_the_classes():
    space = GraphNASSpace(num_classes=7)
    assert space.decode(space.encode(ARCH)) == space.canonical(ARCH) == ARCH
    layers = parse_candidate(ARCH, num_classes=7)
    assert layers == [LayerChoice("gat", "sum", "relu", 8, 16), LayerChoice("gcn", "mean", "elu", 1, 7)]
    assert format_candidate(layers) == ARCH
    model = space.build(ARCH)
    assert model.layers[0].weight.shape == (1433, 8 * 16) and model.layers[1].weight.shape == (8 * 16, 7)


@pytest.mark.parametrize("arch", ["", "gat,sum,relu,h8|gcn,mean,elu,h1", "gat,sum,relu,h8,u16|gcn,mean,elu,h1,u7",
                                  "gat,sum,relu,8,16|gcn,mean,elu,1", "gat,sum,relu,h8,u16", "gat,sum,relu,h8,u16|x,y"])
def test_malformed_candidates_name_the_expected_format(arch):
    with pytest.raises(ConfigError, match="GraphNAS candidate"):
        GraphNASSpace().canonical(arch)


def test_candidates_outside_the_space_and_bad_parameters_are_rejected():
    with pytest.raises(ConfigError, match="not in this space"):
        GraphNASSpace(heads=[1, 2]).canonical(ARCH)
    with pytest.raises(ConfigError, match="not in this space"):
        GraphNASSpace().canonical("gat,sum,swish,h8,u16|gcn,mean,elu,h1")
    with pytest.raises(ConfigError, match="takes 9 decisions"):
        GraphNASSpace().decode([0] * 8)
    for params in ({"attentions": ["gat", "transformer"]}, {"heads": [0]}, {"hidden": []}, {"layers": 0},
                   {"dropout": 1.0}, {"aggregators": ["sum", "sum"]}):
        with pytest.raises(ConfigError, match="space parameter"):
            GraphNASSpace(**params).decisions()


def test_sampling_is_seeded_distinct_and_bounded():
    space = GraphNASSpace(attentions=["gat", "gcn"], aggregators=["sum"], activations=["relu"], heads=[1],
                          hidden=[4, 8], num_classes=3)
    assert space.size() == 8
    first = space.sample(8, seed=3)
    assert sorted(first) == sorted(set(first)) and first == space.sample(8, seed=3) != space.sample(8, seed=4)
    assert all(space.canonical(arch) == arch for arch in first)
    with pytest.raises(ConfigError, match="between 1 and 8"):
        space.sample(9, seed=0)
