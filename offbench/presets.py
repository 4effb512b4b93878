"""Run presets (``offbench run --preset NAME``), read from ``configs/presets.yaml``.

A preset sets run-length options (steps, evaluations, seeds, the size of datasets the run rebuilds, the
datasets) per suite; it never touches an algorithm's hyperparameters. Options given on the command line win.
"""

from __future__ import annotations

import yaml

from offbench.errors import OffbenchError
from offbench.resources import configs_dir

FILE = "presets.yaml"
KEYS = ("steps", "eval_every", "eval_episodes", "seeds", "build_size", "datasets", "note", "expect")


def _load() -> dict:
    path = configs_dir() / FILE
    if not path.exists():
        raise OffbenchError(f"{path} is missing from this installation of offbench; reinstall it")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise OffbenchError(f"{path}: expected a mapping of preset names")
    return data


def names() -> list[str]:
    return sorted(_load())


def resolve(name: str, suite: str) -> dict:
    """The preset's values for ``suite``: its ``default`` section, then the suite's, plus ``note``."""
    data = _load()
    if name not in data:
        raise OffbenchError(f"unknown preset {name!r}; known presets: {', '.join(sorted(data)) or 'none'}")
    p = data[name] or {}
    values = {**(p.get("default") or {}), **((p.get("suites") or {}).get(suite) or {})}
    expect = values.pop("expect", None)  # what to expect at this budget, said with the note
    values["note"] = (p.get("note") or f"preset {name}: not the paper's protocol") + (f". {expect}" if expect else "")
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise OffbenchError(f"preset {name!r} ({FILE}) has unknown keys {', '.join(unknown)}; known: {', '.join(KEYS)}")
    return values


def apply(name: str | None, suite: str, options: dict, given: set) -> tuple[dict, str]:
    """``options`` with the preset's values for those not in ``given`` (set on the command line), and the
    preset's note ("" without a preset). ``options`` keys are those of :data:`KEYS` but ``note``."""
    if not name:
        return dict(options), ""
    values = resolve(name, suite)
    out = dict(options)
    for key, value in values.items():
        if key != "note" and key in out and key not in given:
            out[key] = tuple(value) if key == "datasets" else value
    return out, values["note"]
