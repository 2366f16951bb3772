"""M-fold cross-validation as a discrete search space (HCDC's appendix K, Table 7).

Ding et al., "Calibrated Dataset Condensation for Faster Hyperparameter Search", appendices J
and K: the M-fold cross-validation of one network is an HPO problem over ``M`` hyperparameters
``φ_i ∈ {0, 1}`` (``φ_i = 1`` iff fold ``i`` validates); the search ranks the folds by their
validation performance.

The candidates are ``"fold:0" … "fold:{M-1}"``. The network is the same for every candidate
(the condensation ConvNet of :mod:`harness.convnet`); the candidate chooses the *data*:

* **the fold rule**: the ``k``-th sample of class ``c`` in a split (in the split's order) lies in
  fold ``k mod M`` (:func:`fold_of`). Any condenser that keeps the per-class order of what it
  returns fold by fold — :mod:`condensers.per_fold`, HCDC on a cv task — preserves the folds;
  :func:`interleave_folds` builds such a split from per-fold parts.
* candidate ``fold:i`` trains on the samples of the train split *not* in fold ``i`` and is
  validated on the samples of the val split (the evaluation named ``"val"``) that *are* in fold
  ``i`` (:meth:`CVFoldsSpace.candidate_data`); any other evaluation (the oracle's held-out test
  set, no part of the cross-validated pool) is scored whole, so ``Perf.`` is the test accuracy
  of the network trained without the selected fold. The space's :meth:`~CVFoldsSpace.train_candidate`, the
  hook through which the oracle and every search algorithm train a candidate, applies it.

So that the oracle's ground truth is the real cross-validation, the task's val split must be
its train pool: the ``cv`` task (:func:`harness.data.cv.load_cv`) provides that, and
:meth:`CVFoldsSpace.check_task` refuses any other task. A proxy of the pool either is one pool
(``train`` and ``val`` the same images, e.g. :class:`condensers.per_fold.PerFold`) or has its
own learned validation images per fold (HCDC): both carry the fold rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.convnet import ConvNet
from harness.errors import ConfigError
from harness.spaces._params import SpaceParams, check_int
from harness.types import Split, Task

PREFIX = "fold:"
ROLES = ("train", "eval")
VAL = "val"
"""The name of the evaluation split restricted to the candidate's fold."""


def fold_of(y: torch.Tensor, folds: int) -> torch.Tensor:
    """The fold of every sample of a split: its occurrence index within its class, modulo ``folds``.

    Args:
        y: int64 labels ``N``, in the split's order.

    Returns:
        int64 ``N``: sample ``s`` is the ``k``-th of its class ⇒ its fold is ``k mod folds``.
    """
    fold = torch.empty_like(y)
    for c in torch.unique(y):
        positions = torch.nonzero(y == c, as_tuple=True)[0]
        fold[positions] = torch.arange(len(positions), device=y.device) % folds
    return fold


def interleave_folds(parts: list[Split], num_classes: int) -> Split:
    """One split from per-fold parts, ordered so that :func:`fold_of` gives each sample its part.

    ``parts[j]`` (``N_j×C×H×W``) is fold ``j``'s samples; every part must hold the same number
    ``n_c`` of samples of each class ``c``. Class by class, the result takes one sample from each
    fold in turn (the ``r``-th sample of class ``c`` of fold ``j`` lands at that class's
    occurrence index ``r·M + j``), keeping each part's own per-class order.

    Returns:
        A split of ``Σ_j N_j`` samples, classes in order ``0 … num_classes − 1``.

    Raises:
        ConfigError: the parts hold different numbers of samples of some class.
    """
    index_sets = [[torch.nonzero(part.y == c, as_tuple=True)[0] for c in range(num_classes)] for part in parts]
    xs, ys = [], []
    for c in range(num_classes):
        counts = [len(sets[c]) for sets in index_sets]
        if len(set(counts)) != 1:
            raise ConfigError(f"the folds hold {counts} samples of class {c}; every fold needs the same number "
                              "per class for the fold rule to recover them")
        for r in range(counts[0]):
            for part, sets in zip(parts, index_sets):
                xs.append(part.x[sets[c][r]])
                ys.append(part.y[sets[c][r]])
    return Split(torch.stack(xs), torch.stack(ys))


def parse_fold(arch: str, folds: int) -> int:
    """The fold index ``i`` of the candidate ``"fold:i"``.

    Raises:
        ConfigError: not ``"fold:<i>"`` with ``0 <= i < folds``.
    """
    index = arch[len(PREFIX):] if isinstance(arch, str) and arch.startswith(PREFIX) else ""
    if not index.isdigit() or int(index) >= folds:
        raise ConfigError(f"invalid cross-validation candidate {arch!r}: expected 'fold:<i>' with 0 <= i < {folds}, "
                          "e.g. 'fold:0'")
    return int(index)


class CVFoldsSpace(SpaceParams):
    """The ``M`` folds of a cross-validation as candidates (appendix K), one ConvNet for all.

    ``__init__`` only stores its parameters; they are checked when used.

    Args:
        folds: ``M``, the number of folds (the paper: 20).
        width, depth: the :class:`harness.convnet.ConvNet` every fold trains.
        image_size: side of the task's square images (the ConvNet's classifier depends on it;
            :meth:`check_task` compares it with the task's).
        in_channels, num_classes: as for every space (the sweep passes the task's).
    """

    def __init__(self, folds: int = 20, width: int = 32, depth: int = 3, image_size: int = 32,
                 in_channels: int = 3, num_classes: int = 10) -> None:
        self.folds = folds
        self.width = width
        self.depth = depth
        self.image_size = image_size
        self.in_channels = in_channels
        self.num_classes = num_classes

    def check(self) -> None:
        """Raise ``ConfigError`` unless every parameter is a positive integer (``folds`` >= 2)."""
        check_int("folds", self.folds, minimum=2)
        for name in ("width", "depth", "image_size", "in_channels", "num_classes"):
            check_int(name, getattr(self, name))

    def check_task(self, task: Task) -> None:
        """Raise ``ConfigError`` unless ``task`` is an image task whose val split is its train pool
        (the ``cv`` task) with images of side ``image_size``: otherwise the oracle would train on
        one set and validate on folds of another, which is not cross-validation."""
        self.check()
        if task.modality != "image" or not task.meta.get("val_is_train"):
            raise ConfigError(f"space cv_folds needs a task whose val split is its train pool; task {task.name!r} "
                              "has a separate val split. Wrap it: task: {name: cv, params: {base: <name>, "
                              "base_params: {...}}}")
        if task.image_size != self.image_size:
            raise ConfigError(f"space cv_folds has image_size {self.image_size} but the task's images are "
                              f"{task.image_size}px; set space.params.image_size: {task.image_size}")

    def all_archs(self) -> list[str]:
        """``["fold:0", …, "fold:{M-1}"]``."""
        self.check()
        return [f"{PREFIX}{i}" for i in range(self.folds)]

    def canonical(self, arch: str) -> str:
        """The candidate itself (no two folds are equivalent); raises ``ConfigError`` if malformed."""
        parse_fold(arch, self.folds)
        return arch

    def is_connected(self, arch: str) -> bool:
        """Every fold is a valid candidate."""
        parse_fold(arch, self.folds)
        return True

    def sample(self, p: int, seed: int, drop_disconnected: bool = True, drop_isomorphs: bool = True) -> list[str]:
        """All ``M`` folds in order when ``p == M``, else ``p`` of them drawn with
        ``numpy.random.default_rng(seed)``, in fold order. The filters change nothing (no fold is
        disconnected or equivalent to another).

        Raises:
            ConfigError: ``p`` is below 1 or above ``M``.
        """
        archs = self.all_archs()
        if not 1 <= p <= len(archs):
            raise ConfigError(f"cannot sample p={p} folds from a {len(archs)}-fold cross-validation; "
                              f"set space.candidates between 1 and {len(archs)}")
        if p == len(archs):
            return archs
        chosen = np.sort(np.random.default_rng(seed).choice(len(archs), size=p, replace=False))
        return [archs[i] for i in chosen]

    def build(self, arch: str) -> torch.nn.Module:
        """The ConvNet (``B×in_channels×image_size×image_size`` → ``B×num_classes``), the same for
        every fold; weights from torch's global generator."""
        self.check()
        parse_fold(arch, self.folds)
        return ConvNet(self.in_channels, self.num_classes, self.image_size, self.width, self.depth)

    def candidate_data(self, arch: str, split: Split, role: str) -> Split:
        """The part of ``split`` that candidate ``fold:i`` sees.

        Args:
            role: ``"train"``: the samples not in fold ``i``; ``"eval"``: the samples in fold ``i``.

        Raises:
            ConfigError: a malformed candidate, an unknown role, or a split left empty (fewer
                samples per class than folds).
        """
        if role not in ROLES:
            raise ConfigError(f"role must be one of {list(ROLES)}, got {role!r}")
        in_fold = fold_of(split.y, self.folds) == parse_fold(arch, self.folds)
        keep = torch.nonzero(~in_fold if role == "train" else in_fold, as_tuple=True)[0]
        if len(keep) == 0:
            raise ConfigError(f"{arch} leaves no {role} samples of a {len(split)}-sample split; every class "
                              f"needs more than {self.folds} samples (the number of folds)")
        return split.subset(keep)

    def train_candidate(self, arch: str, train: Split, evaluations: dict[str, Split], protocol: Any, seed: int,
                        device: torch.device) -> dict[str, float]:
        """Train the ConvNet on ``train`` without fold ``i``, evaluate it on fold ``i`` of the split
        named ``"val"`` and on any other named split whole (:meth:`candidate_data`); otherwise
        :func:`harness.training.train_candidate` (initialization and batch order from ``(seed, arch)``)."""
        from harness.training import train_candidate

        splits = {name: self.candidate_data(arch, split, "eval") if name == VAL else split
                  for name, split in evaluations.items()}
        return train_candidate(self, arch, self.candidate_data(arch, train, "train"), splits, protocol, seed, device)
