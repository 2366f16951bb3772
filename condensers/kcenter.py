"""``kcenter``: greedy k-center coreset per class (Sener & Savarese, ICLR 2018), the "K-Center"
baseline of Zhao et al. (ICLR 2021) and of the paper's Table 1."""

from __future__ import annotations

import torch

from condensers._embedding import FeatureCoreset
from harness.registry import register_condenser


@register_condenser("kcenter")
class KCenter(FeatureCoreset):
    """Per class, the greedy farthest-point sequence of ``ipc`` images in an embedding space
    (a random ConvNet's features or raw pixels), split into proxy train / val in the original
    val ratio."""

    @staticmethod
    def select(features: torch.Tensor, k: int) -> torch.Tensor:
        """Greedy k-center: positions of ``k`` rows of ``features`` (``n×D``) in pick order.

        Start from the row nearest the mean, ``s_1 = argmin_i ||f_i − mean(f)||`` (a
        deterministic, central seed: the first centre then also covers the bulk of the class;
        Sener & Savarese start from an existing labelled pool, which a per-class coreset lacks),
        then add ``s_{t+1} = argmax_i min_{j≤t} ||f_i − f_{s_j}||``. The running minimum
        ``d_i = min_{j≤t} ||f_i − f_{s_j}||²`` is updated with one ``n×D`` pass per pick, so
        the cost is O(n·k·D) with no ``n×n`` distance matrix. Ties go to the lowest position.
        """
        first = torch.argmin((features - features.mean(0)).pow(2).sum(1))
        picks = [first]
        min_dist = (features - features[first]).pow(2).sum(1)
        # Chosen rows are marked -1, below any distance, so they are never picked again even
        # when an unchosen duplicate (distance 0) exists; the running minimum keeps the mark.
        min_dist[first] = -1.0
        for _ in range(k - 1):
            nxt = torch.argmax(min_dist)
            picks.append(nxt)
            min_dist = torch.minimum(min_dist, (features - features[nxt]).pow(2).sum(1))
            min_dist[nxt] = -1.0
        return torch.stack(picks)
