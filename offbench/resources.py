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
