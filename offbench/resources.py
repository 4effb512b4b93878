"""Files a run needs that ship inside the package: the algorithms' YAML configs and the published
reference tables. In a checkout they live at the top level (``configs/``, ``results/reference/``); the
wheel installs them as ``offbench.configs`` and ``offbench.reference`` (``pyproject.toml``,
``[tool.setuptools.package-dir]``), and both are found here through :mod:`importlib.resources`.
``$OFFBENCH_CONFIGS`` points the configs somewhere else (tests, experiments)."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from offbench.errors import OffbenchError


def _package_dir(package: str, probe: str) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        root = None
    if root is not None:
        # a namespace package (no __init__.py) may have several locations; take the one that holds the probe
        candidates = [Path(str(p)) for p in getattr(root, "_paths", [root])]
        for c in candidates:
            if (c / probe).exists():
                return c
    raise OffbenchError(
        f"package data {package} ({probe}) is missing from this installation of offbench; "
        f"reinstall it (`pip install offbench` or `pip install -e .` in a checkout)"
    )


def configs_dir() -> Path:
    env = os.environ.get("OFFBENCH_CONFIGS")
    if env:
        return Path(env)
    return _package_dir("offbench.configs", "iql.yaml")


def reference_dir() -> Path:
    return _package_dir("offbench.reference", "published_scores.csv")


CONFIGS_ENTRY_POINT = "offbench.configs"


def plugin_config_dirs() -> list[Path]:
    """Folders of YAML config layers (``<algo>.yaml``: suites, datasets, finetune) shipped by installed plug-ins
    through the entry-point group ``offbench.configs``: the entry point names a package (its folder holds the
    files) or a callable returning a folder. They serve the plug-ins' own algorithms only: a built-in
    algorithm's YAML always comes from :func:`configs_dir`, so a plug-in never hides or changes it."""
    from importlib import metadata

    out = []
    for ep in metadata.entry_points(group=CONFIGS_ENTRY_POINT):
        try:
            obj = ep.load()
            folder = Path(str(importlib.resources.files(obj.__name__))) if hasattr(obj, "__path__") else Path(obj())
        except Exception as exc:
            raise OffbenchError(
                f"the {CONFIGS_ENTRY_POINT} entry point {ep.name} ({ep.value}) failed: {type(exc).__name__}: {exc}; "
                "reinstall or remove that plug-in"
            ) from exc
        out.append(folder)
    return out
