import torch

from harness.cache import Cache, content_key


def test_key_is_canonical():
    assert content_key("s", {"a": 1, "b": [1, 2]}) == content_key("s", {"b": [1, 2], "a": 1})
    assert content_key("s", {"a": 1}) != content_key("s", {"a": 2})
    assert content_key("s", {"a": 1}) != content_key("t", {"a": 1})


def test_get_or_compute_computes_once(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"acc": 0.5}

    assert cache.get_or_compute("oracle", {"k": 1}, compute) == {"acc": 0.5}
    assert cache.get_or_compute("oracle", {"k": 1}, compute) == {"acc": 0.5}
    assert len(calls) == 1


def test_tensors_round_trip(tmp_path):
    cache = Cache(tmp_path)
    value = {"x": torch.arange(6.0).reshape(2, 3)}
    cache.store("condensed", {"k": 1}, value, kind="torch")
    found, loaded = cache.load("condensed", {"k": 1}, kind="torch")
    assert found and torch.equal(loaded["x"], value["x"])


def test_corrupt_or_truncated_file_is_recomputed(tmp_path):
    cache = Cache(tmp_path)
    path = cache.store("condensed", {"k": 1}, {"x": torch.ones(100)}, kind="torch")
    path.write_bytes(path.read_bytes()[:50])
    assert cache.load("condensed", {"k": 1}, kind="torch") == (False, None)
    value = cache.get_or_compute("condensed", {"k": 1}, lambda: {"x": torch.zeros(3)}, kind="torch")
    assert torch.equal(value["x"], torch.zeros(3))
    assert cache.load("condensed", {"k": 1}, kind="torch")[0]


def test_missing_checksum_counts_as_absent(tmp_path):
    cache = Cache(tmp_path)
    path = cache.store("oracle", {"k": 1}, {"acc": 1.0})
    path.with_name(path.name + ".sha256").unlink()
    assert cache.load("oracle", {"k": 1}) == (False, None)
