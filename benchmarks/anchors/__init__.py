"""Other projects' IQL code, run from *their own files*, as yardsticks for benchmarks/throughput.py.

offbench contains none of their code. Each anchor is a checkout the user provides (``SOURCES``: the
repository, the commit measured, the files read); the modules here only build the anchor's objects with the
anchor's own classes and functions, call its own update, and loop the way its training script loops.
``benchmarks/anchors/shims.py`` supplies what their imports need and current JAX / Flax no longer provide.

Where the checkouts are, per anchor, first found wins:
``--anchor-src unifloral=DIR,jaxcorl=DIR,original=DIR`` (throughput.py), then the environment variable
``OFFBENCH_ANCHOR_SRC`` (same syntax), then ``<repo>/.anchors/<name>`` (what ``benchmarks/gpu/prepare.sh``
or ``benchmarks/gpu/anchors.sh`` writes; the folder is git-ignored). To obtain them by hand::

    git clone https://github.com/EmptyJackson/unifloral .anchors/unifloral
    git -C .anchors/unifloral checkout f2dc1278eae18ed3e22c92255119c54885414d17   # and likewise for the others

Each module exposes ``make(data, src, batch_size=256, seed=0) -> Contestant`` over a dict of NumPy arrays
(``observations, actions, rewards, next_observations, terminals``). A contestant is compiled once
(``compile()`` returns the seconds that took) and ``run(min_updates)`` makes at least that many gradient
updates in the anchor's own loop, blocks until they are done and returns how many it made.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from pathlib import Path

ANCHORS = ("unifloral", "jaxcorl", "original")
ENV_VAR = "OFFBENCH_ANCHOR_SRC"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".anchors"


@dataclasses.dataclass(frozen=True)
class Source:
    url: str
    commit: str
    files: tuple[str, ...]  # what the anchor reads (LICENSE travels with them)
    license: str


SOURCES = {
    "unifloral": Source(
        "https://github.com/EmptyJackson/unifloral",
        "f2dc1278eae18ed3e22c92255119c54885414d17",
        ("algorithms/iql.py", "LICENSE"),
        "Apache-2.0",
    ),
    "jaxcorl": Source(
        "https://github.com/nissymori/JAX-CORL",
        "d747dd8ad4fcc088ff9f1ade49a6be43a60f6556",
        ("algos/iql.py", "LICENSE"),
        "MIT",
    ),
    "original": Source(
        "https://github.com/ikostrikov/implicit_q_learning",
        "09d700248117881a75cb21f0adb95c6c8a694cb2",
        (
            "common.py",
            "critic.py",
            "actor.py",
            "value_net.py",
            "policy.py",
            "learner.py",
            "dataset_utils.py",
            "LICENSE",
        ),
        "MIT",
    ),
}


class AnchorMissing(Exception):
    """An anchor's checkout is not where it was looked for (the message says where, and how to get it)."""


@dataclasses.dataclass
class Contestant:
    name: str
    compile: Callable[[], float]
    run: Callable[[int], int]
    source: str


def parse_sources(spec: str | None) -> dict[str, Path]:
    """``name=DIR,name=DIR`` -> {name: Path}; unknown names and items without '=' are errors."""
    out: dict[str, Path] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        name, sep, path = item.partition("=")
        if not sep or name.strip() not in ANCHORS:
            raise ValueError(f"bad anchor source {item!r}: expected NAME=DIR with NAME one of {', '.join(ANCHORS)}")
        out[name.strip()] = Path(path.strip()).expanduser()
    return out


def source_dir(name: str, spec: str | None = None) -> Path:
    """The checkout of anchor ``name``: from ``spec``, then $OFFBENCH_ANCHOR_SRC, then .anchors/<name>."""
    if name not in ANCHORS:
        raise ValueError(f"unknown anchor {name!r}; known: {', '.join(ANCHORS)}")
    where = parse_sources(spec).get(name) or parse_sources(os.environ.get(ENV_VAR)).get(name) or DEFAULT_ROOT / name
    src = SOURCES[name]
    missing = [f for f in src.files if f != "LICENSE" and not (where / f).is_file()]
    if missing:
        raise AnchorMissing(
            f"anchor {name!r}: {', '.join(missing)} not found under {where}; clone {src.url} at {src.commit[:7]} "
            f"there (or run benchmarks/gpu/anchors.sh), or pass --anchor-src {name}=DIR"
        )
    return where


def get(name: str):
    """The glue module of anchor ``name`` (its ``make(data, src, ...)``)."""
    if name not in ANCHORS:
        raise ValueError(f"unknown anchor {name!r}; known: {', '.join(ANCHORS)}")
    return importlib.import_module(f"{__name__}.{name}")
