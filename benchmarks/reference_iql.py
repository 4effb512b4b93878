"""A same-run reference for the throughput benchmark: IQL with the *update structure* of JAX-CORL's
``algos/iql.py`` (nissymori/JAX-CORL), the fastest published JAX IQL, written here from its description:

* ``n_jitted_updates = 8`` updates unrolled in Python inside one ``jax.jit``, called from a Python loop;
* batches sampled on the device inside that function;
* per update: value (target-critic forward + value forward/backward), actor (value forward + online
  critic forward + actor forward/backward), critic (value forward on s' + critic forward/backward),
  Polyak target update -- i.e. one more twin-critic forward per update than offbench's IQL, which
  reuses the target-critic Q between the value and the actor losses;
* LayerNorm in the value network (JAX-CORL's default ``layer_norm=True``).

Only the structure is reproduced (no code copied); networks are offbench's. It is a yardstick for
updates/s, not an algorithm offered to users.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from offbench.training.losses import expectile_loss
from offbench.training.networks import GaussianActor, ValueNet, critic_ensemble, gaussian_log_prob, polyak
from offbench.training.train_state import TrainState


def make_reference(obs_dim: int, act_dim: int, batch_size: int = 256, n_jitted_updates: int = 8,
                   hidden=(256, 256), expectile=0.7, beta=3.0, discount=0.99, tau=0.005, max_steps=1_000_000):
    actor = GaussianActor(act_dim, hidden)
    critic = critic_ensemble(hidden, 2)
    value = ValueNet(hidden, layer_norm=True)
    actor_tx = optax.adam(optax.cosine_decay_schedule(3e-4, max_steps))

    def init(key):
        k_a, k_c, k_v = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
        cp = critic.init(k_c, obs, act)
        return {"actor": TrainState.create(actor.init(k_a, obs), actor_tx),
                "critic": TrainState.create(cp, optax.adam(3e-4)), "target_critic": cp,
                "value": TrainState.create(value.init(k_v, obs), optax.adam(3e-4))}

    def one_update(s, b):
        def v_loss(p):
            q = jax.lax.stop_gradient(critic.apply(s["target_critic"], b["observations"], b["actions"]).min(0))
            return expectile_loss(q - value.apply(p, b["observations"]), expectile).mean()

        s = dict(s, value=s["value"].apply_gradients(jax.grad(v_loss)(s["value"].params)))

        def a_loss(p):
            v = value.apply(s["value"].params, b["observations"])
            q = critic.apply(s["critic"].params, b["observations"], b["actions"]).min(0)
            w = jnp.minimum(jnp.exp((q - v) * beta), 100.0)
            mean, log_std = actor.apply(p, b["observations"])
            return -(w * gaussian_log_prob(b["actions"], mean, log_std)).mean()

        s = dict(s, actor=s["actor"].apply_gradients(jax.grad(a_loss)(s["actor"].params)))

        def c_loss(p):
            next_v = value.apply(s["value"].params, b["next_observations"])
            target = b["rewards"] + discount * (1 - b["terminals"]) * next_v
            q = critic.apply(p, b["observations"], b["actions"])
            return ((q - target) ** 2).sum(0).mean()

        c = s["critic"].apply_gradients(jax.grad(c_loss)(s["critic"].params))
        return dict(s, critic=c, target_critic=polyak(s["target_critic"], c.params, tau))

    @jax.jit
    def update_n_times(state, data, key):
        n = data["rewards"].shape[0]
        for _ in range(n_jitted_updates):  # unrolled, as in JAX-CORL
            key, sub = jax.random.split(key)
            idx = jax.random.randint(sub, (batch_size,), 0, n)
            state = one_update(state, jax.tree_util.tree_map(lambda x: x[idx], data))
        return state

    return init, update_n_times, n_jitted_updates

