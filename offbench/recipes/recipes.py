"""The registry of dataset recipes that ``offbench data build`` runs.

A recipe module in ``offbench/build/`` calls :func:`register_recipe` at import time for each dataset it
can rebuild (by the D4RL name papers use). ``build(size, seed, behavior_dir, progress)`` writes the
Minari dataset ``rebuilt/<name>`` (with :func:`offbench.recipes.writer.write_minari`) and returns its id.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable
from pathlib import Path

from offbench.errors import OffbenchError

BEHAVIOR_DIR_ENV = "OFFBENCH_BEHAVIOR_DIR"


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str  # D4RL name, e.g. "hopper-medium-v2"
    suite: str
    build: Callable[..., str]  # build(size: int | None, seed: int, behavior_dir: Path, progress: bool) -> minari id
    default_size: int  # transitions (D4RL's size)
    description: str = ""
    label: str = "rebuilt"  # how scores on it are labelled ("rebuilt", "rebuilt (scripted)")
    version: int = 1  # bumped whenever the recipe's output changes; stored with the data and in records


_RECIPES: dict[str, Recipe] = {}
_UNBUILDABLE: dict[str, str] = {}  # name -> reason it cannot be rebuilt here
_DISCOVERED = False


def register_recipe(
    name: str, suite: str, build, default_size: int, description: str = "", label: str = "rebuilt", version: int = 1
) -> Recipe:
    r = Recipe(name, suite, build, int(default_size), description, label, int(version))
    _RECIPES[name] = r
    _UNBUILDABLE.pop(name, None)
    return r


def mark_unbuildable(name: str, reason: str) -> None:
    if name not in _RECIPES:
        _UNBUILDABLE[name] = reason


def discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    from offbench import recipes as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("recipes", "writer") and not info.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")


def built_version(metadata: dict) -> int | None:
    """The recipe version a rebuilt dataset was built by (its metadata's ``recipe_version``; a rebuilt
    dataset written before versions existed counts as version 1); None for data that was not rebuilt."""
    if metadata.get("recipe_version") is not None:
        return int(metadata["recipe_version"])
    return 1 if metadata.get("rebuilt") else None


def stale_reason(name: str, metadata: dict) -> str:
    """Why the rebuilt dataset ``name`` with ``metadata`` is stale ("" when it is current or not rebuilt):
    it was built by an older version of its recipe than the one registered now."""
    rec = get_recipe(name)
    built = built_version(metadata)
    if rec is None or built is None or built >= rec.version:
        return ""
    return (
        f"built by recipe version {built}, the recipe is now version {rec.version}: rebuild it with "
        f"`offbench data build {name} --overwrite`"
    )


def get_recipe(name: str) -> Recipe | None:
    discover()
    return _RECIPES.get(name)


def unbuildable_reason(name: str) -> str:
    discover()
    if name in _RECIPES:
        return ""
    return _UNBUILDABLE.get(name, "no recipe for it exists here")


def all_recipes() -> dict[str, Recipe]:
    discover()
    return dict(_RECIPES)


def default_behavior_dir() -> Path:
    """``$OFFBENCH_BEHAVIOR_DIR``, else ``../shared/data`` relative to the checkout."""
    env = os.environ.get(BEHAVIOR_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def builder(build, *key):
    """The recipe's ``build(size, seed, behavior_dir, progress)`` for one dataset: ``build(*key, size, seed,
    behaviour folder, progress)`` with the behaviour folder checked (``--behavior-dir`` or the default)."""

    def run(size=None, seed=0, behavior_dir=None, progress=False):
        return build(*key, size, seed, behavior_dir_or_error(behavior_dir), progress)

    return run


def behavior_dir_or_error(path: Path | None) -> Path:
    d = Path(path) if path else default_behavior_dir()
    if not d.exists():
        raise OffbenchError(
            f"behaviour data folder {d} does not exist; pass --behavior-dir DIR or set "
            f"{BEHAVIOR_DIR_ENV} (it holds policies/ and demos/, see ../shared/data/README.md)"
        )
    return d
