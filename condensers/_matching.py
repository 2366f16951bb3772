"""What the synthesis condensers ``dc``, ``dsa``, ``dm``, ``kip`` and ``tm`` share.

Each learns a synthetic set ``S`` of ``ipc`` images per class (class ``c`` in rows
``c·ipc … (c+1)·ipc − 1`` of one leaf tensor ``(K·ipc)×C×H×W``, ``K`` classes), initialized
from random real images of the class (``init: "real"``) or Gaussian noise (``init: "noise"``),
by repeating one optimization step (:class:`Learner`) ``iterations`` times or until the time
budget runs out; the learned set is finally split into proxy train / val with
:func:`harness.proxy.split_per_class` (the paper's protocol for baselines).

The matching condensers (:class:`MatchingCondenser`: ``dc``, ``dsa``, ``dm``) draw a freshly
initialized :class:`harness.convnet.ConvNet` each iteration, compare a per-class real batch
with the class's synthetic images through it, and take an SGD step (momentum 0.5, as in the
reference implementation) on ``S``.

:func:`gradient_distance` is the layer-wise distance of Zhao, Mopuri & Bilen (ICLR 2021, eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

import torch

from harness._values import is_int, is_number
from harness.augment import SiameseAugment
from harness.convnet import ConvNet
from harness.errors import ConfigError, DivergedError
from harness.plugin import Condenser
from harness.proxy import class_indices, split_counts, split_per_class
from harness.seeding import derive_seed
from harness.types import Deadline, ProxyData, RunContext, Split, Task

INITS = ("real", "noise")
IMAGE_MOMENTUM = 0.5
# Added to the product of norms so that an all-zero gradient row gives distance 1, not NaN.
_EPS = 1e-6
# How many window means of the per-iteration loss meta["loss_curve"] keeps.
_CURVE_POINTS = 10


class RealSampler:
    """Random per-class batches of a task's real training images, kept on ``device``.

    Args:
        train: the real training split (``N×C×H×W`` images, ``N`` labels).
        num_classes: ``K``.
        device: where the images and the batches live.
    """

    def __init__(self, train: Split, num_classes: int, device: torch.device) -> None:
        self.x = train.x.to(device)
        self.indices = [index.to(device) for index in class_indices(train.y, num_classes)]

    def batch(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``min(n, |class c|)`` distinct random images of class ``c``: ``n'×C×H×W``."""
        index = self.indices[c]
        pick = torch.randperm(len(index), generator=generator)[:n].to(index.device)
        return self.x[index[pick]]


@dataclass
class SyntheticSet:
    """The learnable synthetic images and their fixed labels.

    Attributes:
        images: leaf tensor ``(K·ipc)×C×H×W`` with ``requires_grad``; class ``c`` in rows
            ``c·ipc … (c+1)·ipc − 1``.
        labels: int64 ``K·ipc``: ``[0]*ipc + [1]*ipc + …``.
        ipc: images per class.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ipc: int

    @property
    def num_classes(self) -> int:
        """``K``."""
        return len(self.labels) // self.ipc

    def of_class(self, c: int) -> torch.Tensor:
        """The ``ipc×C×H×W`` synthetic images of class ``c`` (a view: gradients reach :attr:`images`)."""
        return self.images[c * self.ipc:(c + 1) * self.ipc]


def init_synthetic(sampler: RealSampler, ipc: int, init: str, generator: torch.Generator) -> SyntheticSet:
    """``ipc`` images per class drawn from the real class images (``"real"``) or ``N(0, 1)`` (``"noise"``).

    Real images are normalized per channel, so unit Gaussian noise has their scale.
    """
    num_classes = len(sampler.indices)
    device = sampler.x.device
    if init == "real":
        images = torch.cat([sampler.batch(c, ipc, generator) for c in range(num_classes)])
    else:
        shape = (num_classes * ipc, *sampler.x.shape[1:])
        images = torch.randn(shape, generator=generator).to(device)
    labels = torch.arange(num_classes, device=device).repeat_interleave(ipc)
    return SyntheticSet(images.detach().clone().requires_grad_(True), labels, ipc)


def class_pairs(sampler: RealSampler, synthetic: SyntheticSet, batch_real: int, generator: torch.Generator,
                augment: SiameseAugment | None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(c, real_c, syn_c)`` for every class: a real batch ``batch_real×C×H×W`` and the
    class's synthetic images ``ipc×C×H×W``, both transformed by ONE siamese augmentation draw
    when ``augment`` is given."""
    for c in range(synthetic.num_classes):
        real, syn = sampler.batch(c, batch_real, generator), synthetic.of_class(c)
        if augment is not None:
            params = augment.sample(generator)
            real, syn = augment.apply(real, params), augment.apply(syn, params)
        yield c, real, syn


def random_convnet(task: Task, width: int, depth: int, seed: int, device: torch.device,
                   outputs: int | None = None) -> ConvNet:
    """A freshly initialized ConvNet for ``task`` whose weights depend only on ``seed``
    (the global RNG is left untouched), with ``outputs`` logits (default: one per class)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvNet(task.in_channels, outputs or task.num_classes, task.image_size, width=width, depth=depth)
    return net.to(device)


def gradient_distance(grads_syn: list[torch.Tensor], grads_real: list[torch.Tensor]) -> torch.Tensor:
    """The gradient-matching distance of Zhao et al. (ICLR 2021, eq. 4).

    ``D = Σ_layers Σ_i (1 − <A_i, B_i> / (‖A_i‖ ‖B_i‖ + ε))`` where ``A_i`` / ``B_i`` are the
    rows of one parameter's synthetic / real gradient grouped by output channel: a conv weight
    ``out×in×h×w`` gives ``out`` rows of ``in·h·w``, a linear weight ``out×in`` gives ``out``
    rows. Biases and norm parameters (1-D) contribute nothing, as in the reference.

    Returns:
        A scalar, zero for identical gradients and differentiable w.r.t. ``grads_syn``.
    """
    total = grads_real[0].new_zeros(())
    for syn, real in zip(grads_syn, grads_real):
        if real.dim() == 1:
            continue
        syn, real = syn.flatten(1), real.flatten(1)
        cosine = (syn * real).sum(-1) / (syn.norm(dim=-1) * real.norm(dim=-1) + _EPS)
        total = total + (1 - cosine).sum()
    return total


def make_augment(plugin: str, strategy: str) -> SiameseAugment | None:
    """The siamese augmentation for a plugin's ``strategy`` parameter; ``"none"`` gives ``None``.

    Raises:
        ConfigError: the strategy names an unknown transformation.
    """
    if strategy == "none":
        return None
    try:
        return SiameseAugment(strategy)
    except ConfigError as exc:
        raise ConfigError(f"{plugin}: {exc}; or 'none' for no augmentation") from None


def check_positive_int(plugin: str, key: str, value: Any, minimum: int = 1) -> None:
    """Raise ``ConfigError`` unless ``value`` is an int (not a bool) ``>= minimum``."""
    if not is_int(value) or value < minimum:
        raise ConfigError(f"{plugin}: {key} must be an integer >= {minimum}, got {value!r}")


def check_positive_float(plugin: str, key: str, value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is a positive number."""
    if not is_number(value) or not value > 0:
        raise ConfigError(f"{plugin}: {key} must be a positive number, got {value!r}")


def check_non_negative_float(plugin: str, key: str, value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is a number ``>= 0``."""
    if not is_number(value) or value < 0:
        raise ConfigError(f"{plugin}: {key} must be a number >= 0, got {value!r}")


class Learner:
    """The optimization state of one condensation run, built by :meth:`SynthesisCondenser.learner`."""

    def step(self, it: int) -> float:
        """Update the synthetic images once (iteration ``it``) and return the iteration's loss."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        """Diagnostics added to the proxy's ``meta`` when the loop ends."""
        return {}


class SynthesisCondenser(Condenser):
    """The loop shared by every condenser that learns synthetic images.

    :meth:`condense` initializes the synthetic set from ``ctx.generator(name)``, asks
    :meth:`learner` for the run's optimization state, then calls its ``step`` for each of
    ``iterations`` iterations, fewer when ``ctx.budget_seconds`` runs out (counted from the end
    of the learner's set-up, so that shared, cacheable preparation such as ``tm``'s expert
    trajectories is not charged to the synthesis budget).

    Every subclass has the parameters ``iterations``, ``lr_img``, ``width``, ``depth`` (of the
    ConvNet it uses) and ``init``; ``meta`` records ``iterations`` done, the final
    ``matching_loss``, ``loss_curve`` (means over up to 10 consecutive windows of iterations),
    whether the budget stopped the loop, and the learner's own diagnostics.
    """

    modalities = ("image",)
    defaults: ClassVar[dict[str, Any]] = {}
    depends_on = ("harness.augment", "harness.convnet")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive_int(self.name, "iterations", self.params["iterations"], minimum=0)
        for key in ("width", "depth"):
            check_positive_int(self.name, key, self.params[key])
        check_positive_float(self.name, "lr_img", self.params["lr_img"])
        if self.params["init"] not in INITS:
            raise ConfigError(f"{self.name}: init must be one of {list(INITS)}, got {self.params['init']!r}")

    def run_settings(self, ipc: int) -> dict[str, Any]:
        """Settings that depend on ``ipc`` (recorded in meta); raise ``ConfigError`` when there are none."""
        return {}

    def learner(self, task: Task, synthetic: SyntheticSet, sampler: RealSampler, generator: torch.Generator,
                ctx: RunContext) -> Learner:
        """The optimization state of one run on ``synthetic``; randomness from ``generator`` or ``ctx``."""
        raise NotImplementedError

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Learn ``ipc`` synthetic images per class and split them into proxy train / val.

        Raises:
            ConfigError: ``ipc`` missing or below 2, a class with fewer than ``ipc`` images
                (``init: "real"``), or a ConvNet ``depth`` that pools the images away.
            DivergedError: the synthetic images became NaN or infinite.
        """
        self._check_task(task, ipc)
        settings = self.run_settings(ipc)
        generator = ctx.generator(self.name)
        sampler = RealSampler(task.train, task.num_classes, ctx.device)
        synthetic = init_synthetic(sampler, ipc, self.params["init"], generator)
        learner = self.learner(task, synthetic, sampler, generator, ctx)
        deadline = ctx.deadline()  # after set-up, so TM's expert training is not charged to the budget
        loop = run_iterations(self.name, self.params["iterations"], deadline, learner.step, synthetic.images,
                              "images", "lr_img", self.params["lr_img"], ctx.progress)
        learned = Split(synthetic.images.detach().clone(), synthetic.labels.clone())
        proxy = split_per_class(learned, task.num_classes, task.val_fraction, ctx.generator(f"{self.name}-split"))
        proxy.meta = {"ipc": ipc, **settings, **loop, **learner.meta()}
        return proxy

    def _check_task(self, task: Task, ipc: int | None) -> None:
        if ipc is None:
            raise ConfigError(f"{self.name} needs ipc (images per class); set ipc in the sweep config")
        split_counts(ipc, task.val_fraction)
        depth = self.params["depth"]
        if task.image_size >> depth < 1:
            raise ConfigError(f"{self.name}: a depth-{depth} ConvNet pools {task.image_size}px images below "
                              f"one pixel; use depth <= {task.image_size.bit_length() - 1}")
        needed = ipc if self.params["init"] == "real" else 1
        for c, index in enumerate(class_indices(task.train.y, task.num_classes)):
            if len(index) < needed:
                raise ConfigError(f"{self.name}: class {c} has {len(index)} training images, fewer than {needed} "
                                  f"(ipc={ipc}, init {self.params['init']!r}); lower ipc, use init 'noise' "
                                  "or use more training images")


class MatchingCondenser(SynthesisCondenser):
    """The loop shared by ``dc``, ``dsa`` and ``dm``.

    Each iteration draws a fresh ConvNet seeded by ``(seed, name, iteration)`` and calls
    :meth:`iteration`, which updates the images with an SGD optimizer (``lr_img``, momentum
    0.5) and returns the iteration's matching loss. All other randomness (initialization, real
    batches, augmentation) comes from ``ctx.generator(name)``. Besides the parameters of
    :class:`SynthesisCondenser`, every subclass has ``batch_real``.
    """

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        check_positive_int(self.name, "batch_real", self.params["batch_real"])

    def iteration(self, net: ConvNet, synthetic: SyntheticSet, sampler: RealSampler,
                  optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        """Update ``synthetic.images`` against ``net`` and return the iteration's matching loss."""
        raise NotImplementedError

    def learner(self, task: Task, synthetic: SyntheticSet, sampler: RealSampler, generator: torch.Generator,
                ctx: RunContext) -> Learner:
        """SGD (momentum 0.5) on the images, one fresh random ConvNet per :meth:`iteration`."""
        return _MatchingLearner(self, task, synthetic, sampler, generator, ctx)


class _MatchingLearner(Learner):
    def __init__(self, condenser: MatchingCondenser, task: Task, synthetic: SyntheticSet, sampler: RealSampler,
                 generator: torch.Generator, ctx: RunContext) -> None:
        self.condenser, self.task, self.synthetic, self.sampler = condenser, task, synthetic, sampler
        self.generator, self.ctx = generator, ctx
        self.optimizer = torch.optim.SGD([synthetic.images], lr=condenser.params["lr_img"], momentum=IMAGE_MOMENTUM)

    def step(self, it: int) -> float:
        params = self.condenser.params
        net = random_convnet(self.task, params["width"], params["depth"],
                             derive_seed(self.ctx.seed, self.condenser.name, "net", it), self.ctx.device)
        return self.condenser.iteration(net, self.synthetic, self.sampler, self.optimizer, self.generator)


def run_iterations(name: str, iterations: int, deadline: Deadline, step: Callable[[int], float],
                   learned: torch.Tensor, what: str, step_size: str, step_value: float,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The loop every synthesis condenser runs: ``step(it)`` until ``iterations`` or the deadline.

    Args:
        learned: the tensor the steps update (the synthetic images or node features), checked
            after every step.
        what, step_size, step_value: name the learned data and its step size in the error.
        progress: optional callback taking one status line per iteration.

    Returns:
        The ``meta`` of the loop: ``iterations`` done, the last ``matching_loss``, a ``loss_curve``
        of up to :data:`_CURVE_POINTS` window means, and whether it ``stopped_by_budget``.

    Raises:
        DivergedError: ``learned`` became NaN or infinite.
    """
    losses: list[float] = []
    stopped = False
    for it in range(iterations):
        if deadline.expired():
            stopped = True
            break
        losses.append(step(it))
        if not torch.isfinite(learned).all():
            raise DivergedError(f"{name}: the synthetic {what} became non-finite at iteration {it} "
                                f"(matching loss {losses[-1]}); lower {step_size} (now {step_value})")
        if progress is not None:
            progress(f"{name} iteration {it + 1}/{iterations}: loss {losses[-1]:.4f}")
    return {"iterations": len(losses), "matching_loss": losses[-1] if losses else None,
            "loss_curve": _window_means(losses), "stopped_by_budget": stopped}


def _window_means(values: list[float]) -> list[float]:
    """Means of ``values`` over up to :data:`_CURVE_POINTS` consecutive, near-equal windows."""
    if not values:
        return []
    windows = torch.tensor(values, dtype=torch.float64).tensor_split(min(len(values), _CURVE_POINTS))
    return [float(window.mean()) for window in windows]

