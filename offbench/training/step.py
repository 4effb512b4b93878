"""The compiled pieces of training: batches sampled on the device, the ``lax.scan`` body built by a
train-step factory that closes over the algorithm's pure ``update`` and static config, a chunk of K scanned
steps per compiled call vmapped over seeds (Unifloral's pattern), and the seeds' initial states.

An algorithm whose ``Agent.steps_per_update`` is k > 1 (TD3+BC: one policy-delay period) gets one scan step
per k gradient steps: its ``update`` receives k stacked batches and keys, sampled exactly as k single steps
would sample them. A chunk that does not start or end on a period boundary runs the odd steps one at a time.

Nothing here knows which algorithm it runs, and nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from offbench.errors import OffbenchError

SAMPLED_DROP = ("episode_ends",)  # host-side bookkeeping, not sampled on the device


def sample_batch(data: dict, size, key, batch_size: int) -> dict:
    """A uniformly sampled batch from the first ``size`` rows of ``data`` (on the device)."""
    idx = jax.random.randint(key, (batch_size,), 0, size)
    return jax.tree_util.tree_map(lambda x: jnp.take(x, idx, axis=0), data)


def make_train_step(update: Callable, batch_size: int, steps_per_update: int = 1) -> Callable:
    """The ``lax.scan`` body: ``((state, key), (data, size)) -> ((state, key), metrics)``: one gradient step.

    With ``steps_per_update`` k > 1 the returned function also has ``.period``, the body of one scan step
    that makes k gradient steps: it splits the key and samples k batches in the order k single steps would,
    and calls ``update`` once on the stacked batches and keys (leading axis k). ``.steps_per_update`` is k."""

    def draw(key, data, size):
        key, k_batch, k_update = jax.random.split(key, 3)
        return key, sample_batch(data, size, k_batch, batch_size), k_update

    def train_step(carry, data, size):
        state, key = carry
        key, batch, k_update = draw(key, data, size)
        state, metrics = update(state, batch, k_update)
        return (state, key), metrics

    def period(carry, data, size):
        state, key = carry
        batches, k_updates = [], []
        for _ in range(steps_per_update):
            key, batch, k_update = draw(key, data, size)
            batches.append(batch)
            k_updates.append(k_update)
        stack = lambda *xs: jnp.stack(xs)  # noqa: E731
        state, metrics = update(state, jax.tree_util.tree_map(stack, *batches), jnp.stack(k_updates))
        return (state, key), metrics

    train_step.steps_per_update = int(steps_per_update)
    train_step.period = period if steps_per_update > 1 else None
    return train_step


def split_chunk(length: int, start: int, k: int) -> tuple[int, int, int]:
    """(single steps before the first period boundary, whole periods, single steps after the last)."""
    head = min((-start) % k, length)
    periods = (length - head) // k
    return head, periods, length - head - periods * k


def make_train_chunk(
    train_step: Callable, length: int, shared_data: bool = True, n_seeds: int | None = None, start: int = 0
) -> Callable:
    """``length`` scanned gradient steps from gradient step ``start``, vmapped over seeds, jitted:
    ``(states, keys, data, size) -> (states, keys, mean metrics)``. With ``shared_data`` all seeds sample
    one copy of the data; otherwise each seed has its own (leading axis), e.g. its own replay buffer.

    With ``n_seeds == 1`` the chunk runs on the seed's state without the vmap (same inputs and outputs, a
    seed axis of 1): on XLA:CPU a size-1 vmap turns every matmul into a batched dot, ~20% slower."""
    if length < 1:
        raise OffbenchError(f"a training chunk needs at least one gradient step, got {length}")
    k = getattr(train_step, "steps_per_update", 1)
    head, periods, tail = split_chunk(length, start, k) if k > 1 else (0, length, 0)
    period_body = train_step.period if k > 1 else train_step

    def chunk(state, key, data, size):
        carry, total = (state, key), None
        for body, n in ((train_step, head), (period_body, periods), (train_step, tail)):
            if n == 0:
                continue
            carry, metrics = jax.lax.scan(lambda c, _, body=body: body(c, data, size), carry, None, length=n)
            sums = jax.tree_util.tree_map(jnp.sum, metrics)
            total = sums if total is None else jax.tree_util.tree_map(jnp.add, total, sums)
        state, key = carry
        return state, key, jax.tree_util.tree_map(lambda s: s / length, total)

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
    """One chunk compiled ahead of time per distinct (length, start within a period): normally exactly one.

    ``cache(length, states, keys, data, size, start=step)`` returns the compiled chunk for arguments shaped
    like those; compiling it (``jit(...).lower(...).compile()``) is timed on its own into ``compile_s``, so
    a caller's timing of the call itself is pure training."""

    def __init__(self, train_step, shared_data=True, n_seeds: int | None = None):
        self.train_step, self.shared_data, self.n_seeds = train_step, shared_data, n_seeds
        self.period = getattr(train_step, "steps_per_update", 1)
        self.fns: dict[tuple[int, int], Callable] = {}
        self.compile_s = 0.0

    def __call__(self, length: int, states, keys, data, size, start: int = 0):
        key = (length, start % self.period)
        if key not in self.fns:
            t0 = time.perf_counter()
            fn = make_train_chunk(self.train_step, length, self.shared_data, self.n_seeds, start=start)
            self.fns[key] = fn.lower(states, keys, data, size).compile()
            self.compile_s += time.perf_counter() - t0
        return self.fns[key]

    def compiles(self) -> int:
        return len(self.fns)


def init_seeds(init: Callable, seeds: list[int]):
    """Initial states (stacked over seeds) and training keys for ``seeds``.

    Eager, not jitted: XLA:CPU deadlocks on a small intra-op pool (2 cores) running the orthogonal
    initialiser's QR decompositions inside one program: seen jitted under vmap with 3-layer MLPs, and (issue
    20) jitted per seed with IQL's default 2 x 256 networks, one seed, jaxlib 0.10.2 -- with or without
    ``xla_cpu_multi_thread_eigen``. Initialisation is done once per run."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    init_keys, train_keys = jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)
    return jax.vmap(init)(init_keys), train_keys
