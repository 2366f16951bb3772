"""The batched trainer computes what training the candidates one at a time computes."""

import pytest
import torch

from harness.batched_training import (GPU_MAX_MEMBERS, MAX_MEMBERS, TRAINER_ENV, candidate_groups, group_size,
                                      train_members, train_runs, uses_batched)
from harness.errors import ConfigError
from harness.testing import tiny_image_task, tiny_space
from harness.training import DivergedError, init_candidate
from harness.types import TrainProtocol

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|skip_connect~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
]
PROTOCOL = TrainProtocol(epochs=2, batch_size=16, lr=0.05)
CPU = torch.device("cpu")


@pytest.fixture
def float64():
    """Run in double precision, where float rounding cannot hide a difference in the maths."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _both(monkeypatch, task, runs, protocol=PROTOCOL):
    evaluations = {"val": task.val, "test": task.test}
    space = tiny_space(task)
    monkeypatch.setenv(TRAINER_ENV, "sequential")
    one_at_a_time = train_runs(space, runs, task.train, evaluations, protocol, CPU)
    monkeypatch.setenv(TRAINER_ENV, "batched")
    together = train_runs(space, runs, task.train, evaluations, protocol, CPU)
    return one_at_a_time, together


def test_batched_training_equals_one_at_a_time_in_double_precision(monkeypatch, float64):
    task = tiny_image_task(num_classes=3, per_class=24)
    runs = [(arch, seed) for arch in ARCHS for seed in (0, 1)]
    one_at_a_time, together = _both(monkeypatch, task, runs)
    for run in runs:
        for key in ("val_acc", "val_loss", "test_acc", "test_loss"):
            assert together[run][key] == pytest.approx(one_at_a_time[run][key], rel=1e-9, abs=1e-9), (run, key)
    assert len({one_at_a_time[run]["val_loss"] for run in runs}) == len(runs)  # the runs really differ


def test_batched_training_agrees_in_single_precision(monkeypatch):
    task = tiny_image_task(num_classes=3, per_class=24)
    one_at_a_time, together = _both(monkeypatch, task, [(arch, 0) for arch in ARCHS])
    for run, result in one_at_a_time.items():
        assert together[run]["val_loss"] == pytest.approx(result["val_loss"], rel=1e-4)
        assert together[run]["val_acc"] == pytest.approx(result["val_acc"], abs=100 / len(task.val))


def test_stacked_networks_compute_each_network_in_train_and_eval_mode():
    task = tiny_image_task()
    space = tiny_space(task)
    networks = [init_candidate(space, arch, 0) for arch in ARCHS]
    stacked = space.stack_networks(ARCHS, [init_candidate(space, arch, 0) for arch in ARCHS])
    x = torch.stack([task.train.x[k:k + 8] for k in range(len(ARCHS))], dim=1)  # each member its own batch
    for train in (True, False):
        stacked.train(train)
        out = stacked(x)
        for k, network in enumerate(networks):
            network.train(train)
            torch.testing.assert_close(out[:, k], network(x[:, k]))


def test_unstack_hands_back_the_trained_networks():
    task = tiny_image_task()
    space = tiny_space(task)
    stacked = space.stack_networks(ARCHS, [init_candidate(space, arch, 0) for arch in ARCHS])
    before = [p.clone() for p in stacked.parameters()]
    train_members(stacked, task.train, PROTOCOL, [0, 1, 2])
    assert any(not torch.equal(a, b) for a, b in zip(before, stacked.parameters()))
    stacked.eval()
    x = task.val.x
    out = stacked(x.unsqueeze(1).expand(-1, len(ARCHS), *x.shape[1:]))
    for k, network in enumerate(stacked.unstack()):
        network.eval()
        torch.testing.assert_close(out[:, k], network(x))


def test_diverging_runs_are_named(monkeypatch):
    task = tiny_image_task()
    monkeypatch.setenv(TRAINER_ENV, "batched")
    explosive = TrainProtocol(epochs=2, batch_size=16, lr=1e12, weight_decay=0.0)
    runs = [(ARCHS[0], 0), (ARCHS[1], 3)]
    with pytest.raises(DivergedError, match="lower the learning rate") as raised:
        train_runs(tiny_space(task), runs, task.train, {"val": task.val}, explosive, CPU)
    assert str(runs) in str(raised.value)  # both runs explode, named by arch and seed


def test_trainer_is_chosen_by_the_environment(monkeypatch):
    task = tiny_image_task()
    space = tiny_space(task)
    monkeypatch.delenv(TRAINER_ENV, raising=False)
    assert uses_batched(space, 2) and not uses_batched(space, 1)
    assert group_size(space, task.train, 16, CPU) > 1
    monkeypatch.setenv(TRAINER_ENV, "sequential")
    assert not uses_batched(space, 2) and group_size(space, task.train, 16, CPU) == 1
    monkeypatch.setenv(TRAINER_ENV, "batched")
    assert uses_batched(space, 1)
    monkeypatch.setenv(TRAINER_ENV, "fastest")
    with pytest.raises(ConfigError, match="CONDNAS_TRAINER='fastest'.*'sequential'"):
        uses_batched(space, 2)


def test_spaces_without_stacking_train_one_at_a_time(monkeypatch):
    from harness.testing import tiny_graph_task

    graph = tiny_graph_task()
    monkeypatch.setenv(TRAINER_ENV, "batched")
    assert not uses_batched(tiny_space(graph), 4) and group_size(tiny_space(graph), graph.train, 16, CPU) == 1


def test_group_size_bounds_members_by_pixels(monkeypatch):
    space = tiny_space(tiny_image_task())
    big = tiny_image_task(size=64)
    monkeypatch.setenv(TRAINER_ENV, "batched")
    assert group_size(space, big.train, 16, CPU) == 2**19 // (16 * 64 * 64) == 8
    assert group_size(space, big.train, 1024, CPU) == 2**19 // (48 * 64 * 64) == 2  # a batch holds the 48 images
    monkeypatch.setenv(TRAINER_ENV, "auto")  # on a CPU, only batches of few pixels gain
    assert group_size(space, big.train, 16, CPU) == 1
    assert group_size(space, tiny_image_task(size=8).train, 16, CPU) == MAX_MEMBERS


def test_group_size_on_a_gpu_is_bounded_by_its_memory(monkeypatch):
    from harness import batched_training

    space = tiny_space(tiny_image_task())
    big = tiny_image_task(size=64)
    gpu = torch.device("cuda")
    monkeypatch.setattr(batched_training, "_device_memory", lambda device: 16 * 2**30)
    monkeypatch.delenv(TRAINER_ENV, raising=False)
    # half of 16 GiB at 12 KiB per pixel of a member's batch of 16 images of 64×64
    assert group_size(space, big.train, 16, gpu) == 8 * 2**30 // (12 * 2**10 * 16 * 64 * 64) == 10
    assert group_size(space, tiny_image_task(size=8).train, 16, gpu) == GPU_MAX_MEMBERS
    monkeypatch.setattr(batched_training, "_device_memory", lambda device: 2**30)
    assert group_size(space, big.train, 1024, gpu) == 1  # too big for two members: one at a time
    monkeypatch.setenv(TRAINER_ENV, "sequential")
    assert group_size(space, tiny_image_task(size=8).train, 16, gpu) == 1


def test_candidate_groups_are_consecutive_near_equal_and_bounded():
    names = [str(i) for i in range(30)]
    groups = candidate_groups(names, 16)
    assert [len(g) for g in groups] == [15, 15] and sum(groups, []) == names
    assert [len(g) for g in candidate_groups(names[:7], 3)] == [2, 3, 2]
    assert candidate_groups(names[:2], 1) == [["0"], ["1"]]
    with pytest.raises(ConfigError, match="at least one"):
        candidate_groups(names, 0)


def test_oracle_trains_the_whole_group_of_each_missing_run(monkeypatch):
    from harness import batched_training
    from harness.oracle import oracle_groups

    task = tiny_image_task()
    monkeypatch.delenv(TRAINER_ENV, raising=False)
    monkeypatch.setattr(batched_training, "MAX_MEMBERS", 2)
    names = ["a", "b", "c", "d", "e"]  # groups [a b] [c] [d e], as grid search cuts them
    groups = oracle_groups(names, [0, 1], [("d", 1), ("c", 1)], tiny_space(task), task, PROTOCOL, CPU)
    assert groups == [[("c", 1)], [("d", 1), ("e", 1)]]
