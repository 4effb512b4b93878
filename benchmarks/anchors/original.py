"""The original IQL code (ikostrikov/implicit_q_learning, MIT), run from the user's checkout.

Everything that computes comes from its files: ``learner.Learner`` (networks, optimisers, the jitted
``_update_jit``), ``critic``/``actor``/``value_net``/``policy``/``common`` behind it, and
``dataset_utils.Dataset.sample`` (host NumPy sampling). Written here is ``train_offline.py``'s loop minus
env, d4rl and logging: ``Learner(seed, obs[:1], act[:1], max_steps=1M, **configs/mujoco_config.py)``, then
per step ``agent.update(dataset.sample(256))``, one jitted update per host-sampled batch.

Shims for APIs that aged since that code (2021), applied to the loaded modules only: they see ``jax`` as
``shims.old_jax()`` (``jax.tree_multimap`` is ``jax.tree_util.tree_map``; ``jax.jit`` ignores
``policy._sample_actions``' stale ``static_argnames='distribution'``, which JAX now rejects), and
``common.Model.create`` reads ``init(...)["params"]`` because Flax's ``init`` now returns a plain dict
(``variables.pop('params')`` returned a (rest, params) pair only for a FrozenDict).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from . import Contestant
from .shims import load, old_jax

FILES = {n: f"{n}.py" for n in ("common", "critic", "actor", "value_net", "policy", "learner", "dataset_utils")}
# configs/mujoco_config.py (temperature = beta, expectile = tau); train_offline.py: max_steps = 1e6
CONFIG = dict(
    actor_lr=3e-4,
    value_lr=3e-4,
    critic_lr=3e-4,
    hidden_dims=(256, 256),
    discount=0.99,
    expectile=0.7,
    temperature=3.0,
    dropout_rate=None,
    tau=0.005,
    max_steps=1_000_000,
)


def _create(cls, model_def, inputs, tx=None):
    params = model_def.init(*inputs)["params"]
    return cls(step=1, apply_fn=model_def, params=params, tx=tx, opt_state=tx.init(params) if tx is not None else None)


def make(data: dict, src, batch_size: int = 256, seed: int = 0) -> Contestant:
    mods = load(src, FILES, {"jax": old_jax()})
    mods["common"].Model.create = classmethod(_create)
    f32 = {k: np.asarray(v, np.float32) for k, v in data.items() if k != "episode_ends"}
    dataset = mods["dataset_utils"].Dataset(
        f32["observations"],
        actions=f32["actions"],
        rewards=f32["rewards"],
        masks=1.0 - f32["terminals"],
        dones_float=f32["terminals"],
        next_observations=f32["next_observations"],
        size=len(f32["rewards"]),
    )
    np.random.seed(seed)
    agent = mods["learner"].Learner(seed, f32["observations"][:1], f32["actions"][:1], **CONFIG)

    def compile_():
        t0 = time.perf_counter()
        jax.block_until_ready(agent.update(dataset.sample(batch_size)))
        return time.perf_counter() - t0

    def run(min_updates: int) -> int:
        for _ in range(min_updates):  # train_offline.py's loop: one host batch, one jitted update
            info = agent.update(dataset.sample(batch_size))
        jax.block_until_ready(agent.critic)
        if not np.isfinite(float(info["critic_loss"])):
            raise RuntimeError("original: non-finite loss")
        return min_updates

    return Contestant(
        "original", compile_, run, "ikostrikov/implicit_q_learning learner.py (one jitted update per host batch)"
    )
