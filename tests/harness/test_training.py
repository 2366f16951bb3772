import pytest
import torch

from harness.errors import DivergedError
from harness.testing import tiny_image_task, tiny_space
from harness.training import evaluate, train_candidate, train_model
from harness.types import TrainProtocol

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def test_training_beats_chance_on_separable_task():
    task = tiny_image_task(num_classes=3, per_class=24)
    result = train_candidate(tiny_space(task), ARCH, task.train, {"val": task.val},
                             TrainProtocol(epochs=8, batch_size=16, lr=0.05), seed=0, device=torch.device("cpu"))
    assert result["val_acc"] > 60.0  # chance is 33 %
    assert result["val_loss"] > 0 and result["train_seconds"] > 0


def test_same_seed_same_numbers_other_seed_other_numbers():
    task = tiny_image_task()
    protocol = TrainProtocol(epochs=2, batch_size=16, lr=0.05)
    runs = [train_candidate(tiny_space(task), ARCH, task.train, {"val": task.val}, protocol, seed, torch.device("cpu"))
            for seed in (0, 0, 1)]
    assert runs[0]["val_loss"] == runs[1]["val_loss"]
    assert runs[0]["val_loss"] != runs[2]["val_loss"]


def test_diverging_run_raises_clear_error():
    task = tiny_image_task()
    model = tiny_space(task).build(ARCH)
    with pytest.raises(DivergedError, match="lower the learning rate"):
        train_model(model, task.train, TrainProtocol(epochs=2, batch_size=16, lr=1e12, weight_decay=0.0), seed=0)


def test_evaluate_counts_accuracy():
    task = tiny_image_task()

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(labels[: len(x)], task.num_classes).float() * 10

    labels = task.val.y
    assert evaluate(Oracle(), task.val, batch_size=len(labels)).acc == 100.0
