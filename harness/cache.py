"""A content-addressed on-disk cache for the shared stages (oracle runs, condensed sets).

A key is the SHA-256 of the canonical JSON of everything that determines an artifact
(stage, plugin name, parameters, plugin source hash, task, seed, ...), never of pickled
tensors. Each artifact is written atomically with a checksum beside it; an artifact whose
checksum is missing or wrong (a crash mid-write, a corrupted disk) counts as absent and is
recomputed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from harness.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_key(stage: str, spec: dict[str, Any]) -> str:
    """The cache key of an artifact of ``stage`` determined by ``spec``."""
    payload = canonical_json({"format": CACHE_FORMAT, "stage": stage, "spec": spec})
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


class Cache:
    """Artifacts under ``root/<stage>/<key>.{json,pt}``, each with a ``.sha256`` sidecar.

    Args:
        root: the cache directory (created on first write).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def get_or_compute(self, stage: str, spec: dict[str, Any], compute: Callable[[], Any],
                       kind: str = "json") -> Any:
        """Return the cached artifact for ``(stage, spec)``, computing and storing it if absent.

        Args:
            kind: ``"json"`` for plain values, ``"torch"`` for anything ``torch.save`` takes.
        """
        found, value = self.load(stage, spec, kind)
        if found:
            return value
        with self.lock(stage, spec):
            found, value = self.load(stage, spec, kind)  # another process may have just made it
            if found:
                return value
            value = compute()
            self.store(stage, spec, value, kind)
        return value

    @contextlib.contextmanager
    def lock(self, stage: str, spec: dict[str, Any]) -> Iterator[None]:
        """Hold an exclusive lock on one artifact, so concurrent workers and concurrent sweeps
        sharing this cache compute it once (POSIX advisory lock on ``<key>.lock``)."""
        path = self.root / stage / (content_key(stage, spec) + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, stage: str, spec: dict[str, Any], kind: str = "json") -> tuple[bool, Any]:
        """Return ``(True, value)`` for a present, intact artifact, else ``(False, None)``."""
        path = self._path(stage, spec, kind)
        data = _read_verified(path)
        if data is None:
            return False, None
        if kind == "json":
            return True, json.loads(data)
        return True, torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)

    def store(self, stage: str, spec: dict[str, Any], value: Any, kind: str = "json") -> Path:
        """Write an artifact and its checksum atomically; return its path."""
        if kind == "json":
            data = canonical_json(value).encode()
        else:
            buffer = io.BytesIO()
            torch.save(value, buffer)
            data = buffer.getvalue()
        path = self._path(stage, spec, kind)
        spec_path = path.with_suffix(".spec.json")
        atomic_write_bytes(spec_path, canonical_json(spec).encode())
        atomic_write_bytes(path, data)
        atomic_write_bytes(_sidecar(path), hashlib.sha256(data).hexdigest().encode())
        return path

    def _path(self, stage: str, spec: dict[str, Any], kind: str) -> Path:
        suffix = {"json": ".json", "torch": ".pt"}[kind]
        return self.root / stage / (content_key(stage, spec) + suffix)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_verified(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
        expected = _sidecar(path).read_text().strip()
    except FileNotFoundError:
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        log.warning("cache file %s fails its checksum; recomputing it", path)
        return None
    return data
