"""Config hygiene (issue 12, item 10): one source of defaults, typed keys, one meaning per key name, every
built-in algorithm naming its reward transform per suite, and config layers that cannot be found are errors."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import yaml
from click.testing import CliRunner

from offbench import registry
from offbench.config import (
    OPTIONAL_TYPES,
    read_config_file,
    resolve,
    resolve_with_sources,
    reward_transform,
)
from offbench.data.loaders import REWARD_TRANSFORMS
from offbench.data.suites import SUITES
from offbench.errors import OffbenchError
from offbench.resources import configs_dir

BUILTIN = ["iql", "bc", "filtered_bc", "awr", "awac", "onestep", "td3bc", "cql"]


def _yaml(name):
    with open(configs_dir() / f"{name}.yaml") as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("name", BUILTIN)
def test_one_source_of_defaults(name):
    """Defaults live in algorithms/<name>.py only; the YAML holds suite / dataset / fine-tuning layers."""
    doc = _yaml(name)
    assert "default" not in doc, f"configs/{name}.yaml has a default section"
    assert set(doc) <= {"suites", "datasets", "finetune"}


def test_default_section_in_a_builtin_yaml_is_an_error(tmp_path, monkeypatch):
    for f in configs_dir().glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "awac.yaml").write_text("default:\n  awac_lambda: 1.0\nsuites: {}\n")
    monkeypatch.setenv("OFFBENCH_CONFIGS", str(tmp_path))
    with pytest.raises(OffbenchError, match="default.*awac_lambda.*algorithms/awac.py"):
        read_config_file("awac")


def test_missing_config_file_is_an_error_for_builtins_not_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("OFFBENCH_CONFIGS", str(tmp_path))  # an empty configs folder
    with pytest.raises(OffbenchError, match="cql.yaml.*missing"):
        resolve(registry.get("cql").default_config, "cql", "antmaze")
    # a plug-in algorithm that ships no YAML is fine: its defaults are all it has
    assert read_config_file("some_plugin_algo")[1] == {}
    # an unreadable file is an error too, not {}
    (tmp_path / "cql.yaml").write_text("suites: [unclosed\n")
    with pytest.raises(OffbenchError, match="cannot be read"):
        read_config_file("cql")


@pytest.mark.parametrize("name", BUILTIN)
def test_yaml_layers_name_known_suites_and_datasets(name):
    """A misspelt suite or dataset layer would never apply; every one must name something that exists."""
    doc = _yaml(name)
    datasets = {t.name for s in SUITES.values() for t in s.tasks}
    for section in (doc, doc.get("finetune") or {}):
        assert set(section.get("suites") or {}) <= set(SUITES), name
        assert set(section.get("datasets") or {}) <= datasets, name


@pytest.mark.parametrize("name", BUILTIN)
def test_reward_transform_is_the_yamls_else_the_suites(name):
    """An algorithm's YAML may name a suite's reward transform (the built-in ones do, each with its reference:
    issue 12, item 2); a suite it does not name gets the suite's default (issue 26: a suite is registered once)."""
    algo = registry.get(name)
    for suite, s in SUITES.items():
        config, sources = resolve_with_sources(algo.default_config, name, suite)
        layer = f"{s.config_layer} (for {suite})" if s.config_layer and suite not in _yaml(name)["suites"] else suite
        if config["reward_transform"] is not None:
            assert sources["reward_transform"] == f"configs/{name}.yaml:suite:{layer}", (name, suite)
        else:
            assert sources["reward_transform"] == "pipeline", (name, suite)
        got = reward_transform(config, s)
        assert got in REWARD_TRANSFORMS, (name, suite)
        assert got == (config["reward_transform"] or s.reward_transform), (name, suite)
    toy = dataclasses.replace(SUITES["locomotion"], name="toy-suite-no-yaml", reward_transform="antmaze")
    config = resolve(algo.default_config, name, toy.name)  # no YAML names it: the suite's default applies
    assert config["reward_transform"] is None and reward_transform(config, toy) == "antmaze"


def test_a_suite_registration_names_its_config_layer():
    """Which YAML section a suite without its own applies is the suite's registration (``Suite.config_layer``), so
    adding a suite touches its registration and configs only; a layer that is not a suite is refused."""
    from offbench.data import suites

    assert suites.SUITES["mujoco"].config_layer == "locomotion"
    iql = registry.get("iql")
    toy = dataclasses.replace(SUITES["locomotion"], name="toy-suite-layer", config_layer="antmaze")
    try:
        suites.register(toy)
        config, sources = resolve_with_sources(iql.default_config, "iql", toy.name)
        assert sources["reward_transform"] == "configs/iql.yaml:suite:antmaze (for toy-suite-layer)"
        assert config == resolve(iql.default_config, "iql", "antmaze")  # exactly the antmaze section applies
        suites.register(dataclasses.replace(toy, config_layer=None), replace=True)  # re-registered without one
        assert resolve_with_sources(iql.default_config, "iql", toy.name)[1]["reward_transform"] == "pipeline"
    finally:
        suites.SUITES.pop(toy.name, None)
        suites.use_suite_layer(toy.name, None)
    with pytest.raises(OffbenchError, match="config_layer 'nope' is not a registered suite"):
        suites.register(dataclasses.replace(toy, config_layer="nope"))
    assert toy.name not in suites.SUITES


def test_reward_transforms_follow_each_reference():
    got = {
        n: {s: resolve(registry.get(n).default_config, n, s)["reward_transform"] for s in ("locomotion", "antmaze")}
        for n in BUILTIN
    }
    assert got["iql"] == {"locomotion": "locomotion", "antmaze": "antmaze"}  # IQL code train_offline.py
    assert got["awac"] == {"locomotion": "none", "antmaze": "antmaze"}  # CORL awac configs
    assert got["td3bc"] == {"locomotion": "none", "antmaze": "antmaze"}  # TD3_BC / CORL
    assert got["cql"] == {"locomotion": "none", "antmaze": "cql_antmaze"}  # CORL cql configs
    assert (
        resolve(registry.get("cql").default_config, "cql", "locomotion", "hopper-medium-v2")["reward_transform"]
        == "locomotion"
    )  # CORL cql/hopper/medium_v2.yaml


@pytest.mark.parametrize("name", BUILTIN)
def test_none_defaults_are_typed(name):
    for key, value in registry.get(name).default_config.items():
        if value is None:
            assert key in OPTIONAL_TYPES, f"{name}.{key} defaults to None without a declared type"


def test_typed_none_keys_are_checked_and_converted():
    d = registry.get("cql").default_config
    with pytest.raises(OffbenchError, match="exploration_noise.*float"):
        resolve(d, "cql", None, None, {"exploration_noise": "lots"})
    with pytest.raises(OffbenchError, match="reward_transform.*str"):
        resolve(d, "cql", None, None, {"reward_transform": 3})
    cfg = resolve(d, "cql", None, None, {"cql_clip_diff_min": "-5", "target_entropy": 2, "exploration_noise": None})
    assert cfg["cql_clip_diff_min"] == -5.0 and isinstance(cfg["target_entropy"], float)
    assert cfg["exploration_noise"] is None
    with pytest.raises(OffbenchError, match="filter_rule.*str"):
        resolve(registry.get("filtered_bc").default_config, "filtered_bc", None, None, {"filter_rule": 1})


def test_one_meaning_per_key_name():
    """`temperature` meant beta (inverse) for IQL / one-step and a real temperature for AWR; now each has its name."""
    for name in BUILTIN:
        assert "temperature" not in registry.get(name).default_config, name
    assert "beta" in registry.get("iql").default_config and "beta" in registry.get("onestep").default_config
    assert "awr_temperature" in registry.get("awr").default_config
    import offbench.algorithms.awr as awr

    assert not hasattr(awr, "awr_weights")  # offbench.training.kit.losses.awr_weights is exp(beta * A)
    with pytest.raises(OffbenchError, match="unknown config key 'temperature'"):
        resolve(registry.get("iql").default_config, "iql", None, None, {"temperature": 3.0})


def test_config_command_shows_layers():
    from offbench.cli import main

    res = CliRunner().invoke(main, ["config", "awac", "--suite", "antmaze"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("awac_lambda:"))
    assert "0.1" in line and "configs/awac.yaml:suite:antmaze" in line
    line = next(x for x in res.output.splitlines() if x.startswith("max_weight:"))
    assert line.rstrip().endswith("# algorithm")
