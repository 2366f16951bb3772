"""Fidelity of the synthesis condensers: ConvNet test accuracy after training on each condensed set.

Reproduces, at CPU scale, the headline comparison of the DC / DSA / DM / KIP / MTT papers (full
CIFAR-10, 32 px, ConvNet width 128, ipc 10: random 26.0, DC 44.9, DSA 52.1, DM 48.9, KIP 62.7,
MTT 65.3 % test accuracy):
each condenser learns ``ipc`` images per class, and a freshly initialized ConvNet trained on
the whole learned set (the proxy's train + val images) is tested on the task's test split.
Each seed condenses once and evaluates ``--evals`` networks; the table gives mean ± std over all
of them (seeds × networks) and the condensation seconds per seed.

Evaluation is the DC papers' protocol scaled down: SGD (lr 0.01, momentum 0.9, weight decay
5e-4, batches of 256, i.e. one batch per epoch at ipc 10), the learning rate ×0.1 after half
the epochs; ``plain`` trains without augmentation (how DC and Random are reported), ``dsa``
augments each image with :class:`harness.augment.SiameseAugment` (how DSA and DM are
reported, with 1000 epochs in the papers). Every set is evaluated both ways.

``tm``'s expert trajectories go to ``--cache`` (default: a fresh temporary directory, so the
first seed trains them and the others reuse them); the report says what that reuse saved.

Usage (about 35 minutes on 2 busy CPU cores with the defaults; 26 for random, dc, dsa and dm
with ``--evals 2 --dsa-epochs 600``; 19 for random, kip and tm)::

    python benchmarks/fidelity.py --out results/fidelity.md
    python benchmarks/fidelity.py --methods random kip tm --out results/fidelity-kip-tm.md

At this scale (5000 train images at 16 px, ConvNet width 32, 40-400 iterations instead of
1000-20000, hence the larger ``lr_img``) DC, DSA and DM all beat random by 6-8 points but
do not separate from each other as they do in the papers. KIP (empirical ConvNet NTK, 100
iterations) and TM (5 experts of 10 epochs, 100 iterations) beat random by about 7 and 10 points.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import condensers.dc  # noqa: F401  (registers the plugin)
import condensers.dm  # noqa: F401
import condensers.dsa  # noqa: F401
import condensers.kip  # noqa: F401
import condensers.random_selection  # noqa: F401
import condensers.tm  # noqa: F401
from harness.augment import SiameseAugment
from harness.cache import Cache
from harness.convnet import ConvNet
from harness.data import load_task
from harness.registry import CONDENSERS
from harness.seeding import derive_seed
from harness.training import evaluate
from harness.types import RunContext, Split, Task

# The CPU-scale settings this benchmark runs (and recommends for a `cifar10-cpu` preset).
CPU_SETTINGS: dict[str, dict[str, Any]] = {
    "random": {},
    "dc": {"iterations": 40, "outer_loop": 5, "inner_loop": 5, "lr_img": 0.3, "batch_real": 64, "width": 32,
           "depth": 3, "init": "real"},
    "dsa": {"iterations": 40, "outer_loop": 5, "inner_loop": 5, "lr_img": 0.3, "batch_real": 64, "width": 32,
            "depth": 3},
    "dm": {"iterations": 400, "lr_img": 3.0, "batch_real": 128, "width": 32, "depth": 3},
    "kip": {"kernel": "convnet", "iterations": 100, "lr_img": 0.04, "batch_real": 50, "width": 32, "depth": 3},
    "tm": {"iterations": 100, "lr_img": 1000.0, "syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 6,
           "experts": 5, "expert_train_epochs": 10, "batch_train": 64, "width": 32, "depth": 3},
}
PAPER = {"random": 26.0, "dc": 44.9, "dsa": 52.1, "dm": 48.9, "kip": 62.7, "tm": 65.3}


def train_and_test(images: Split, test: Split, width: int, depth: int, epochs: int, augment: bool,
                   seed: int) -> float:
    """Train a fresh ConvNet on ``images`` (``N×C×H×W``) with the DC evaluation protocol; test accuracy (%)."""
    lr = 0.01
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvNet(images.x.shape[1], int(test.y.max()) + 1, images.x.shape[-1], width=width, depth=depth)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(seed)
    siamese = SiameseAugment() if augment else None
    net.train()
    for epoch in range(epochs):
        if epoch == epochs // 2 + 1:
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.1
        order = torch.randperm(len(images), generator=generator)
        for batch in order.split(256):
            x = images.x[batch] if siamese is None else siamese(images.x[batch], generator)
            loss = F.cross_entropy(net(x), images.y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return evaluate(net, test).acc


def run(task: Task, methods: list[str], ipc: int, seeds: list[int], evals: int, width: int, depth: int,
        epochs: dict[str, int], cache: Cache, log: Any) -> dict[str, dict[str, list[float]]]:
    """Condense with every method and seed, evaluate each set; per method the lists of
    accuracies per protocol and of condensation seconds (and, for methods with expert
    trajectories, of ``experts_trained`` and ``expert_seconds`` per seed)."""
    results: dict[str, dict[str, list[float]]] = {}
    for method in methods:
        record = results.setdefault(method, {"seconds": [], **{protocol: [] for protocol in epochs}})
        for seed in seeds:
            start = time.perf_counter()
            context = RunContext(seed=seed, cache=cache)
            proxy = CONDENSERS.create(method, **CPU_SETTINGS[method]).condense(task, ipc, context)
            record["seconds"].append(time.perf_counter() - start)
            for key in ("experts_trained", "expert_seconds"):
                if key in proxy.meta:
                    record.setdefault(key, []).append(proxy.meta[key])
            learned = Split(torch.cat([proxy.train.x, proxy.val.x]), torch.cat([proxy.train.y, proxy.val.y]))
            for protocol, n_epochs in epochs.items():
                for k in range(evals):
                    record[protocol].append(train_and_test(learned, task.test, width, depth, n_epochs,
                                                           protocol == "dsa", derive_seed(seed, "eval", k)))
            log(f"{method} seed {seed}: {record['seconds'][-1]:.0f} s, loss {proxy.meta.get('matching_loss')}, "
                + ", ".join(f"{p} {record[p][-1]:.2f}" for p in epochs))
    return results


def table(results: dict[str, dict[str, list[float]]], protocols: list[str]) -> str:
    """The Markdown table: accuracy mean ± std per protocol, condensation seconds, paper number."""
    header = ("| method | " + " | ".join(f"test acc % ({p} eval)" for p in protocols)
              + " | condense s | paper (CIFAR-10, 32 px) |")
    lines = [header, "|" + "---|" * (len(protocols) + 3)]
    for method, record in results.items():
        cells = [_mean_std(record[p]) for p in protocols]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {_mean_std(record['seconds'], 1)} | "
                     f"{PAPER.get(method, float('nan')):.1f} |")
    return "\n".join(lines)


def expert_reuse(results: dict[str, dict[str, list[float]]], seeds: list[int]) -> str:
    """One line per method with expert trajectories: what training them cost, what reusing them
    from the cache cost, and the seconds saved against training them for every seed."""
    lines = []
    for method, record in results.items():
        if "expert_seconds" not in record:
            continue
        runs = list(zip(seeds, record["experts_trained"], record["expert_seconds"]))
        trained = [(seed, n, s) for seed, n, s in runs if n > 0]
        reused = [(seed, s) for seed, n, s in runs if n == 0]
        if not trained:
            lines.append(f"- `{method}`: every seed found its experts in the cache "
                         f"({statistics.mean(s for _, s in reused):.2f} s each to load).")
            continue
        per_expert = sum(s for _, _, s in trained) / sum(n for _, n, _ in trained)
        experts = CPU_SETTINGS[method]["experts"]
        saved = sum(experts * per_expert - s for _, s in reused)
        lines.append(f"- `{method}`: {experts} expert trajectories trained in {per_expert * experts:.1f} s "
                     f"(seed {trained[0][0]}); seeds {[seed for seed, _ in reused]} loaded them from the cache in "
                     f"{', '.join(f'{s:.2f}' for _, s in reused)} s: {saved:.1f} s saved.")
    return "\n".join(lines)


def _mean_std(values: list[float], digits: int = 2) -> str:
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    """Parse arguments, run the benchmark, print (and optionally write) the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="../shared/data/cifar10", help="CIFAR-10 as train.npz / test.npz")
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--resize", type=int, default=16)
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(CPU_SETTINGS), choices=list(CPU_SETTINGS))
    parser.add_argument("--evals", type=int, default=1, help="evaluation networks per condensed set")
    parser.add_argument("--eval-width", type=int, default=32, help="ConvNet width of the evaluation networks")
    parser.add_argument("--eval-depth", type=int, default=3)
    parser.add_argument("--plain-epochs", type=int, default=300, help="epochs without augmentation (paper: 300)")
    parser.add_argument("--dsa-epochs", type=int, default=300, help="epochs with DSA augmentation (paper: 1000)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--cache", type=Path, help="where tm keeps its expert trajectories (default: a fresh "
                        "temporary directory, so the first seed trains them)")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    task = load_task("npz", root=args.root, train_size=args.train_size, val_size=args.val_size,
                     test_size=args.test_size, resize=args.resize)
    start = time.perf_counter()
    epochs = {"plain": args.plain_epochs, "dsa": args.dsa_epochs}
    with tempfile.TemporaryDirectory(prefix="fidelity-cache-") as scratch:
        results = run(task, args.methods, args.ipc, args.seeds, args.evals, args.eval_width, args.eval_depth, epochs,
                      Cache(args.cache or scratch), log=lambda line: print(line, flush=True))
    settings = "\n".join(f"- `{method}`: {CPU_SETTINGS[method] or 'no parameters'}" for method in args.methods)
    reuse = expert_reuse(results, args.seeds)
    report = (f"## Condensation fidelity, CIFAR-10 subset (train {args.train_size}, {args.resize} px), "
              f"ipc {args.ipc}, seeds {args.seeds}\n\n{table(results, list(epochs))}\n\n"
              f"Evaluation: ConvNet width {args.eval_width}, depth {args.eval_depth}, {args.evals} network(s) per "
              f"set, {args.plain_epochs} epochs plain / {args.dsa_epochs} epochs with DSA augmentation, "
              f"tested on {args.test_size} images. Condenser settings:\n{settings}\n\n"
              + (f"Expert trajectories (included in the condensation seconds):\n{reuse}\n\n" if reuse else "")
              + 
              f"Total {time.perf_counter() - start:.0f} s with {args.threads} torch thread(s).\n")
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
