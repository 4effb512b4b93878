"""JAX-CORL's IQL (nissymori/JAX-CORL ``algos/iql.py``, MIT), run from the user's checkout.

Everything that computes comes from that file: ``IQLConfig`` (its defaults; its module-level
``OmegaConf.from_cli()`` sees no overrides), ``create_iql_train_state``, ``Transition`` and
``IQL.update_n_times`` (``n_jitted_updates = 8`` updates unrolled in one jit, batches sampled on the
device). Written here is its ``__main__`` loop minus env, d4rl and logging: ``update_fn =
jax.jit(algo.update_n_times, static_argnums=(3,))`` called from Python with a fresh key each time. The
dataset is the benchmark's: ``get_dataset``'s clipping, reward normalisation and shuffling change values,
not the update's cost. ``compile()`` is the first call (trace + compile + 8 updates).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from . import Contestant
from .shims import load


def make(data: dict, src, batch_size: int = 256, seed: int = 0) -> Contestant:
    m = load(src, {"jaxcorl_iql": "algos/iql.py"})["jaxcorl_iql"]
    config = m.IQLConfig(seed=seed, batch_size=batch_size)
    terminals = jnp.array(data["terminals"], dtype=jnp.float32)
    dataset = m.Transition(
        observations=jnp.array(data["observations"], dtype=jnp.float32),
        actions=jnp.array(data["actions"], dtype=jnp.float32),
        rewards=jnp.array(data["rewards"], dtype=jnp.float32),
        next_observations=jnp.array(data["next_observations"], dtype=jnp.float32),
        dones=terminals,
        dones_float=terminals,
    )
    rng = jax.random.PRNGKey(config.seed)
    rng, subkey = jax.random.split(rng)
    example = jax.tree_util.tree_map(lambda x: x[0], dataset)
    train_state = m.create_iql_train_state(subkey, example.observations, example.actions, config)
    update_fn = jax.jit(m.IQL().update_n_times, static_argnums=(3,))
    box = {"ts": train_state, "rng": rng}

    def one_call():
        box["rng"], subkey = jax.random.split(box["rng"])
        box["ts"], info = update_fn(box["ts"], dataset, subkey, config)
        return info

    def compile_():
        t0 = time.perf_counter()
        jax.block_until_ready(one_call())
        return time.perf_counter() - t0

    def run(min_updates: int) -> int:
        done = 0
        while done < min_updates:  # the training script's loop
            info = one_call()
            done += config.n_jitted_updates
        jax.block_until_ready(box["ts"])
        if not np.isfinite(float(info["critic_loss"])):
            raise RuntimeError("jaxcorl: non-finite loss")
        return done

    return Contestant(
        "jaxcorl",
        compile_,
        run,
        f"nissymori/JAX-CORL algos/iql.py (Python loop of jitted {config.n_jitted_updates}-update calls)",
    )
