"""Other projects' IQL updates, reproduced with their own structure, as yardsticks for benchmarks/throughput.py.

Each module exposes ``make(data, batch_size=256, seed=0) -> Contestant`` over a dict of NumPy arrays
(``observations, actions, rewards, next_observations, terminals``). A contestant is compiled once
(``compile()`` returns the seconds that took) and ``run(min_updates)`` makes at least that many gradient
updates in the anchor's own loop, blocks until they are done and returns how many it made.

* ``unifloral``: EmptyJackson/unifloral ``algorithms/iql.py`` (Apache-2.0): ``lax.scan`` over update steps.
* ``jaxcorl``: nissymori/JAX-CORL ``algos/iql.py`` (MIT): a Python loop over a jitted 8-update call.
* ``original``: ikostrikov/implicit_q_learning ``learner.py`` (MIT): host-sampled NumPy batches, one
  jitted update per Python call.

They are adapted, not copied: distrax / TFP distributions are replaced by the same log-density written
out (neither library is a dependency here), wandb / gym / d4rl are dropped. What is jitted, how many network
forwards an update makes and the loop around it follow the cited files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

ANCHORS = ("unifloral", "jaxcorl", "original")

LOG_2PI = 1.8378770664093453


@dataclasses.dataclass
class Contestant:
    name: str
    compile: Callable[[], float]
    run: Callable[[int], int]
    source: str


def normal_log_prob(x, mean, log_std):
    """log N(x; mean, exp(log_std)), summed over the last axis (distrax/TFP's diagonal Normal)."""
    import jax.numpy as jnp

    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)


def get(name: str):
    import importlib

    if name not in ANCHORS:
        raise ValueError(f"unknown anchor {name!r}; known: {', '.join(ANCHORS)}")
    return importlib.import_module(f"anchors.{name}")
