"""``herding``: herding coreset per class (Welling, ICML 2009; the greedy form of Rebuffi et al.,
CVPR 2017), the "Herding" baseline of Zhao et al. (ICLR 2021) and of the paper's Table 1."""

from __future__ import annotations

import torch

from condensers._embedding import FeatureCoreset
from harness.registry import register_condenser


@register_condenser("herding")
class Herding(FeatureCoreset):
    """Per class, the ``ipc`` images whose running mean tracks the class mean most closely in an
    embedding space (a random ConvNet's features or raw pixels), split into proxy train / val in
    the original val ratio."""

    @staticmethod
    def select(features: torch.Tensor, k: int) -> torch.Tensor:
        """Herding: positions of ``k`` rows of ``features`` (``n×D``) in pick order.

        With ``μ = mean(f)`` and ``S_t`` the sum of the first ``t`` picks, pick
        ``s_{t+1} = argmin_{i not picked} ||μ − (S_t + f_i) / (t + 1)||`` without replacement,
        so ``s_1`` is the row nearest the mean and the selection's mean approaches ``μ``
        greedily. One ``n×D`` pass per pick: O(n·k·D). Ties go to the lowest position.
        """
        target = features.mean(0)
        picked = torch.zeros(len(features), dtype=torch.bool, device=features.device)
        running_sum = torch.zeros_like(target)
        picks = []
        for t in range(1, k + 1):
            gap = (target - (running_sum + features) / t).pow(2).sum(1)
            gap[picked] = float("inf")
            nxt = torch.argmin(gap)
            picks.append(nxt)
            picked[nxt] = True
            running_sum += features[nxt]
        return torch.stack(picks)
