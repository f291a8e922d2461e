from __future__ import annotations

from pathlib import Path

import pytest

from eegcrp.config import ConfigError, apply_overrides, config_hash, load_config


def test_minimal_config_gets_thesis_defaults() -> None:
    cfg = load_config({"dataset": {"kind": "bciciv2b"}})
    pre = cfg.preprocessing
    assert (pre.l_freq, pre.h_freq, pre.sfreq, pre.window, pre.step) == (1.0, 60.0, 128.0, 3.0,
                                                                         1.0)
    assert pre.car is True and pre.notch == "auto"
    assert cfg.dataset.sessions == ["01T", "02T", "03T"]


def test_unknown_key_names_key_and_allowed_keys() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.sesions: unknown key; allowed keys here: "
                                          r".*sessions"):
        load_config({"dataset": {"kind": "bciciv2b", "sesions": ["01T"]}})
    with pytest.raises(ConfigError, match=r"preprocesing: unknown key; allowed keys here: .*"
                                          r"preprocessing"):
        load_config({"dataset": {"kind": "eegmat"}, "preprocesing": {}})


def test_bad_value_names_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"training\.backend: Input should be 'loky', 'dask' "
                                          r"or 'ray'"):
        load_config({"dataset": {"kind": "eegmat"}, "training": {"backend": "spark"}})
    with pytest.raises(ConfigError, match="does not match any of the expected tags"):
        load_config({"dataset": {"kind": "cho"}})
    with pytest.raises(ConfigError, match=r"dataset: required key is missing"):
        load_config({})


def test_sfreq_below_twice_lowpass_is_rejected() -> None:
    with pytest.raises(ConfigError, match="below twice h_freq"):
        load_config({"dataset": {"kind": "eegmat"}, "preprocessing": {"h_freq": 70}})


def test_overrides_parse_yaml_values_and_nest() -> None:
    cfg = load_config(
        {"dataset": {"kind": "bciciv2b"}},
        ["training.repetitions=1", "dataset.subjects=[1, 3]", "preprocessing.car=false",
         "preprocessing.h_freq=null"],
        output_dir="/tmp/x",
    )
    assert cfg.training.repetitions == 1
    assert cfg.dataset.subjects == [1, 3]
    assert cfg.preprocessing.car is False and cfg.preprocessing.h_freq is None
    assert str(cfg.output_dir) == "/tmp/x"
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        apply_overrides({}, ["training.repetitions"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config({"dataset": {"kind": "bciciv2b"}}, ["training.repetitons=1"])


def test_config_file_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_hash_is_order_independent() -> None:
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


@pytest.mark.parametrize("name", ["bciciv2b", "eegmat", "eegmmidb", "kul_aad",
                                  "moabb_cho2017", "folder_example", "bids_example"])
def test_shipped_configs_validate(name: str) -> None:
    import yaml

    config = load_config(f"configs/{name}.yaml")
    raw = yaml.safe_load(Path(f"configs/{name}.yaml").read_text())
    # every value the file sets is the one the study gets
    assert config.name == raw["name"] and config.dataset.kind == raw["dataset"]["kind"]
    for section, values in raw.items():
        if isinstance(values, dict):
            got = getattr(config, section).model_dump(mode="json")
            for key, value in values.items():
                if key in got and not isinstance(value, (dict, list)) and value is not None:
                    assert got[key] == value or got[key] == type(got[key])(value), (
                        section, key)


def test_task_labels_are_free_words_but_words() -> None:
    from eegcrp.errors import ConfigError

    base = {"name": "t", "output_dir": "/tmp/t",
            "dataset": {"kind": "folder", "path": "/tmp", "events": {"1": "target"},
                        "tmax": 0.8}}
    config = load_config({**base, "dataset": {**base["dataset"], "task": "p300"}})
    assert config.dataset.task == "p300"
    with pytest.raises(ConfigError, match="is not a label"):
        load_config({**base, "dataset": {**base["dataset"], "task": "p 300"}})
