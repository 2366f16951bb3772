"""Candidate training speed: the batched trainer against one candidate at a time, in one run.

Several measurements; the first two time both trainers in the same process, interleaved, so
that the printed ratios hold on a busy machine even when the absolute numbers drift:

* ``--oracle`` (the acceptance check): the ``quick`` preset's oracle — its 30 sampled
  NAS-Bench-201 candidates (C=8, N=1) on 8×8 digits, 300 train images, 4 epochs, batch 64,
  3 seeds, each run evaluated on val (600) and test (600) — trained group by group as the
  sweep does (:func:`harness.oracle.oracle_groups`), one at a time and batched, after each
  trainer trained two runs untimed. Prints both times, their ratio, the parts of each spent
  building the networks and evaluating them (both trainers build and evaluate each network
  on its own, the same way), the minor page faults each took (see :mod:`harness._allocator`)
  and how closely the two oracles agree.
* throughput (default): SGD steps of one group of candidates at each setting, in training
  images per second and candidates per minute (training only, extrapolated to the whole
  protocol):

  - ``quick``: the preset above (the real digits, the whole protocol);
  - ``cifar10-cpu``: the preset's shapes — 5,000 train images of 16×16×3, C=8, N=2, batch 128,
    24 epochs — on random images (speed does not depend on their content);
  - ``cifar10-cpu-batch32`` and ``cifar10-cpu-batch64``: the same in batches of 32 and 64,
    where batching stops gaining on a CPU (:data:`harness.batched_training.CPU_PIXELS`);
  - ``paper``: NAS-Bench-201 at full size — C=16, N=5, 32×32×3, batch 256, 50 epochs of
    50,000 images (:class:`harness.types.TrainProtocol`'s defaults) — on random images.
* ``--pooling``: NAS-Bench-201's ``avg_pool_3x3`` as the spaces compute it
  (:class:`harness.spaces._avg_pool_3x3.AvgPool3x3`) against ``nn.AvgPool2d``, forward and
  backward, at the layers' shapes and layouts in each setting (built and stacked networks run
  channels-last on a CPU, the supernet channels-first); then six candidates with pooling
  edges of ``quick`` and ``cifar10-cpu`` trained and evaluated one at a time with each.
* ``--layout``: six candidates of ``cifar10-cpu`` and of the paper trained and evaluated one
  at a time channels-first with ``nn.AvgPool2d`` (how they ran before), channels-first, and
  channels-last (as :meth:`NasBench201Space.build`'s networks run on a CPU).
* ``--convolutions``: what a 3×3 convolution (forward and both backward passes) costs per
  member when ``g`` members run it as one grouped convolution, against one member alone, at
  the ``quick`` networks' three resolutions, with the arithmetic rate reached against a large
  matrix product's. On a CPU this bounds the batched trainer's gain: the convolutions are
  about half of a training step, alone or stacked, and grouped they reach the core's rate.
* ``--breakdown``: where one ``quick`` group's training time goes, trained alone and stacked
  (``torch.profiler``): convolutions, gathering members (the stacked cells' index_select and
  index_add_) and the rest.

``--device cuda`` runs the first two on a GPU.

Usage::

    python benchmarks/candidate_training.py --oracle
    python benchmarks/candidate_training.py --settings quick cifar10-cpu paper --steps 10
    python benchmarks/candidate_training.py --pooling
    python benchmarks/candidate_training.py --layout
    python benchmarks/candidate_training.py --convolutions
    python benchmarks/candidate_training.py --breakdown
    python benchmarks/candidate_training.py --oracle --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from scipy.stats import spearmanr

from harness import batched_training, training
from harness._allocator import retain_freed_memory
from harness._gc import freeze_loaded_objects
from harness.batched_training import TRAINER_ENV, candidate_groups, group_size, train_batched, train_members
from _preset import load_preset
from harness.data import load_task
from harness.oracle import oracle_groups
from harness.seeding import derive_seed
from harness.spaces import NasBench201Space
from harness.spaces._avg_pool_3x3 import AvgPool3x3, replace_modules
from harness.training import init_candidate, steps_per_epoch, train_model
from harness.types import Split, TrainProtocol

@dataclass
class Setting:
    """A training setting: image shape, train-set size, space and protocol."""

    image: tuple[int, int, int]
    train_size: int
    space: dict
    protocol: TrainProtocol
    candidates: int = 30


SETTINGS = {
    "quick": Setting((1, 8, 8), 300, {"C": 8, "N": 1}, TrainProtocol(epochs=4, batch_size=64, lr=0.1)),
    "cifar10-cpu": Setting((3, 16, 16), 5000, {"C": 8, "N": 2}, TrainProtocol(epochs=24, batch_size=128, lr=0.1)),
    # cifar10-cpu at smaller batches: where batching stops gaining on a CPU (batched_training.CPU_PIXELS)
    "cifar10-cpu-batch32": Setting((3, 16, 16), 5000, {"C": 8, "N": 2}, TrainProtocol(epochs=24, batch_size=32, lr=0.1)),
    "cifar10-cpu-batch64": Setting((3, 16, 16), 5000, {"C": 8, "N": 2}, TrainProtocol(epochs=24, batch_size=64, lr=0.1)),
    "paper": Setting((3, 32, 32), 50000, {"C": 16, "N": 5}, TrainProtocol()),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oracle", action="store_true", help="time the quick preset's oracle both ways")
    parser.add_argument("--settings", nargs="*", default=[], choices=sorted(SETTINGS),
                        help="throughput settings to measure (default: all, unless --oracle)")
    parser.add_argument("--steps", type=int, default=10, help="SGD steps per throughput measurement")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats (the fastest counts)")
    parser.add_argument("--pooling", action="store_true", help="avg_pool_3x3 as computed against nn.AvgPool2d (CPU)")
    parser.add_argument("--layout", action="store_true",
                        help="built networks trained channels-first against channels-last (CPU)")
    parser.add_argument("--convolutions", action="store_true",
                        help="per-member cost of grouped convolutions against a lone one (CPU)")
    parser.add_argument("--breakdown", action="store_true",
                        help="profile where a quick group's training time goes, alone and stacked (CPU)")
    parser.add_argument("--device", default="cpu", help="cpu (one thread) or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here")
    torch.set_num_threads(1)
    retain_freed_memory()  # as the trainers do, so that the micro-benchmarks' activations are reused too
    if args.oracle:
        oracle_speed(device)
    if args.pooling:
        pooling_cost()
        print("candidates with pooling edges:")
        for name in ("quick", "cifar10-cpu"):
            compare_networks(name, SETTINGS[name], args.steps, args.repeats,
                             {"nn.AvgPool2d": _with_reference_pooling, "AvgPool3x3": lambda network: network},
                             archs=lambda arch: "avg_pool_3x3" in arch)
    if args.layout:
        print("candidates channels-first with nn.AvgPool2d (as before), channels-first, and channels-last (as built):")
        for name in ("cifar10-cpu", "paper"):
            compare_networks(name, SETTINGS[name], args.steps, args.repeats,
                             {"before": lambda network: _ChannelsFirst(_with_reference_pooling(network)),
                              "channels-first": _ChannelsFirst, "channels-last": lambda network: network},
                             archs=lambda arch: True)
    if args.convolutions:
        convolution_cost()
    if args.breakdown:
        step_breakdown()
    only = args.oracle or args.pooling or args.layout or args.convolutions or args.breakdown
    for name in args.settings or ([] if only else list(SETTINGS)):
        throughput(name, SETTINGS[name], args.steps, args.repeats, device)


def oracle_speed(device: torch.device, preset_name: str = "quick") -> None:
    """Train the preset's oracle one at a time and batched, group by group, on ``device`` and compare."""
    preset = load_preset(preset_name)
    freeze_loaded_objects()  # as harness.parallel does before a process's first job
    config, task, space, candidates = preset.config, preset.task, preset.space, preset.candidates
    runs = [(arch, seed) for seed in config.oracle_seeds for arch in candidates]
    groups = oracle_groups(candidates, config.oracle_seeds, runs, space, task, config.protocol, device)
    evaluations = {"val": task.val, "test": task.test}
    seconds = {"one at a time": 0.0, "batched": 0.0}
    parts = {part: {"one at a time": 0.0, "batched": 0.0} for part in TIMED_PARTS}
    faults = {"one at a time": 0, "batched": 0}
    results: dict[str, dict] = {"one at a time": {}, "batched": {}}

    def one_at_a_time(group: list[tuple[str, int]]) -> dict:
        return {(arch, seed): space.train_candidate(arch, task.train, evaluations, config.protocol, seed, device)
                for arch, seed in group}

    def batched(group: list[tuple[str, int]]) -> dict:
        return train_batched(space, group, task.train, evaluations, config.protocol, device)

    # Untimed: each trainer's first runs pay one-time set-up (first kernels, a few hundredths of
    # a second) that would count against whichever ran first. The largest one-time cost, torch's
    # first optimizer importing its compiler stack (about 0.9 s), was paid by the freeze above.
    one_at_a_time(groups[0][:2])
    batched(groups[0][:2])
    for i, group in enumerate(groups):
        order = [("one at a time", one_at_a_time), ("batched", batched)]
        for name, train in order if i % 2 == 0 else order[::-1]:
            start, before = _clock(device), _minor_page_faults()
            with _timing_parts(parts, name, device):
                results[name].update(train(group))
            seconds[name] += _clock(device) - start
            faults[name] += _minor_page_faults() - before
    sequential, together = seconds["one at a time"], seconds["batched"]
    print(f"{preset_name} oracle on {device}: {len(candidates)} candidates × {len(config.oracle_seeds)} seeds in "
          f"{len(groups)} groups of ≤ {max(map(len, groups))}, val {len(task.val)} + test {len(task.test)} evaluated")
    print(f"  one at a time {sequential:.1f} s, batched {together:.1f} s: {sequential / together:.2f}× faster "
          f"(minor page faults: {faults['one at a time']:,} and {faults['batched']:,})")
    rest = {name: seconds[name] - sum(part[name] for part in parts.values()) for name in seconds}
    cells = "; ".join(f"{part} {part_seconds['one at a time']:.2f} s and {part_seconds['batched']:.2f} s"
                      for part, part_seconds in parts.items())
    print(f"  of which {cells}; training: {rest['one at a time']:.1f} s and {rest['batched']:.1f} s, "
          f"{rest['one at a time'] / rest['batched']:.2f}× faster")
    _agreement(candidates, config.oracle_seeds, results["one at a time"], results["batched"])


def _clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


TIMED_PARTS = {"building": "init_candidate", "evaluating": "evaluate"}
"""The parts of a run that :func:`_timing_parts` times, each by the function both trainers call for it."""


@contextlib.contextmanager
def _timing_parts(seconds: dict[str, dict[str, float]], name: str, device: torch.device) -> Iterator[None]:
    """Add to ``seconds[part][name]`` the time spent meanwhile in each part's function of :data:`TIMED_PARTS`.

    The functions are replaced where the trainers look them up (:mod:`harness.training`,
    :mod:`harness.batched_training`), and put back on exit.
    """
    originals = {(module, part): getattr(module, function) for module in (training, batched_training)
                 for part, function in TIMED_PARTS.items()}

    def timed(part: str, original: Callable) -> Callable:
        def call(*args, **kwargs):
            start = _clock(device)
            try:
                return original(*args, **kwargs)
            finally:
                seconds[part][name] += _clock(device) - start
        return call

    for (module, part), original in originals.items():
        setattr(module, TIMED_PARTS[part], timed(part, original))
    try:
        yield
    finally:
        for (module, part), original in originals.items():
            setattr(module, TIMED_PARTS[part], original)


def _minor_page_faults() -> int:
    """This process's minor page faults so far (memory first touched, or handed back and touched again)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _agreement(candidates: list[str], seeds: list[int], reference: dict, other: dict) -> None:
    """Print how closely two oracles agree, per run and on the candidates' ranking."""
    acc = np.array([[reference[a, s]["val_acc"] - other[a, s]["val_acc"] for a in candidates] for s in seeds])
    loss = [np.array([[result[a, s]["val_loss"] for a in candidates] for s in seeds]) for result in (reference, other)]
    loss_gap = np.abs(loss[0] - loss[1])
    ranking = spearmanr(loss[0].mean(0), loss[1].mean(0)).statistic
    print(f"  agreement: |Δ val acc| median {np.median(np.abs(acc)):.2f}, max {np.abs(acc).max():.2f} points; "
          f"|Δ val loss| median {np.median(loss_gap):.1e}, max {loss_gap.max():.1e}; "
          f"Spearman of the mean val losses {ranking:.4f}; "
          f"runs equal to 1e-4 in val loss: {(loss_gap < 1e-4).mean():.0%}")


def throughput(name: str, setting: Setting, steps: int, repeats: int, device: torch.device) -> None:
    """Time ``steps`` SGD steps of one group of candidates on ``device``, one at a time and batched."""
    space = NasBench201Space(**setting.space, in_channels=setting.image[0], num_classes=10)
    train, _, protocol = _setting_data(name, setting, steps, device)
    epochs = protocol.epochs
    archs = space.sample(setting.candidates, 0)[:_members(space, train, protocol.batch_size, device)]
    times: dict[str, list[float]] = {"one at a time": [], "batched": []}
    for _ in range(repeats):
        start = _clock(device)
        for arch in archs:
            train_model(init_candidate(space, arch, 0).to(device), train, protocol, derive_seed(0, arch, "order"))
        times["one at a time"].append(_clock(device) - start)
        start = _clock(device)
        stacked = space.stack_networks(archs, [init_candidate(space, arch, 0) for arch in archs]).to(device)
        train_members(stacked, train, protocol, [derive_seed(0, arch, "order") for arch in archs])
        times["batched"].append(_clock(device) - start)
    images = len(archs) * epochs * len(train)
    full = setting.protocol.epochs * setting.train_size
    rates = {trainer: images / min(values) for trainer, values in times.items()}
    cells = ", ".join(f"{trainer} {rate:,.0f} images/s = {60 * rate / full:.3g} candidates/min"
                      for trainer, rate in rates.items())
    steps_each = epochs * steps_per_epoch(len(train), protocol.batch_size)
    print(f"{name} on {device} ({len(archs)} candidates, {steps_each} steps each, fastest of {repeats}): {cells}; "
          f"batched {rates['batched'] / rates['one at a time']:.2f}× faster")


def _setting_data(name: str, setting: Setting, steps: int, device: torch.device
                  ) -> tuple[Split, Split, TrainProtocol]:
    """Train and evaluation splits of ``setting``, and its protocol cut to what they hold.

    ``quick``: the real digits and the whole protocol; otherwise ``steps`` batches of random
    images (speed does not depend on their content), 1,000 more to evaluate, and one epoch.
    """
    if name == "quick":
        task = load_task("digits", train_size=300, val_size=600, test_size=600)
        return task.train.to(device), task.val.to(device), setting.protocol
    generator = torch.Generator().manual_seed(0)
    train_size = steps * setting.protocol.batch_size
    images = torch.randn(train_size + 1000, *setting.image, generator=generator)
    labels = torch.randint(0, 10, (train_size + 1000,), generator=generator)
    protocol = TrainProtocol(**{**setting.protocol.as_dict(), "epochs": 1})
    return (Split(images[:train_size], labels[:train_size]).to(device),
            Split(images[train_size:], labels[train_size:]).to(device), protocol)


def _members(space: NasBench201Space, train: Split, batch_size: int, device: torch.device) -> int:
    """The group size of the batched trainer when forced (``CONDNAS_TRAINER=batched``)."""
    previous = os.environ.get(TRAINER_ENV)
    os.environ[TRAINER_ENV] = "batched"
    try:
        return group_size(space, train, batch_size, device)
    finally:
        if previous is None:
            del os.environ[TRAINER_ENV]
        else:
            os.environ[TRAINER_ENV] = previous


POOLING_LAYERS = {
    "quick": ((64, 8, 8, 8), (64, 16, 4, 4), (64, 32, 2, 2), (600, 8, 8, 8)),
    "quick, 15 stacked": ((64, 120, 8, 8), (64, 240, 4, 4), (64, 480, 2, 2)),
    "cifar10-cpu": ((128, 8, 16, 16), (128, 16, 8, 8), (128, 32, 4, 4)),
    "paper": ((256, 16, 32, 32), (256, 32, 16, 16), (256, 64, 8, 8)),
    "cifar10-cpu supernet": ((128, 8, 16, 16), (128, 16, 8, 8), (128, 32, 4, 4)),
}
"""``B×C×H×W`` of the pooling layers at each setting (the last ``quick`` one: evaluating 600
images). Built and stacked networks run channels-last on a CPU, the supernet channels-first."""


def pooling_cost() -> None:
    """Forward and backward time of ``avg_pool_3x3`` as the spaces compute it and as ``nn.AvgPool2d`` does."""
    ours, reference = AvgPool3x3(), _reference_pool()
    for setting, shapes in POOLING_LAYERS.items():
        channels_first = setting.endswith("supernet")
        layout = torch.contiguous_format if channels_first else torch.channels_last
        cells = []
        for shape in shapes:
            x = torch.randn(shape).contiguous(memory_format=layout).requires_grad_()
            costs = {}
            for name, pool in (("nn.AvgPool2d", reference), ("AvgPool3x3", ours)):
                def step() -> None:
                    out = pool(x)
                    torch.autograd.grad(out, x, torch.ones_like(out))

                costs[name] = _fastest(step)
            cells.append(f"{shape[1]}×{shape[2]}×{shape[3]} (batch {shape[0]}): {1e6 * costs['nn.AvgPool2d']:.0f} → "
                         f"{1e6 * costs['AvgPool3x3']:.0f} µs ({costs['nn.AvgPool2d'] / costs['AvgPool3x3']:.2f}×)")
        print(f"avg_pool_3x3 forward + backward, {setting}, {'channels-first' if channels_first else 'channels-last'}: "
              + "; ".join(cells))


def compare_networks(name: str, setting: Setting, steps: int, repeats: int,
                     variants: dict[str, Callable[[nn.Module], nn.Module]], archs: Callable[[str], bool],
                     candidates: int = 6) -> None:
    """Train and evaluate candidates one at a time as built, and as each variant makes them.

    The first ``candidates`` of the setting's sample that ``archs`` accepts are built by
    :meth:`NasBench201Space.build` and passed through ``variants[v]`` (the first variant is the
    reference); the variants alternate, after one untimed training, and the fastest of
    ``repeats`` counts.
    """
    space = NasBench201Space(**setting.space, in_channels=setting.image[0], num_classes=10)
    train, evaluation, protocol = _setting_data(name, setting, steps, torch.device("cpu"))
    chosen = [arch for arch in space.sample(setting.candidates, 0) if archs(arch)][:candidates]
    times = {variant: {"training": [], "evaluating": []} for variant in variants}
    # Untimed: the process's first training pays a one-time start-up that would count against the first variant.
    train_model(init_candidate(space, chosen[0], 0), train, protocol, 0)
    for _ in range(repeats):
        for variant, make in variants.items():
            networks = [make(init_candidate(space, arch, 0)) for arch in chosen]
            start = time.perf_counter()
            for arch, network in zip(chosen, networks):
                train_model(network, train, protocol, derive_seed(0, arch, "order"))
            times[variant]["training"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for network in networks:
                training.evaluate(network, evaluation)
            times[variant]["evaluating"].append(time.perf_counter() - start)
    reference = next(iter(variants))
    cells = []
    for stage in ("training", "evaluating"):
        fastest = {variant: min(seconds[stage]) for variant, seconds in times.items()}
        cells.append(f"{stage}: " + ", ".join(
            f"{variant} {t:.2f} s" + ("" if variant == reference else f" ({fastest[reference] / t:.2f}×)")
            for variant, t in fastest.items()))
    print(f"  {name}, {len(chosen)} candidates one at a time, fastest of {repeats}: " + "; ".join(cells))


def _reference_pool() -> nn.AvgPool2d:
    """The ``nn.AvgPool2d`` that :class:`AvgPool3x3` stands for."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def _with_reference_pooling(network: nn.Module) -> nn.Module:
    """``network`` with every :class:`AvgPool3x3` replaced by the ``nn.AvgPool2d`` it stands for."""
    return replace_modules(network, lambda module: isinstance(module, AvgPool3x3), _reference_pool)


class _ChannelsFirst(nn.Module):
    """A built network run channels-first: its images go in as given, not made channels-last."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.net = network.net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of ``x``, every layer channels-first."""
        return self.net(x.contiguous())[1]


def _fastest(step: Callable[[], None], runs: int = 5, calls: int = 10) -> float:
    """Seconds per call of ``step``: the fastest of ``runs`` runs of ``calls`` calls, after one untimed call."""
    step()  # the first call builds the kernels
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        times.append((time.perf_counter() - start) / calls)
    return min(times)


def convolution_cost(members: tuple[int, ...] = (1, 2, 4, 8, 15, 30), batch: int = 64) -> None:
    """Per-member time of a channels-last 3×3 convolution trained as one grouped convolution.

    At the ``quick`` networks' three resolutions (C=8 at 8×8, 16 at 4×4, 32 at 2×2), a batch of
    ``batch``: forward, backward to the input and backward to the weights, fastest of 5 runs;
    with the arithmetic rate each reaches (counting the multiply-adds on image pixels, not on
    the zero padding), against a large matrix product's, about the best the core does.
    """
    print(f"1024×1024 matrix product: {_matmul_rate():.0f} GFLOP/s")
    for channels, side in ((8, 8), (16, 4), (32, 2)):
        costs = {}
        for g in members:
            x = torch.randn(batch, g * channels, side, side).contiguous(memory_format=torch.channels_last)
            weight = torch.randn(g * channels, channels, 3, 3, requires_grad=True)
            x.requires_grad_()

            def step() -> None:
                out = F.conv2d(x, weight, padding=1, groups=g)
                torch.autograd.grad(out, (x, weight), torch.ones_like(out))

            costs[g] = _fastest(step) / g
        # multiply-adds on the image (a 3×3 window with padding 1 covers 3·side - 2 pixels per axis, summed over
        # the outputs), in the forward and both backward passes, per member
        flops = 3 * 2 * batch * (3 * side - 2) ** 2 * channels * channels
        cells = ", ".join(f"{g}: {1e6 * cost:.0f} µs ({costs[1] / cost:.2f}×, {flops / cost / 1e9:.0f} GFLOP/s)"
                          for g, cost in costs.items())
        print(f"3×3 convolution, C={channels} at {side}×{side}, batch {batch}, per member by members: {cells}")


OP_KINDS = {"convolutions": ("aten::mkldnn_convolution", "aten::convolution_backward"),
            "gathering members": ("aten::index_select", "aten::index_add_")}
"""The profiled operators :func:`step_breakdown` counts apart (self time); the rest is "other"."""


def step_breakdown(preset_name: str = "quick") -> None:
    """Profile (``torch.profiler``, self CPU time) training one group of the preset's candidates, alone and stacked.

    The group is the oracle's first (its size from :func:`group_size`), seed 0, the whole
    protocol, each way once untimed first; building the networks is not profiled.
    """
    from torch.profiler import ProfilerActivity, profile

    preset = load_preset(preset_name)
    space, train, protocol = preset.space, preset.task.train, preset.config.protocol
    archs = candidate_groups(preset.candidates, group_size(space, train, protocol.batch_size, torch.device("cpu")))[0]
    orders = [derive_seed(0, arch, "order") for arch in archs]

    def alone() -> Callable[[], None]:
        networks = [init_candidate(space, arch, 0) for arch in archs]
        return lambda: [train_model(network, train, protocol, order) for network, order in zip(networks, orders)]

    def stacked() -> Callable[[], None]:
        model = space.stack_networks(archs, [init_candidate(space, arch, 0) for arch in archs])
        return lambda: train_members(model, train, protocol, orders)

    totals = {}
    for name, prepare in (("alone", alone), ("stacked", stacked)):
        prepare()()
        run = prepare()
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            run()
        seconds = {event.key: event.self_cpu_time_total / 1e6 for event in profiled.key_averages()}
        kinds = {kind: sum(seconds.get(op, 0.0) for op in ops) for kind, ops in OP_KINDS.items()}
        kinds["other"] = sum(seconds.values()) - sum(kinds.values())
        totals[name] = kinds
        cells = ", ".join(f"{kind} {value:.3f} s ({value / sum(kinds.values()):.0%})" for kind, value in kinds.items())
        print(f"{preset_name}: {len(archs)} candidates trained {name}, profiled {sum(kinds.values()):.3f} s: {cells}")
    gains = ", ".join(f"{kind} {totals['alone'][kind] / value:.2f}×" for kind, value in totals["stacked"].items()
                      if value > 0 and totals["alone"][kind] > 0)
    print(f"  stacked against alone: {gains}; in all "
          f"{sum(totals['alone'].values()) / sum(totals['stacked'].values()):.2f}×")


def _matmul_rate(size: int = 1024) -> float:
    """GFLOP/s of a ``size``×``size`` float32 matrix product, fastest of 5 runs."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / _fastest(lambda: a @ b, calls=3) / 1e9


if __name__ == "__main__":
    main()
