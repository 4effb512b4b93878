"""Plug-ins with configs (issue 30): an installed package registers an algorithm (entry point
``offbench.algorithms``) and ships its per-suite YAML layers (entry point ``offbench.configs``), found without
OFFBENCH_CONFIGS and without hiding the built-in algorithms' configs; then it runs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from offbench import registry
from offbench.config import resolve_with_sources
from offbench.errors import OffbenchError

PLUGIN = """
from offbench import registry
from offbench.algorithms import bc  # noqa: F401  (registers bc)

_bc = registry.get("bc")
registry.register("toy_bc", make=_bc.make, default_config=_bc.default_config, description="bc, from a plug-in")
"""


def _install(site: Path, configs_value: str = "toy_offbench.configs") -> None:
    """The toy package as pip installs it: the package, and a dist-info with its entry points."""
    pkg = site / "toy_offbench"
    (pkg / "configs").mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN)
    (pkg / "configs" / "__init__.py").write_text("")
    (pkg / "configs" / "toy_bc.yaml").write_text("suites:\n  locomotion:\n    batch_size: 32\n    log_every: 5\n")
    info = site / "toy_offbench-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-offbench\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[offbench.algorithms]\ntoy_bc = toy_offbench\n\n[offbench.configs]\ntoy_offbench = {configs_value}\n"
    )


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    monkeypatch.delenv("OFFBENCH_CONFIGS", raising=False)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    yield site
    registry.unregister("toy_bc")
    for name in [m for m in sys.modules if m.startswith("toy_offbench")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_a_plugin_ships_its_suite_layers_and_runs(plugin_site, hopper_file, tmp_path):
    _install(plugin_site)
    importlib.invalidate_caches()
    algo = registry.get("toy_bc")
    config, sources = resolve_with_sources(algo.default_config, "toy_bc", "locomotion")
    assert config["batch_size"] == 32 and sources["batch_size"].endswith("toy_bc.yaml:suite:locomotion")
    assert resolve_with_sources(algo.default_config, "toy_bc", "antmaze")[0]["batch_size"] == 256  # no layer
    iql = registry.get("iql")  # the built-in configs are still the package's own
    assert resolve_with_sources(iql.default_config, "iql", "antmaze")[1]["expectile"].startswith("configs/iql.yaml")
    import offbench

    (rec,) = offbench.run(
        "toy_bc", "locomotion", hopper_file, steps=10, eval_every=10, eval_episodes=1, results=str(tmp_path / "r"),
        overrides={"hidden_dims": [8, 8]}, progress=False, fetch=False,
    )  # fmt: skip
    assert rec["status"] == "finished" and rec["algo"] == "toy_bc" and rec["config"]["batch_size"] == 32


def test_a_broken_configs_entry_point_is_one_clear_error(plugin_site):
    _install(plugin_site, configs_value="toy_offbench.no_such_module")
    importlib.invalidate_caches()
    with pytest.raises(OffbenchError, match="offbench.configs entry point toy_offbench.*reinstall or remove"):
        resolve_with_sources(registry.get("toy_bc").default_config, "toy_bc", "locomotion")
