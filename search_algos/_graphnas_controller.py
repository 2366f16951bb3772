"""GraphNAS' controller: an LSTM that takes an architecture's decisions one at a time.

Gao et al., "GraphNAS: Graph Neural Architecture Search with Reinforcement Learning", IJCAI
2020, section 3.2 (after Zoph & Le, ICLR 2017), with the settings of the official code: a
100-unit ``LSTMCell`` whose first input is zeros and whose next inputs embed the previous
choice; one linear decoder per decision type (shared by the layers), its logits tempered and
squashed as ``c · tanh(logits / T)`` (``T = 5``, ``c = 2.5``); every weight uniform in
``[−0.1, 0.1]`` and the decoders' biases zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INIT_RANGE = 0.1


class GraphNASController(nn.Module):
    """A policy over sequences of categorical decisions (see the module docstring).

    Args:
        decisions: ``(decision type, number of options)`` of each decision, in order; decisions
            of one type share a decoder, so they must have the same number of options.
        hidden: LSTM width (100 in GraphNAS).
        temperature: ``T`` of ``c · tanh(logits / T)``.
        tanh_c: ``c`` of ``c · tanh(logits / T)``.

    Raises:
        ValueError: two decisions of one type with different numbers of options.
    """

    def __init__(self, decisions: list[tuple[str, int]], hidden: int, temperature: float, tanh_c: float) -> None:
        super().__init__()
        counts: dict[str, int] = {}
        for name, count in decisions:
            if counts.setdefault(name, count) != count:
                raise ValueError(f"decisions of type {name!r} have {counts[name]} and {count} options; "
                                 "decisions sharing a decoder need the same options")
        starts = [0]
        for count in counts.values():
            starts.append(starts[-1] + count)
        self.decisions = list(decisions)
        self.offsets = dict(zip(counts, starts))
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_c = tanh_c
        self.embedding = nn.Embedding(starts[-1], hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.decoders = nn.ModuleDict({name: nn.Linear(hidden, count) for name, count in counts.items()})

    def reset_parameters(self, generator: torch.Generator) -> None:
        """GraphNAS' initialization, drawn from ``generator``: every weight uniform in
        ``[−0.1, 0.1]``, the decoders' biases zero."""
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 2 * INIT_RANGE - INIT_RANGE)
            for decoder in self.decoders.values():
                decoder.bias.zero_()

    def forward(self, actions: torch.Tensor | None = None, batch: int = 1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Take every decision, sampling it (``actions=None``) or following ``actions``.

        Args:
            actions: ``B×D`` option indices to score (teacher forcing), or ``None`` to sample.
            batch: ``B`` when sampling.
            generator: the random source of the samples.

        Returns:
            ``(actions B×D, log π(actions) B, entropy B)``, the last two summed over the ``D``
            decisions (the entropy of each decision's distribution given the earlier choices).
        """
        size = batch if actions is None else actions.shape[0]
        inputs = torch.zeros(size, self.hidden)
        state = None
        chosen, log_prob, entropy = [], torch.zeros(size), torch.zeros(size)
        for k, (name, _) in enumerate(self.decisions):
            state = self.cell(inputs, state)
            logits = self.tanh_c * torch.tanh(self.decoders[name](state[0]) / self.temperature)
            log_probs = F.log_softmax(logits, dim=-1)
            choice = (torch.multinomial(log_probs.detach().exp(), 1, generator=generator).squeeze(1)
                      if actions is None else actions[:, k])
            chosen.append(choice)
            log_prob = log_prob + log_probs.gather(1, choice.unsqueeze(1)).squeeze(1)
            entropy = entropy - (log_probs.exp() * log_probs).sum(dim=-1)
            inputs = self.embedding(choice + self.offsets[name])
        return torch.stack(chosen, dim=1), log_prob, entropy
