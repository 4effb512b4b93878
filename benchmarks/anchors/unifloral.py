"""Unifloral's IQL (EmptyJackson/unifloral ``algorithms/iql.py``, Apache-2.0), run from the user's checkout.

Everything that computes comes from that file: ``Args`` (its defaults), the networks ``TanhGaussianActor``,
``DualQNetwork``, ``StateValueFunction``, ``create_train_state``, ``AgentTrainState``, ``Transition`` and
``make_train_step``. What is written here is its ``__main__`` block minus the environment, d4rl and logging:
the dataset as a ``Transition`` of device arrays, obs mean/std, the four train states (target sharing the
Q seed), and the training loop, ``jax.lax.scan(_agent_train_step_fn, (rng, agent_state), None,
args.eval_interval)`` called from Python, evaluation skipped. ``compile()`` is that loop's first call
(tracing + compile + one scan of ``eval_interval`` updates).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from . import Contestant
from .shims import load


def make(data: dict, src, batch_size: int = 256, seed: int = 0, eval_interval: int | None = None) -> Contestant:
    """``eval_interval``: updates per scan call (Unifloral's default, 2500, unless given: smoke runs only)."""
    m = load(src, {"unifloral_iql": "algorithms/iql.py"})["unifloral_iql"]
    args = m.Args(seed=seed, batch_size=batch_size)
    if eval_interval is not None:
        args.eval_interval = int(eval_interval)
    dataset = m.Transition(
        obs=jnp.array(data["observations"]),
        action=jnp.array(data["actions"]),
        reward=jnp.array(data["rewards"]),
        next_obs=jnp.array(data["next_observations"]),
        done=jnp.array(data["terminals"]),
    )
    num_actions = dataset.action.shape[1]
    obs_mean = dataset.obs.mean(axis=0)
    obs_std = jnp.nan_to_num(dataset.obs.std(axis=0), nan=1.0)
    dummy_obs, dummy_action = jnp.zeros(dataset.obs.shape[1]), jnp.zeros(num_actions)
    actor_net = m.TanhGaussianActor(num_actions, obs_mean, obs_std)
    q_net = m.DualQNetwork(obs_mean, obs_std)
    value_net = m.StateValueFunction(obs_mean, obs_std)
    rng = jax.random.PRNGKey(args.seed)
    rng, rng_actor, rng_q, rng_value = jax.random.split(rng, 4)
    agent_state = m.AgentTrainState(
        actor=m.create_train_state(args, rng_actor, actor_net, [dummy_obs]),
        dual_q=m.create_train_state(args, rng_q, q_net, [dummy_obs, dummy_action]),
        dual_q_target=m.create_train_state(args, rng_q, q_net, [dummy_obs, dummy_action]),
        value=m.create_train_state(args, rng_value, value_net, [dummy_obs]),
    )
    step_fn = m.make_train_step(args, actor_net.apply, q_net.apply, value_net.apply, dataset)
    box = {"carry": (rng, agent_state)}

    def one_call():
        box["carry"], loss = jax.lax.scan(step_fn, box["carry"], None, args.eval_interval)
        return loss

    def compile_():
        t0 = time.perf_counter()
        jax.block_until_ready(one_call())
        return time.perf_counter() - t0

    def run(min_updates: int) -> int:
        done = 0
        while done < min_updates:
            loss = one_call()
            done += args.eval_interval
        jax.block_until_ready(box["carry"])
        if not np.isfinite(float(loss["q_loss"][-1])):
            raise RuntimeError("unifloral: non-finite loss")
        return done

    return Contestant(
        "unifloral", compile_, run, f"EmptyJackson/unifloral algorithms/iql.py (lax.scan of {args.eval_interval})"
    )
