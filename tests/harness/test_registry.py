import sys
import textwrap

import pytest

from harness.errors import PluginNotFoundError
from harness.plugin import Condenser
from harness.registry import CONDENSERS, SEARCH_ALGOS, Registry


def test_builtins_are_found_through_entry_points():
    assert {"random", "original"} <= set(CONDENSERS.names())
    assert "grid" in SEARCH_ALGOS.names()
    assert CONDENSERS.get("random").__name__ == "RandomSelection"


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(PluginNotFoundError) as info:
        CONDENSERS.get("randm")
    message = str(info.value)
    assert "could not resolve condenser 'randm' among choices" in message
    assert "'original'" in message and "did you mean 'random'?" in message


def test_decorator_registers_and_sets_name():
    registry = Registry("condenser", "condnas.test-nothing")

    @registry.register("mine")
    class Mine(Condenser):
        modalities = ("image",)

    assert registry.get("mine") is Mine and Mine.name == "mine"
    assert registry.names() == ["mine"]


def test_name_clash_between_different_classes_fails():
    registry = Registry("condenser", "condnas.test-nothing")

    @registry.register("same")
    class First(Condenser):
        pass

    with pytest.raises(ValueError, match="already taken"):
        @registry.register("same")
        class Second(Condenser):
            pass


def test_third_party_entry_point_is_discovered_lazily(tmp_path, monkeypatch):
    """A plugin distribution on sys.path is found by its entry point and loaded on demand."""
    package = tmp_path / "thirdparty_plugin.py"
    package.write_text(textwrap.dedent('''
        from harness import Condenser, ProxyData
        class Mirror(Condenser):
            """Returns the task's own splits."""
            modalities = ("image",)
            uses_ipc = False
            def condense(self, task, ipc, ctx):
                return ProxyData(task.train, task.val)
    '''))
    dist = tmp_path / "thirdparty_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[condnas.test-group]\nmirror = thirdparty_plugin:Mirror\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("condenser", "condnas.test-group")
    assert registry.names() == ["mirror"]
    assert "thirdparty_plugin" not in sys.modules
    cls = registry.get("mirror")
    assert cls.name == "mirror" and cls.__module__ == "thirdparty_plugin"


def test_broken_entry_point_names_the_plugin(tmp_path, monkeypatch):
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[condnas.test-broken]\nbad = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="could not load condenser 'bad'"):
        Registry("condenser", "condnas.test-broken").get("bad")
