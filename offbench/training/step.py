"""The compiled pieces of training: batches sampled on the device, the ``lax.scan`` body built by a
train-step factory that closes over the algorithm's pure ``update`` and static config, a chunk of K scanned
steps per compiled call vmapped over seeds (Unifloral's pattern), and the seeds' initial states.

Nothing here knows which algorithm it runs, and nothing here does I/O.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

SAMPLED_DROP = ("episode_ends",)  # host-side bookkeeping, not sampled on the device


def sample_batch(data: dict, size, key, batch_size: int) -> dict:
    """A uniformly sampled batch from the first ``size`` rows of ``data`` (on the device)."""
    idx = jax.random.randint(key, (batch_size,), 0, size)
    return jax.tree_util.tree_map(lambda x: jnp.take(x, idx, axis=0), data)


def make_train_step(update: Callable, batch_size: int) -> Callable:
    """The ``lax.scan`` body: ``((state, key), (data, size)) -> ((state, key), metrics)``."""

    def train_step(carry, data, size):
        state, key = carry
        key, k_batch, k_update = jax.random.split(key, 3)
        batch = sample_batch(data, size, k_batch, batch_size)
        state, metrics = update(state, batch, k_update)
        return (state, key), metrics

    return train_step


def make_train_chunk(train_step: Callable, length: int, shared_data: bool = True, n_seeds: int | None = None) -> Callable:
    """``length`` scanned steps, vmapped over seeds, jitted: ``(states, keys, data, size) -> (states, keys,
    mean metrics)``. With ``shared_data`` all seeds sample one copy of the data; otherwise each seed has
    its own (leading axis), e.g. its own replay buffer.

    With ``n_seeds == 1`` the chunk runs on the seed's state without the vmap (same inputs and outputs, a
    seed axis of 1): on XLA:CPU a size-1 vmap turns every matmul into a batched dot, ~20% slower."""

    def chunk(state, key, data, size):
        def body(carry, _):
            return train_step(carry, data, size)

        (state, key), metrics = jax.lax.scan(body, (state, key), None, length=length)
        return state, key, jax.tree_util.tree_map(jnp.mean, metrics)

    data_axis = None if shared_data else 0
    donate = () if jax.default_backend() == "cpu" else (0, 1)
    if n_seeds == 1:
        def single(states, keys, data, size):
            squeeze = lambda tree: jax.tree_util.tree_map(lambda x: x[0], tree)  # noqa: E731
            if not shared_data:
                data, size = squeeze(data), squeeze(size)
            out = chunk(squeeze(states), squeeze(keys), data, size)
            return jax.tree_util.tree_map(lambda x: x[None], out)

        return jax.jit(single, donate_argnums=donate)
    return jax.jit(jax.vmap(chunk, in_axes=(0, 0, data_axis, data_axis)), donate_argnums=donate)


class ChunkCache:
    """One compiled chunk per distinct length (normally exactly one)."""

    def __init__(self, train_step, shared_data=True, n_seeds: int | None = None):
        self.train_step, self.shared_data, self.n_seeds = train_step, shared_data, n_seeds
        self.fns: dict[int, Callable] = {}

    def __call__(self, length: int):
        if length not in self.fns:
            self.fns[length] = make_train_chunk(self.train_step, length, self.shared_data, self.n_seeds)
        return self.fns[length]

    def compiles(self) -> int:
        return sum(fn._cache_size() for fn in self.fns.values())




def init_seeds(init: Callable, seeds: list[int]):
    """Initial states (stacked over seeds) and training keys for ``seeds``."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    init_keys, train_keys = jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)
    # Eager, not jitted: under jit, XLA:CPU may run several batched QR decompositions of the orthogonal
    # initialiser at once, and on a small intra-op pool (2 cores) each waits for the other's threads
    # forever (seen with 3-layer MLPs, jaxlib 0.10.2). Initialisation is done once.
    states = jax.vmap(init)(init_keys)
    return states, train_keys
