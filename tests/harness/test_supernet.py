"""Tests of the differentiable NAS-Bench-201 supernet and its λ helpers."""

from __future__ import annotations

import pytest
import torch

from harness.errors import ConfigError
from harness.spaces import NasBench201Space
from harness.spaces.nasbench201 import EDGES, OPS
from harness.spaces.nasbench201_supernet import (
    ALPHA_SHAPE,
    NasBench201Supernet,
    candidate_scores,
    discretize,
    encode_arch,
    mixing_weights,
)

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def net() -> NasBench201Supernet:
    torch.manual_seed(0)
    return NasBench201Supernet(C=4, N=1, in_channels=1, num_classes=3)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_encode_arch_is_one_hot_and_round_trips():
    onehot = encode_arch(ARCH)
    assert onehot.shape == ALPHA_SHAPE == (len(EDGES), len(OPS))
    assert torch.equal(onehot.sum(1), torch.ones(len(EDGES)))
    assert discretize(onehot) == ARCH


@pytest.mark.parametrize("relaxation", ["softmax", "gumbel"])
def test_one_hot_alphas_give_logits_and_gradients(net, images, relaxation):
    alphas = encode_arch(ARCH).requires_grad_()
    logits = net(images, alphas, relaxation=relaxation, tau=1.0, generator=torch.Generator().manual_seed(0))
    assert logits.shape == (6, 3)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert alphas.grad is not None and torch.isfinite(alphas.grad).all()
    assert alphas.grad.abs().sum() > 0


def test_default_alphas_are_a_trainable_parameter(net, images):
    net.zero_grad()
    net(images).sum().backward()
    assert net.alphas.shape == ALPHA_SHAPE and net.alphas.grad.abs().sum() > 0
    assert all(p is not net.alphas for p in net.weight_parameters())
    assert len(net.weight_parameters()) == len(list(net.parameters())) - 1


def test_one_hot_weights_evaluate_exactly_the_chosen_cell(net, images):
    # Under "weights", only the ops the one-hot λ selects may influence the output.
    alphas = encode_arch(ARCH)
    before = net(images, alphas, relaxation="weights")
    cell = net.cells[0]
    unused = cell.edges[0].ops["nor_conv_1x1"][1].weight  # edge 0 carries nor_conv_3x3
    used = cell.edges[0].ops["nor_conv_3x3"][1].weight
    with torch.no_grad():
        unused.add_(1.0)
        assert torch.equal(net(images, alphas, relaxation="weights"), before)
        used.add_(1.0)
        changed = net(images, alphas, relaxation="weights")
        used.sub_(1.0)
        unused.sub_(1.0)
    assert not torch.allclose(changed, before)


def test_batch_norm_uses_batch_statistics_in_both_modes(net, images):
    net.eval()
    evaluated = net(images)
    net.train()
    assert torch.allclose(evaluated, net(images))


def test_gumbel_weights_are_one_hot_samples_with_straight_through_gradients():
    alphas = torch.zeros(ALPHA_SHAPE, requires_grad=True)
    first = mixing_weights(alphas, "gumbel", tau=1.0, generator=torch.Generator().manual_seed(3))
    again = mixing_weights(alphas, "gumbel", tau=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert torch.allclose(first.detach(), torch.nn.functional.one_hot(first.argmax(1), len(OPS)).float())
    (first * torch.arange(len(OPS)).float()).sum().backward()
    assert alphas.grad.abs().sum() > 0
    peaked = 50.0 * encode_arch(ARCH)
    assert discretize(mixing_weights(peaked, "gumbel", tau=0.1, generator=torch.Generator().manual_seed(0))) == ARCH


def test_argmax_architecture_scores_highest_among_all_archs():
    alphas = torch.randn(ALPHA_SHAPE, generator=torch.Generator().manual_seed(4))
    archs = NasBench201Space().all_archs()
    scores = candidate_scores(alphas, archs)
    assert archs[int(scores.argmax())] == discretize(alphas)
    # The scores are the log-probabilities of a distribution over the whole space.
    assert torch.logsumexp(scores, 0).item() == pytest.approx(0.0, abs=1e-4)


def test_candidate_scores_follow_the_weights_restricted_to_each_candidate():
    alphas = torch.zeros(ALPHA_SHAPE)
    alphas[0, OPS.index("nor_conv_3x3")] = 2.0
    other = ARCH.replace("|nor_conv_3x3~0|+", "|skip_connect~0|+")
    scores = candidate_scores(alphas, [other, ARCH])
    assert scores[1] > scores[0]
    assert (scores[1] - scores[0]).item() == pytest.approx(2.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mixing_weights(torch.zeros(5, 6)), "6×5 tensor"),
        (lambda: mixing_weights(torch.zeros(ALPHA_SHAPE), "sparsemax"), "unknown relaxation"),
        (lambda: mixing_weights(torch.zeros(ALPHA_SHAPE), "gumbel", tau=0.0), "temperature"),
        (lambda: NasBench201Supernet(C=0), "positive int"),
        (lambda: NasBench201Supernet.from_space(object()), "nasbench201 space"),
        (lambda: candidate_scores(torch.zeros(ALPHA_SHAPE), ["not an arch"]), "expected '"),
    ],
)
def test_misuse_raises_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_from_space_mirrors_the_discrete_network():
    space = NasBench201Space(C=4, N=2, in_channels=1, num_classes=5)
    supernet = NasBench201Supernet.from_space(space)
    discrete = space.build(ARCH)
    x = torch.randn(2, 1, 8, 8)
    assert supernet(x).shape == discrete(x).shape == (2, 5)
    assert len(supernet.cells) == len(discrete.net.cells) == 3 * 2 + 2
