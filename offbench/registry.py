"""The algorithm registry.

An algorithm is one module in ``algorithms/`` (installed as ``offbench.algorithms``) (or in a third-party package, registered through the
entry-point group ``offbench.algorithms``) that calls :func:`register` at import time.

The contract does not assume any neural-network library: an algorithm supplies

* ``default_config`` -- a flat dict of hyperparameters (the keys ``--set`` may change);
* ``make(config, spec) -> Agent`` -- a factory that closes over the static hyperparameters and the
  problem's :class:`Spec` and returns three pure functions:

  - ``init(key) -> state``: the whole training state as a pytree (parameters, optimiser states,
    target networks, counters: everything needed to continue, so it can be checkpointed);
  - ``update(state, batch, key) -> (state, metrics)``: one gradient step on a batch (a dict of
    arrays); ``metrics`` is a dict of scalars;
  - ``act(state, observations, key, deterministic) -> actions`` for a batch of observations.

* ``preprocess(data, config) -> data`` (optional) -- a pure NumPy function over the dataset's arrays
  (a dict) that runs once on the host before the data is put on the device. It may add per-transition
  fields (e.g. Monte-Carlo returns) or select transitions (e.g. the best episodes). The pipeline samples
  every field it returns.
* ``finetune`` -- whether online fine-tuning makes sense for the algorithm.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from importlib import metadata
from typing import Any, NamedTuple

from offbench.errors import OffbenchError

ENTRY_POINT_GROUP = "offbench.algorithms"


@dataclasses.dataclass(frozen=True)
class Spec:
    """What an algorithm needs to know about the problem (static, hashable)."""

    obs_dim: int
    act_dim: int
    total_steps: int = 1_000_000  # gradient steps planned for the run (for learning-rate schedules)
    act_low: float = -1.0
    act_high: float = 1.0


class Agent(NamedTuple):
    init: Callable[[Any], Any]
    update: Callable[[Any, dict, Any], tuple]
    act: Callable[..., Any]
    # Gradient steps one scan step may cover. With k > 1, ``update`` also accepts k stacked batches and keys
    # (leading axis k) and makes those k steps from a step count that is a multiple of k (e.g. TD3+BC's
    # policy-delay period, so no per-step ``lax.cond`` becomes a ``select`` under vmap); handled in
    # training/step.py, where a chunk's odd steps still call ``update`` with one batch.
    steps_per_update: int = 1


@dataclasses.dataclass(frozen=True)
class Algorithm:
    name: str
    make: Callable[[dict, Spec], Agent]
    default_config: dict
    preprocess: Callable[[dict, dict], dict] | None = None
    finetune: bool = True
    description: str = ""
    ranges: dict = dataclasses.field(default_factory=dict)  # key -> interval, e.g. {"expectile": "(0, 1)"}


_REGISTRY: dict[str, Algorithm] = {}
_BROKEN: dict[str, str] = {}  # module or plug-in name -> why it failed to load
_DISCOVERED = False


def register(
    name: str,
    *,
    make,
    default_config: dict,
    preprocess=None,
    finetune: bool = True,
    description: str = "",
    ranges: dict | None = None,
) -> Algorithm:
    """Register an algorithm under ``name`` (called by the algorithm's own module). ``ranges`` declares the
    allowed interval of values of ``default_config`` (``offbench.config.parse_range``: ``"(0, 1)"``, ``"[1, inf)"``);
    every run checks its resolved config against them before anything is obtained or trained."""
    from offbench.config import check_ranges, parse_range

    ranges = dict(ranges or {})
    unknown = sorted(set(ranges) - set(default_config))
    if unknown:
        raise OffbenchError(f"algorithm {name!r} declares ranges for keys it does not have: {unknown}")
    for spec in ranges.values():
        parse_range(spec)
    check_ranges(default_config, ranges)  # the defaults themselves lie in their ranges
    algo = Algorithm(
        name=name,
        make=make,
        default_config=dict(default_config),
        preprocess=preprocess,
        finetune=finetune,
        description=description,
        ranges=ranges,
    )
    _REGISTRY[name] = algo
    return algo


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def discover() -> None:
    """Import every module of the ``algorithms`` package and every entry point (once).

    A module that fails to import does not hide the others: its error is kept and reported when that
    name is asked for (and by ``offbench list algorithms``)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    from offbench import algorithms  # the project's own algorithm modules (top-level algorithms/ in a checkout)

    for info in pkgutil.iter_modules(algorithms.__path__):
        if not info.name.startswith("_"):
            try:
                importlib.import_module(f"offbench.algorithms.{info.name}")
            except Exception as exc:
                _BROKEN[info.name] = f"algorithms/{info.name}.py failed to import: {type(exc).__name__}: {exc}"
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            _BROKEN[ep.name] = f"plug-in {ep.value} failed to load: {type(exc).__name__}: {exc}"


def broken() -> dict[str, str]:
    discover()
    return dict(_BROKEN)


def names() -> list[str]:
    discover()
    return sorted(_REGISTRY)


def get(name: str) -> Algorithm:
    discover()
    if name not in _REGISTRY and name in _BROKEN:
        raise OffbenchError(f"algorithm {name!r} is not usable: {_BROKEN[name]}")
    if name not in _REGISTRY:
        raise OffbenchError(f"unknown algorithm {name!r}; known algorithms: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
