"""Base classes of the two plugin kinds: :class:`Condenser` and :class:`SearchAlgorithm`.

Parameters are declared as data (``defaults``); ``__init__`` only checks and stores them,
and behaviour lives in :meth:`Condenser.condense` / :meth:`SearchAlgorithm.search`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from typing import Any, ClassVar

from harness.errors import ConfigError
from harness.types import MODALITIES, ProxyData, RunContext, SearchResult, Task


def modules_source_hash(names: list[str] | tuple[str, ...]) -> str:
    """SHA-256 of the source of the modules ``names`` (imported if needed), in order, duplicates once.

    A cache key that includes it is invalidated by any edit to those modules.
    """
    digest = hashlib.sha256()
    for name in dict.fromkeys(names):
        module = sys.modules.get(name) or importlib.import_module(name)
        try:
            digest.update(inspect.getsource(module).encode())
        except (OSError, TypeError):
            digest.update(name.encode())
    return digest.hexdigest()


class Plugin:
    """Common parameter handling of all plugins.

    Class attributes:
        name: the registry name (set by the registering decorator).
        modalities: the task modalities the plugin supports (``"image"``, ``"graph"``).
        defaults: every parameter with its default value; other keys are rejected.
        test_params: parameter overrides small enough for the conformance kit to run the
            plugin in seconds on a CPU (fewer iterations, narrower networks).
        depends_on: modules outside the plugin's class hierarchy whose code shapes its output
            (e.g. a shared augmentation); their source joins the plugin's cache key.
    """

    name: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    test_params: ClassVar[dict[str, Any]] = {}
    depends_on: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} ({self.name!r}) got unknown parameters {unknown}; "
                f"its parameters are {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}

    def describe(self) -> dict[str, Any]:
        """Name and full parameters: what determines the plugin's output."""
        return {"name": self.name, "params": dict(sorted(self.params.items()))}

    @classmethod
    def source_hash(cls) -> str:
        """SHA-256 of the source of the module defining the plugin (and of its bases' modules).

        Part of every cache key, so editing a plugin invalidates only its own artifacts.
        """
        names = [klass.__module__ for klass in cls.__mro__ if klass is not object] + list(cls.depends_on)
        return modules_source_hash(names)

    def unsupported_reason(self, task: Task) -> str | None:
        """Why this plugin cannot run on ``task``, or ``None`` when it can."""
        if task.modality not in self.modalities:
            return f"{self.name} supports {list(self.modalities)}, not {task.modality!r} tasks"
        return None

    @classmethod
    def check_declaration(cls) -> None:
        """Raise ``TypeError`` when the class does not declare its modalities properly."""
        if not cls.modalities or not set(cls.modalities) <= set(MODALITIES):
            raise TypeError(
                f"{cls.__name__}.modalities must be a non-empty subset of {MODALITIES}, "
                f"got {cls.modalities!r}"
            )


class Condenser(Plugin):
    """Turns a task into a small :class:`ProxyData` (a proxy train split and val split).

    Class attributes:
        uses_ipc: ``False`` for proxies whose size is not set by images per class
            (the identity proxy ``original``).
        cv_pools: how it treats a cross-validation pool (a task whose val split is its train
            split, ``task.meta["val_is_train"]``, as the ``cv`` task makes it): ``"refuse"``
            (the default: a proxy split into train and val would not keep the folds; wrap the
            condenser in ``per_fold``), ``"accept"`` (it handles pools as well as other tasks)
            or ``"require"`` (only pools).
        test_task: for a condenser that needs a particular kind of task, such a task as
            ``{"name": ..., "params": {...}}`` (a :func:`harness.data.load_task` spec), small
            enough for the conformance kit (``None``: the kit's tiny task of each modality).
    """

    uses_ipc: ClassVar[bool] = True
    cv_pools: ClassVar[str] = "refuse"
    test_task: ClassVar[dict[str, Any] | None] = None

    def unsupported_reason(self, task: Task) -> str | None:
        """Why this condenser cannot run on ``task`` (its modality, or :attr:`cv_pools`), or ``None``."""
        reason = super().unsupported_reason(task)
        pool = bool(task.meta.get("val_is_train"))
        if reason is None and pool and self.cv_pools == "refuse":
            reason = (f"{self.name} splits its proxy into train and val, which loses the folds of a "
                      f"cross-validation pool; wrap it: {{name: per_fold, params: {{inner: {self.name}}}}}")
        if reason is None and not pool and self.cv_pools == "require":
            reason = (f"{self.name} condenses the folds of a cross-validation task (task 'cv' with the "
                      "'cv_folds' space); this task has a val split of its own")
        return reason

    def condense(self, task: Task, ipc: int | None, ctx: RunContext) -> ProxyData:
        """Return the proxy of ``task`` with ``ipc`` images per class (train + val together)."""
        raise NotImplementedError


class SearchAlgorithm(Plugin):
    """Scores a fixed set of candidate architectures using only a proxy.

    Class attributes:
        test_space: for an algorithm that needs a particular search space, that space as
            ``{"name": ..., "params": {...}}``, small enough for the conformance kit
            (``None``: the kit's tiny space of the task's modality).
    """

    test_space: ClassVar[dict[str, Any] | None] = None

    def search(self, space: Any, candidates: list[str], proxy: ProxyData, ctx: RunContext) -> SearchResult:
        """Return one score per candidate (higher is better), a selection and a trace."""
        raise NotImplementedError
