"""Speed work that must not change what is computed (issue 20): IQL's fused value forward, TD3+BC's
policy-delay period as one scan step, per-seed jitted initialisation, ahead-of-time compile timing."""

from __future__ import annotations

import faulthandler

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from offbench import registry
from offbench.config import resolve
from offbench.errors import OffbenchError
from offbench.training.kit.losses import awr_weights, expectile_loss, regress_critics
from offbench.training.kit.networks import GaussianActor, ValueNet, critic_ensemble, gaussian_log_prob, polyak
from offbench.training.step import ChunkCache, init_seeds, make_train_chunk, make_train_step, split_chunk

OBS, ACT = 5, 3


def agent_of(name, total_steps=100, **overrides):
    algo = registry.get(name)
    config = resolve(algo.default_config, name, "locomotion", None, {"hidden_dims": [32, 32], **overrides})
    return algo.make(config, registry.Spec(OBS, ACT, total_steps=total_steps)), config


def dataset(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "observations": jnp.asarray(rng.normal(size=(n, OBS)), jnp.float32),
        "actions": jnp.asarray(rng.uniform(-0.9, 0.9, (n, ACT)), jnp.float32),
        "rewards": jnp.asarray(rng.normal(size=n), jnp.float32),
        "next_observations": jnp.asarray(rng.normal(size=(n, OBS)), jnp.float32),
        "terminals": jnp.asarray(rng.uniform(size=n) < 0.1, jnp.float32),
    }


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------------
# IQL: V(s) and V(s') of the updated value net in one forward call


def iql_update_before(config):
    """IQL's update as it was before issue 20: three separate value forwards (the order of the original code)."""
    hidden = tuple(config["hidden_dims"])
    actor, critic, value = GaussianActor(ACT, hidden), critic_ensemble(hidden, 2), ValueNet(hidden)

    def update(state, batch, key):
        obs, act = batch["observations"], batch["actions"]
        target_q = critic.apply(state["target_critic"], obs, act).min(0)

        def value_loss(params):
            v = value.apply(params, obs)
            return expectile_loss(target_q - v, config["expectile"]).mean(), v

        (v_loss, v), g = jax.value_and_grad(value_loss, has_aux=True)(state["value"].params)
        value_state = state["value"].apply_gradients(g)
        v_new = value.apply(value_state.params, obs)
        weights = awr_weights(
            target_q - v_new, config["beta"] if "beta" in config else config["temperature"], config["max_weight"]
        )

        def actor_loss(params):
            mean, log_std = actor.apply(params, obs, training=True, rngs={"dropout": key})
            return -(weights * gaussian_log_prob(act, mean, log_std)).mean()

        a_loss, g = jax.value_and_grad(actor_loss)(state["actor"].params)
        actor_state = state["actor"].apply_gradients(g)
        next_v = value.apply(value_state.params, batch["next_observations"])
        target = batch["rewards"] + config["discount"] * (1.0 - batch["terminals"]) * next_v
        critic_state, q_loss, q = regress_critics(critic, state["critic"], obs, act, target)
        new_state = {
            "actor": actor_state,
            "critic": critic_state,
            "value": value_state,
            "target_critic": polyak(state["target_critic"], critic_state.params, config["tau"]),
        }
        return new_state, {
            "critic_loss": q_loss,
            "value_loss": v_loss,
            "actor_loss": a_loss,
            "q": q.mean(),
            "v": v.mean(),
            "adv": (target_q - v_new).mean(),
            "weight": weights.mean(),
        }

    return update


def test_iql_fused_value_forward_computes_the_same_update():
    agent, config = agent_of("iql")
    data = dataset()
    new, old = jax.jit(agent.update), jax.jit(iql_update_before(config))
    s_new = s_old = agent.init(jax.random.PRNGKey(0))
    for i in range(5):  # several steps, so the next step sees the (same) updated value net
        batch = jax.tree_util.tree_map(lambda x, i=i: x[i * 32 : (i + 1) * 32], data)
        s_new, m_new = new(s_new, batch, jax.random.PRNGKey(i))
        s_old, m_old = old(s_old, batch, jax.random.PRNGKey(i))
        assert m_new.keys() == m_old.keys()
        assert_trees_close(m_new, m_old)
    assert_trees_close(s_new, s_old)


# --------------------------------------------------------------------------------------------------
# TD3+BC: one scan step per policy-delay period


def td3bc_chunks(length, start=0, n_seeds=2, freq=2):
    agent, config = agent_of("td3bc", policy_freq=freq)
    states, keys = init_seeds(agent.init, list(range(n_seeds)))
    data, size = dataset(), jnp.asarray(200, jnp.int32)
    if start:  # bring the counters to ``start`` with single steps (the old structure)
        warm = make_train_chunk(make_train_step(agent.update, 32), start, n_seeds=n_seeds)
        states, keys, _ = warm(states, keys, data, size)
    old = make_train_chunk(make_train_step(agent.update, 32), length, n_seeds=n_seeds)
    new = make_train_chunk(
        make_train_step(agent.update, 32, agent.steps_per_update), length, n_seeds=n_seeds, start=start
    )
    return agent, old, new, (states, keys, data, size)


@pytest.mark.parametrize("length,start", [(7, 0), (6, 1), (1, 1)])
def test_td3bc_period_steps_equal_single_steps(length, start):
    agent, old, new, args = td3bc_chunks(length, start)
    assert agent.steps_per_update == 2
    s_old, k_old, m_old = old(*args)
    s_new, k_new, m_new = new(*args)
    np.testing.assert_array_equal(np.asarray(k_old), np.asarray(k_new))  # same keys: same batches, same noise
    assert np.asarray(s_new["step"]).tolist() == [start + length] * 2  # gradient steps, not scan steps
    assert_trees_close(s_old, s_new)
    assert_trees_close(m_old, m_new)
    # the actor moved exactly on the steps TD3 updates it (counts 2, 4, ...)
    expected = sum((c + 1) % 2 == 0 for c in range(start, start + length)) / length
    np.testing.assert_allclose(np.asarray(m_new["actor_updated"]), expected, rtol=1e-6)


def test_td3bc_period_chunk_has_no_branch():
    """One seed keeps a real ``cond`` in the old structure; whole periods need none (nothing for vmap to
    turn into a select that computes the actor step every update)."""
    agent, old, new, args = td3bc_chunks(8, n_seeds=1)
    assert "cond[" in str(jax.make_jaxpr(old)(*args))
    assert "cond[" not in str(jax.make_jaxpr(new)(*args))


def test_split_chunk_and_bad_length():
    assert split_chunk(8, 0, 2) == (0, 4, 0)
    assert split_chunk(7, 0, 2) == (0, 3, 1)
    assert split_chunk(6, 1, 2) == (1, 2, 1)
    assert split_chunk(1, 1, 3) == (1, 0, 0)
    assert split_chunk(10, 4, 3) == (2, 2, 2)
    agent, _ = agent_of("iql")
    with pytest.raises(OffbenchError, match="at least one gradient step"):
        make_train_chunk(make_train_step(agent.update, 32), 0)


# --------------------------------------------------------------------------------------------------
# Start-up and compile timing


def test_init_seeds_of_default_iql_networks_do_not_hang():
    """Regression (issue 20): jitting ``init`` per seed hung XLA:CPU on 2 cores with IQL's default 2 x 256
    networks (one seed was enough). ``init_seeds`` stays eager; a hang becomes a failure here."""
    algo = registry.get("iql")
    agent = algo.make(resolve(algo.default_config, "iql", "locomotion", None, {}), registry.Spec(17, 6))
    faulthandler.dump_traceback_later(240, exit=True)
    try:
        states, train_keys = init_seeds(agent.init, [0, 1])
        jax.block_until_ready(states)
    finally:
        faulthandler.cancel_dump_traceback_later()
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    init_keys, expected_keys = jax.vmap(lambda k: tuple(jax.random.split(k)))(keys)
    np.testing.assert_array_equal(np.asarray(train_keys), np.asarray(expected_keys))
    kernels = [
        np.asarray(x) for x in jax.tree_util.tree_leaves(states["actor"].params) if x.ndim == 3
    ]  # (seed, in, out)
    assert kernels and all(not np.allclose(k[0], k[1]) for k in kernels)  # seeds differ


def test_chunk_cache_compiles_ahead_of_time_once():
    agent, _ = agent_of("iql")
    states, keys = init_seeds(agent.init, [0, 1])
    data, size = dataset(), jnp.asarray(200, jnp.int32)
    cache = ChunkCache(make_train_step(agent.update, 32), n_seeds=2)
    fn = cache(10, states, keys, data, size)
    assert isinstance(fn, jax.stages.Compiled) and cache.compiles() == 1 and cache.compile_s > 0
    spent = cache.compile_s
    states, keys, _ = fn(states, keys, data, size)
    assert cache(10, states, keys, data, size, start=10) is fn  # same length: no second compile
    assert cache.compile_s == spent and cache.compiles() == 1
    cache(5, states, keys, data, size)
    assert cache.compiles() == 2 and cache.compile_s > spent
