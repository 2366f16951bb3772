"""Tests of the NAS-Bench-201 space, its registry and the benchmark-file reader."""

from __future__ import annotations

import sys

import pytest
import torch

from harness.errors import ConfigError, DataError, PluginNotFoundError
from harness.spaces import NasBench201Space, get_space, list_spaces
from harness.spaces._params import check_int_list
from harness.spaces.nasbench201 import EDGES, OPS, format_arch, parse_arch
from harness.spaces.nasbench201_benchmark import read_benchmark

EXAMPLE = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|skip_connect~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def space() -> NasBench201Space:
    return NasBench201Space()


def test_constants():
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def test_parse_and_format_example():
    ops = parse_arch(EXAMPLE)
    assert ops == (
        "nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "avg_pool_3x3", "skip_connect"
    )
    assert format_arch(ops) == EXAMPLE


def test_all_archs_unique_and_round_trip(space):
    archs = space.all_archs()
    assert len(archs) == 15_625 == len(set(archs))
    assert archs == space.all_archs()
    assert all(format_arch(parse_arch(a)) == a for a in archs)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nonsense",
        EXAMPLE.replace("nor_conv_3x3", "conv_5x5"),
        EXAMPLE.replace("~2", "~1"),
        EXAMPLE[1:],
        EXAMPLE + "+|none~0|",
        "|none~0|+|none~0|+|none~0|none~1|none~2|",
        EXAMPLE.replace("|+|", "|"),
        EXAMPLE.replace("none~1", "none1"),
        None,
    ],
)
def test_malformed_strings_raise_config_error(space, bad):
    with pytest.raises(ConfigError, match="expected '"):
        parse_arch(bad)
    with pytest.raises(ConfigError):
        space.canonical(bad)


def test_format_arch_rejects_bad_ops():
    with pytest.raises(ConfigError):
        format_arch(("none",) * 5)
    with pytest.raises(ConfigError):
        format_arch(("none",) * 5 + ("conv",))


def test_is_connected(space):
    assert not space.is_connected(ALL_NONE)
    assert space.is_connected("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    chain = "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"
    assert space.is_connected(chain)
    # Node 1 is reached but nothing leaves it toward node 3.
    assert not space.is_connected("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    # Edges into node 1 and out of node 2, but no path through.
    assert not space.is_connected("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")


def test_canonical_identifies_equivalent_cells(space):
    # conv3(x) + conv1(x): which parallel route carries which conv does not matter.
    a = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|skip_connect~1|none~2|"
    b = "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|"
    assert space.canonical(a) == space.canonical(b)
    # A conv routed through node 1 or node 2 by skips equals the direct edge.
    direct = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    via_1 = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
    via_2 = "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"
    assert space.canonical(direct) == space.canonical(via_1) == space.canonical(via_2)
    # Dangling ops (into a node that never reaches the output) are ignored.
    dangling = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert space.canonical(dangling) == space.canonical(direct)
    # An op applied to an empty node contributes nothing.
    empty_in = "|none~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"
    assert space.canonical(empty_in) == space.canonical(direct)
    # All disconnected cells collapse to one class.
    assert space.canonical(ALL_NONE) == space.canonical(
        "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    )


def test_canonical_separates_different_cells(space):
    conv3 = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    conv1 = "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|"
    assert space.canonical(conv3) != space.canonical(conv1)
    # Order of composition matters: conv1(conv3(x)) vs conv3(conv1(x)).
    a = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|"
    b = "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
    assert space.canonical(a) != space.canonical(b)
    # x + x is not x.
    once = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    twice = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|"
    assert space.canonical(once) != space.canonical(twice)


def test_sample_deterministic_distinct_connected_non_isomorphic(space):
    first = space.sample(50, seed=3)
    assert first == space.sample(50, seed=3)
    assert first != space.sample(50, seed=4)
    assert len(set(first)) == 50
    assert all(space.is_connected(a) for a in first)
    assert len({space.canonical(a) for a in first}) == 50


def test_sample_without_filters_and_limits(space):
    raw = space.sample(15_625, seed=0, drop_disconnected=False, drop_isomorphs=False)
    assert sorted(raw) == sorted(space.all_archs())
    available = len(
        {space.canonical(a) for a in space.all_archs() if space.is_connected(a)}
    )
    assert len(space.sample(available, seed=1)) == available
    with pytest.raises(ConfigError, match=f"only {available}"):
        space.sample(available + 1, seed=1)
    with pytest.raises(ConfigError):
        space.sample(0, seed=1)


@pytest.mark.parametrize("in_channels,size", [(1, 8), (3, 16)])
def test_build_gives_logits_and_backprops(in_channels, size):
    torch.manual_seed(0)
    space = NasBench201Space(C=8, N=1, in_channels=in_channels, num_classes=7)
    net = space.build(EXAMPLE)
    logits = net(torch.randn(2, in_channels, size, size))
    assert logits.shape == (2, 7)
    logits.sum().backward()
    stem_conv = net.net.stem[0]
    assert stem_conv.in_channels == in_channels
    assert stem_conv.weight.grad is not None


def test_built_networks_run_channels_last_on_a_cpu_with_the_same_logits():
    torch.manual_seed(0)
    network = NasBench201Space(C=4, N=1, in_channels=3, num_classes=5).build(EXAMPLE)
    layouts = []
    network.net.cells[0].register_forward_pre_hook(
        lambda module, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    logits = network(x)
    channels_first = network.net(x)[1]  # the wrapped network on the images as given
    assert layouts == [True, False]
    torch.testing.assert_close(logits, channels_first, atol=1e-5, rtol=1e-5)


def test_build_rejects_bad_input():
    with pytest.raises(ConfigError):
        NasBench201Space(C=8, N=1).build("bad")
    with pytest.raises(ConfigError, match="C must be an integer >= 1"):
        NasBench201Space(C=0).build(EXAMPLE)


def test_build_without_xautodl_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "xautodl.models.cell_infers.tiny_network", None)
    with pytest.raises(ImportError, match=r"pip install --no-deps xautodl==1\.0\.0"):
        NasBench201Space(C=8, N=1).build(EXAMPLE)


def test_describe_and_registry():
    space = get_space("nasbench201", C=8, N=1, in_channels=1, num_classes=4)
    assert isinstance(space, NasBench201Space)
    assert space.describe() == {"C": 8, "N": 1, "in_channels": 1, "num_classes": 4}
    assert get_space("nasbench201", **space.describe()).describe() == space.describe()
    assert "nasbench201" in list_spaces() and list_spaces() == sorted(list_spaces())
    expected = (
        r"could not resolve space 'nasbench210' among choices \[.*'nasbench201'.*\]"
        r"; did you mean 'nasbench201'\?"
    )
    with pytest.raises(PluginNotFoundError, match=expected):
        get_space("nasbench210")
    accepted = r"\['width'\].*accepted: \['C', 'N', 'in_channels', 'num_classes'\]"
    with pytest.raises(ConfigError, match=accepted):
        get_space("nasbench201", width=3)


def _trial(accs: dict[str, float]) -> dict:
    return {"name": "x", "seed": 0, "epochs": 200, "eval_acc1es": accs, "eval_losses": {}}


def _fake_benchmark(path, archs):
    arch2infos = {}
    for i, _arch in enumerate(archs[:2]):
        full = {
            "arch_index": i,
            "all_results": {
                ("cifar10-valid", 777): _trial({"x-valid@199": 80.0 + i, "ori-test@199": 90.0 + i}),
                ("cifar10-valid", 888): _trial({"x-valid@199": 82.0 + i, "ori-test@199": 92.0 + i}),
                ("cifar10", 777): _trial({"ori-test@199": 93.0 + i}),
                ("cifar100", 777): _trial(
                    {"x-valid@199": 60.0 + i, "x-test@199": 61.0 + i, "ori-test@199": 60.5}
                ),
            },
            "dataset_seed": {"cifar10-valid": [777, 888], "cifar10": [777], "cifar100": [777]},
        }
        less = {
            "arch_index": i,
            "all_results": {
                ("cifar10-valid", 777): _trial({"x-valid@11": 50.0, "ori-test@11": 51.0})
            },
        }
        arch2infos[i] = {"less": less, "full": full}
    bench = {"meta_archs": list(archs), "arch2infos": arch2infos, "evaluated_indexes": [0, 1]}
    torch.save(bench, path)


def test_read_benchmark(tmp_path, space):
    archs = space.all_archs()[:3]
    path = str(tmp_path / "NAS-Bench-201-fake.pth")
    _fake_benchmark(path, archs)

    result = read_benchmark(path)
    assert set(result) == set(archs[:2])
    assert result[archs[1]] == {"valid_acc": 82.0, "test_acc": 92.0, "seeds": 2}

    only = read_benchmark(path, archs=[archs[0]])
    assert only == {archs[0]: {"valid_acc": 81.0, "test_acc": 91.0, "seeds": 2}}
    cifar10 = read_benchmark(path, dataset="cifar10")[archs[0]]
    assert cifar10 == {"valid_acc": None, "test_acc": 93.0, "seeds": 1}
    cifar100 = read_benchmark(path, dataset="cifar100")[archs[1]]
    assert cifar100 == {"valid_acc": 61.0, "test_acc": 62.0, "seeds": 1}
    short = read_benchmark(path, epochs=12)[archs[0]]
    assert short == {"valid_acc": 50.0, "test_acc": 51.0, "seeds": 1}


def test_read_benchmark_errors(tmp_path, space):
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(DataError, match="nope.pth"):
        read_benchmark(missing)
    archs = space.all_archs()[:3]
    path = str(tmp_path / "bench.pth")
    _fake_benchmark(path, archs)
    with pytest.raises(DataError, match="no results"):
        read_benchmark(path, archs=[archs[2]])
    with pytest.raises(DataError, match="not in"):
        read_benchmark(path, archs=[space.all_archs()[-1]])
    with pytest.raises(DataError, match="no 'ImageNet16-120' results"):
        read_benchmark(path, dataset="ImageNet16-120")
    with pytest.raises(ConfigError):
        read_benchmark(path, dataset="mnist")
    with pytest.raises(ConfigError):
        read_benchmark(path, epochs=50)
    with pytest.raises(ConfigError):
        read_benchmark(path, archs=["bad"])
    not_bench = str(tmp_path / "other.pth")
    torch.save({"a": 1}, not_bench)
    with pytest.raises(DataError, match="not a NAS-Bench-201"):
        read_benchmark(not_bench)


@pytest.mark.parametrize("values", [[], [0], [64, 64], [True], [2.0], "64", None])
def test_integer_list_parameters_reject_bad_values(values):
    with pytest.raises(ConfigError, match="hidden must be a non-empty list of distinct positive integers"):
        check_int_list("hidden", values)
    check_int_list("hidden", [16, 64])
