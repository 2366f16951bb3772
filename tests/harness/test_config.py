import pytest

from harness.config import list_presets, load_config, parse_config
from harness.errors import ConfigError


def test_quick_preset_parses():
    config = load_config("quick")
    assert config.name == "quick" and config.candidates >= 20
    assert [e.name for e in config.condensers][:2] == ["original", "random"]
    assert "quick" in list_presets()


def test_malformed_yaml_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(str(path))


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(colour="red"), "unknown keys \\['colour'\\]"),
    (lambda c: c.pop("task"), "missing required key 'task'"),
    (lambda c: c["oracle"].update(rank_by="test_acc"), "oracle.rank_by must be one of"),
    (lambda c: c.update(seeds="zero"), "seeds: expected a non-empty list of integers"),
    (lambda c: c.update(condensers=[{"name": "random", "ipc": [1]}]), "ipc: expected integers >= 2"),
    (lambda c: c["protocol"].update(epoch=3), "unknown protocol keys \\['epoch'\\]"),
    (lambda c: c["space"].update(candidates=0), "space.candidates: expected a positive integer"),
])
def test_invalid_configs_name_the_offending_key(tiny_sweep, mutate, message):
    mutate(tiny_sweep)
    with pytest.raises(ConfigError, match=message):
        parse_config(tiny_sweep)


def test_missing_config_file_or_preset():
    with pytest.raises(ConfigError, match="neither a config file nor a preset"):
        load_config("no-such-preset")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("missing.yaml")


def test_config_hash_changes_with_content(tiny_sweep):
    first = parse_config(tiny_sweep).config_hash()
    tiny_sweep["seeds"] = [0, 1]
    assert parse_config(tiny_sweep).config_hash() != first


@pytest.mark.parametrize("preset", list_presets())
def test_presets_parse_and_hcdc_reuses_the_cached_train_source(preset):
    config = load_config(preset)
    by_name = {entry.name: entry for entry in config.condensers}
    hcdc = by_name.get("hcdc")
    if hcdc is None:
        return
    modality = next((key for key in ("graph", "cv") if key in hcdc.params), None)
    params = hcdc.params[modality] if modality else hcdc.params
    default_source = {"graph": "gcond", "cv": "per_fold", None: "dc"}[modality]
    name = params.get("train_source", default_source)
    sources = [entry for entry in config.condensers if entry.name == name]  # per_fold appears once per inner
    assert any(params.get("train_source_params", {}) == source.params and set(hcdc.ipcs) <= set(source.ipcs)
               for source in sources), (
        f"{preset}: hcdc's train_source_params or ipcs differ from every {name} entry of the sweep, "
        "so its S_train would be condensed again instead of read from the cache")
