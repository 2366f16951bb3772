"""Plugin registries: one obvious way to add, find and create a plugin.

A plugin module registers its class with a decorator::

    from harness import Condenser, register_condenser

    @register_condenser("my_condenser")
    class MyCondenser(Condenser):
        ...

Installed packages add plugins through the entry-point groups ``condnas.condensers`` and
``condnas.search_algos`` (``name = "package.module:Class"``); the built-in plugins are declared
the same way in condnas' own ``pyproject.toml``, so the engine never imports a specific plugin.
Entry points are discovered on first use and loaded only when their plugin is asked for.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, TypeVar

from harness.errors import PluginNotFoundError, unknown_name_message

T = TypeVar("T", bound=type)


class Registry:
    """Name -> plugin class, filled by a decorator and by lazily loaded entry points.

    Args:
        kind: what the registry holds, for messages (``"condenser"``).
        group: the entry-point group scanned for third-party plugins.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._plugins: dict[str, type | EntryPoint] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator registering a plugin under ``name`` (also set as ``cls.name``)."""

        def decorate(cls: T) -> T:
            existing = self._plugins.get(name)
            if isinstance(existing, type) and existing is not cls and (
                existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(
                    f"{self.kind} name {name!r} is already taken by "
                    f"{existing.__module__}.{existing.__qualname__}; choose another name"
                )
            cls.name = name
            self._plugins[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        """All registered names, sorted (entry points included, not yet loaded)."""
        self._discover()
        return sorted(self._plugins)

    def get(self, name: str) -> type:
        """Return the plugin class registered as ``name``, loading its entry point if needed.

        Raises:
            PluginNotFoundError: no plugin has that name; the message lists the known ones.
        """
        self._discover()
        if name not in self._plugins:
            raise PluginNotFoundError(unknown_name_message(self.kind, name, list(self._plugins)))
        entry = self._plugins[name]
        if not isinstance(entry, type):  # a not yet loaded entry point
            entry = self._load(name, entry)
        return entry

    def create(self, name: str, **params: Any) -> Any:
        """Instantiate the plugin ``name`` with ``params``."""
        return self.get(name)(**params)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for entry in entry_points(group=self.group):
            self._plugins.setdefault(entry.name, entry)

    def _load(self, name: str, entry: EntryPoint) -> type:
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken third-party plugin must not hide which one broke
            raise ImportError(
                f"could not load {self.kind} {name!r} from entry point {entry.value!r} "
                f"(group {self.group!r}): {exc}"
            ) from exc
        if not isinstance(loaded, type):
            raise TypeError(
                f"entry point {name!r} = {entry.value!r} must name a class, got {type(loaded).__name__}"
            )
        loaded.name = name
        self._plugins[name] = loaded
        return loaded


CONDENSERS = Registry("condenser", "condnas.condensers")
SEARCH_ALGOS = Registry("search algorithm", "condnas.search_algos")

register_condenser = CONDENSERS.register
register_search_algo = SEARCH_ALGOS.register
