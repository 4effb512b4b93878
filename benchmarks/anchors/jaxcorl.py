"""JAX-CORL's IQL update (github.com/nissymori/JAX-CORL, ``algos/iql.py`` at d747dd8; MIT, Copyright (c) 2024
Soichiro Nishimori), adapted: distrax's MultivariateNormalDiag is written out, and the dataset is the
benchmark's (no shuffling or reward normalisation, which do not change the update's cost).

Structure: ``IQL.update_n_times`` unrolls ``n_jitted_updates = 8`` updates in Python inside one ``jax.jit``
(batches sampled on the device) and the training script calls it from a Python loop with a fresh key. Per
update: value (target twin-Q on (s, a) + V forward/backward), actor (V(s) + target twin-Q on (s, a) again +
actor forward/backward), critic (V(s') + twin-Q forward/backward), Polyak target update. Networks: 2 x 256
ReLU, orthogonal init, LayerNorm in the value net (``layer_norm=True``), actor Adam with a cosine schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState

from anchors import Contestant, normal_log_prob

N_JITTED, EXPECTILE, BETA, TAU, DISCOUNT, LR, MAX_STEPS = 8, 0.7, 3.0, 0.005, 0.99, 3e-4, 1_000_000


def default_init(scale=jnp.sqrt(2)):
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    activations: Callable = nn.relu
    activate_final: bool = False
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        for i, size in enumerate(self.hidden_dims):
            x = nn.Dense(size, kernel_init=default_init())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
                x = self.activations(x)
        return x


class Critic(nn.Module):
    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, observations, actions):
        return jnp.squeeze(MLP((*self.hidden_dims, 1))(jnp.concatenate([observations, actions], -1)), -1)


class ValueCritic(nn.Module):
    hidden_dims: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, observations):
        return jnp.squeeze(MLP((*self.hidden_dims, 1), layer_norm=self.layer_norm)(observations), -1)


class GaussianPolicy(nn.Module):
    hidden_dims: Sequence[int]
    action_dim: int
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, observations):
        outputs = MLP(self.hidden_dims, activate_final=True)(observations)
        means = nn.Dense(self.action_dim, kernel_init=default_init())(outputs)
        log_stds = self.param("log_stds", nn.initializers.zeros, (self.action_dim,))
        return means, jnp.clip(log_stds, self.log_std_min, self.log_std_max)


class IQLTrainState(NamedTuple):
    rng: Any
    critic: TrainState
    target_critic: TrainState
    value: TrainState
    actor: TrainState


def expectile_loss(diff, expectile):
    return jnp.where(diff > 0, expectile, 1 - expectile) * diff**2


def update_by_loss_grad(train_state, loss_fn):
    loss, grad = jax.value_and_grad(loss_fn)(train_state.params)
    return train_state.apply_gradients(grads=grad), loss


def update_value(ts, batch):
    q1, q2 = ts.target_critic.apply_fn(ts.target_critic.params, batch["observations"], batch["actions"])
    q = jax.lax.stop_gradient(jnp.minimum(q1, q2))

    def loss_fn(p):
        return expectile_loss(q - ts.value.apply_fn(p, batch["observations"]), EXPECTILE).mean()

    value, loss = update_by_loss_grad(ts.value, loss_fn)
    return ts._replace(value=value), loss


def update_actor(ts, batch):
    v = ts.value.apply_fn(ts.value.params, batch["observations"])
    q1, q2 = ts.critic.apply_fn(ts.target_critic.params, batch["observations"], batch["actions"])
    exp_a = jnp.minimum(jnp.exp((jnp.minimum(q1, q2) - v) * BETA), 100.0)

    def loss_fn(p):
        means, log_stds = ts.actor.apply_fn(p, batch["observations"])
        return -(exp_a * normal_log_prob(batch["actions"], means, log_stds)).mean()

    actor, loss = update_by_loss_grad(ts.actor, loss_fn)
    return ts._replace(actor=actor), loss


def update_critic(ts, batch):
    next_v = ts.value.apply_fn(ts.value.params, batch["next_observations"])
    target_q = batch["rewards"] + DISCOUNT * (1 - batch["dones"]) * next_v

    def loss_fn(p):
        q1, q2 = ts.critic.apply_fn(p, batch["observations"], batch["actions"])
        return ((q1 - target_q) ** 2 + (q2 - target_q) ** 2).mean()

    critic, loss = update_by_loss_grad(ts.critic, loss_fn)
    return ts._replace(critic=critic), loss


def update_n_times(ts, dataset, rng):
    for _ in range(N_JITTED):
        rng, subkey = jax.random.split(rng)
        idx = jax.random.randint(subkey, (256,), 0, len(dataset["observations"]))
        batch = jax.tree_util.tree_map(lambda x, idx=idx: x[idx], dataset)
        ts, value_loss = update_value(ts, batch)
        ts, actor_loss = update_actor(ts, batch)
        ts, critic_loss = update_critic(ts, batch)
        new_target = jax.tree_util.tree_map(
            lambda p, tp: p * TAU + tp * (1 - TAU), ts.critic.params, ts.target_critic.params
        )
        ts = ts._replace(target_critic=ts.target_critic.replace(params=new_target))
    return ts, {"value_loss": value_loss, "actor_loss": actor_loss, "critic_loss": critic_loss}


def make(data: dict, batch_size: int = 256, seed: int = 0) -> Contestant:
    assert batch_size == 256, "JAX-CORL's default batch size"
    dataset = {
        "observations": jnp.asarray(data["observations"]),
        "actions": jnp.asarray(data["actions"]),
        "rewards": jnp.asarray(data["rewards"]),
        "next_observations": jnp.asarray(data["next_observations"]),
        "dones": jnp.asarray(data["terminals"]),
    }
    obs, act = dataset["observations"][0], dataset["actions"][0]
    rng = jax.random.PRNGKey(seed)
    rng, actor_rng, critic_rng, value_rng = jax.random.split(rng, 4)
    actor_model = GaussianPolicy((256, 256), act.shape[-1])
    actor_tx = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(optax.cosine_decay_schedule(-LR, MAX_STEPS)))
    critic_model = nn.vmap(
        Critic, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None, out_axes=0, axis_size=2
    )((256, 256))
    value_model = ValueCritic((256, 256), layer_norm=True)
    mk = lambda model, key, tx, *x: TrainState.create(apply_fn=model.apply, params=model.init(key, *x), tx=tx)  # noqa: E731
    ts = IQLTrainState(
        rng,
        critic=mk(critic_model, critic_rng, optax.adam(LR), obs, act),
        target_critic=mk(critic_model, critic_rng, optax.adam(LR), obs, act),
        value=mk(value_model, value_rng, optax.adam(LR), obs),
        actor=mk(actor_model, actor_rng, actor_tx, obs),
    )
    box = {"ts": ts, "rng": rng, "fn": None}

    def compile_():
        t0 = time.perf_counter()
        box["fn"] = jax.jit(update_n_times).lower(box["ts"], dataset, box["rng"]).compile()
        return time.perf_counter() - t0

    def run(min_updates: int) -> int:
        done = 0
        while done < min_updates:  # the training script's loop
            box["rng"], subkey = jax.random.split(box["rng"])
            box["ts"], info = box["fn"](box["ts"], dataset, subkey)
            done += N_JITTED
        jax.block_until_ready(box["ts"])
        assert np.isfinite(float(info["critic_loss"]))
        return done

    return Contestant(
        "jaxcorl", compile_, run, "nissymori/JAX-CORL algos/iql.py (Python loop of jitted 8-update calls)"
    )
