"""The REINFORCE update shared by the policy-gradient searches (``reinforce``, ``graphnas``).

Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
learning", Machine Learning 1992: with a baseline ``b`` the policy's parameters θ follow
``(R − b) ∇θ log π(a)``; an entropy bonus ``β ∇θ H(π)`` keeps the policy exploring (Zoph &
Le, ICLR 2017, and GraphNAS).
"""

from __future__ import annotations

import torch


class MovingAverageBaseline:
    """A bias-corrected exponential moving average of the rewards.

    After rewards ``R_1 … R_t``: ``b_t = Σ_s m^{t−s} R_s / Σ_s m^{t−s}`` with momentum ``m``, so
    ``b_1 = R_1`` (the first advantage is zero) and older rewards fade geometrically.

    Args:
        momentum: ``m`` in ``[0, 1)`` (NAS-Bench-201's REINFORCE: 0.9; GraphNAS: 0.95).
    """

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self._sum = 0.0
        self._weight = 0.0

    def update(self, reward: float) -> float:
        """Fold ``reward`` into the average and return the new baseline ``b_t``."""
        self._sum = self.momentum * self._sum + (1 - self.momentum) * reward
        self._weight = self.momentum * self._weight + (1 - self.momentum)
        return self._sum / self._weight


def policy_gradient_step(optimizer: torch.optim.Optimizer, log_prob: torch.Tensor, advantage: float,
                         entropy: torch.Tensor | None = None, entropy_weight: float = 0.0) -> float:
    """One REINFORCE step: ``optimizer`` minimizes ``−(R − b) · log π(a) − β · H(π)``.

    Args:
        log_prob: scalar ``log π(a)`` of the sampled action, differentiable in the policy.
        advantage: ``R − b``, a plain number (no gradient flows through the reward).
        entropy: scalar entropy of the policy's decisions (``None``: no bonus).
        entropy_weight: ``β``.

    Returns:
        The loss minimized.
    """
    loss = -advantage * log_prob
    if entropy is not None:
        loss = loss - entropy_weight * entropy
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()
