"""The original IQL code's update (github.com/ikostrikov/implicit_q_learning, ``learner.py``, ``critic.py``,
``actor.py``, ``value_net.py``, ``common.py``, ``dataset_utils.py`` at 09d7002; MIT, Copyright (c) 2021 Ilya
Kostrikov, Ashvin Nair, Sergey Levine), adapted: TFP's MultivariateNormalDiag is written out, and
``jax.tree_multimap`` (removed from JAX) is ``jax.tree_util.tree_map``.

Structure: ``train_offline.py`` samples a batch on the host with NumPy (``Dataset.sample``:
``np.random.randint`` then fancy indexing) every step and calls ``Learner.update``, i.e. one jitted
``_update_jit`` per gradient step (the batch crosses to the device each call). Per update: ``update_v``
(target twin-Q on (s, a) + V forward/backward), the AWR actor update (V(s) with the new V, target twin-Q
again, actor forward/backward), ``update_q`` (new V on s', twin-Q forward/backward), Polyak target update.
DoubleCritic is two separate Critic modules (not an ensemble), 2 x 256 ReLU, orthogonal init.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from anchors import Contestant, normal_log_prob

EXPECTILE, TEMPERATURE, TAU, DISCOUNT, LR, MAX_STEPS = 0.7, 3.0, 0.005, 0.99, 3e-4, 1_000_000


def default_init(scale=jnp.sqrt(2)):
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    activations: Callable = nn.relu
    activate_final: int = False
    dropout_rate: float | None = None

    @nn.compact
    def __call__(self, x, training: bool = False):
        for i, size in enumerate(self.hidden_dims):
            x = nn.Dense(size, kernel_init=default_init())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = self.activations(x)
                if self.dropout_rate is not None:
                    x = nn.Dropout(rate=self.dropout_rate)(x, deterministic=not training)
        return x


class ValueCritic(nn.Module):
    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, observations):
        return jnp.squeeze(MLP((*self.hidden_dims, 1))(observations), -1)


class Critic(nn.Module):
    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, observations, actions):
        return jnp.squeeze(MLP((*self.hidden_dims, 1))(jnp.concatenate([observations, actions], -1)), -1)


class DoubleCritic(nn.Module):
    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, observations, actions):
        return Critic(self.hidden_dims)(observations, actions), Critic(self.hidden_dims)(observations, actions)


class NormalTanhPolicy(nn.Module):
    """state_dependent_std=False, tanh_squash_distribution=False, log_std_min=-5 (as Learner builds it)."""

    hidden_dims: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, observations, training: bool = False):
        outputs = MLP(self.hidden_dims, activate_final=True)(observations, training=training)
        means = nn.tanh(nn.Dense(self.action_dim, kernel_init=default_init())(outputs))
        log_stds = jnp.clip(self.param("log_stds", nn.initializers.zeros, (self.action_dim,)), -5.0, 2.0)
        return means, log_stds


@flax.struct.dataclass
class Model:
    step: int
    apply_fn: nn.Module = flax.struct.field(pytree_node=False)
    params: Any
    tx: Any = flax.struct.field(pytree_node=False)
    opt_state: Any = None

    @classmethod
    def create(cls, model_def, inputs, tx=None):
        params = model_def.init(*inputs)["params"]
        return cls(step=1, apply_fn=model_def, params=params, tx=tx, opt_state=tx.init(params) if tx else None)

    def __call__(self, *args, **kwargs):
        return self.apply_fn.apply({"params": self.params}, *args, **kwargs)

    def apply_gradient(self, loss_fn):
        grads, info = jax.grad(loss_fn, has_aux=True)(self.params)
        updates, new_opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(
            step=self.step + 1, params=optax.apply_updates(self.params, updates), opt_state=new_opt_state
        ), info


def update_v(critic, value, batch):
    q1, q2 = critic(batch["observations"], batch["actions"])
    q = jnp.minimum(q1, q2)

    def loss_fn(p):
        v = value.apply_fn.apply({"params": p}, batch["observations"])
        loss = (jnp.where(q - v > 0, EXPECTILE, 1 - EXPECTILE) * (q - v) ** 2).mean()
        return loss, {"value_loss": loss, "v": v.mean()}

    return value.apply_gradient(loss_fn)


def update_actor(key, actor, critic, value, batch):
    v = value(batch["observations"])
    q1, q2 = critic(batch["observations"], batch["actions"])
    exp_a = jnp.minimum(jnp.exp((jnp.minimum(q1, q2) - v) * TEMPERATURE), 100.0)

    def loss_fn(p):
        means, log_stds = actor.apply_fn.apply(
            {"params": p}, batch["observations"], training=True, rngs={"dropout": key}
        )
        loss = -(exp_a * normal_log_prob(batch["actions"], means, log_stds)).mean()
        return loss, {"actor_loss": loss, "adv": q1 - v}

    return actor.apply_gradient(loss_fn)


def update_q(critic, target_value, batch):
    target_q = batch["rewards"] + DISCOUNT * batch["masks"] * target_value(batch["next_observations"])

    def loss_fn(p):
        q1, q2 = critic.apply_fn.apply({"params": p}, batch["observations"], batch["actions"])
        loss = ((q1 - target_q) ** 2 + (q2 - target_q) ** 2).mean()
        return loss, {"critic_loss": loss, "q1": q1.mean(), "q2": q2.mean()}

    return critic.apply_gradient(loss_fn)


@jax.jit
def _update_jit(rng, actor, critic, value, target_critic, batch):
    new_value, value_info = update_v(target_critic, value, batch)
    key, rng = jax.random.split(rng)
    new_actor, actor_info = update_actor(key, actor, target_critic, new_value, batch)
    new_critic, critic_info = update_q(critic, new_value, batch)
    new_target_params = jax.tree_util.tree_map(
        lambda p, tp: p * TAU + tp * (1 - TAU), new_critic.params, target_critic.params
    )
    return (
        rng,
        new_actor,
        new_critic,
        new_value,
        target_critic.replace(params=new_target_params),
        {**critic_info, **value_info, **actor_info},
    )


def make(data: dict, batch_size: int = 256, seed: int = 0) -> Contestant:
    host = {
        "observations": np.asarray(data["observations"], np.float32),
        "actions": np.asarray(data["actions"], np.float32),
        "rewards": np.asarray(data["rewards"], np.float32),
        "masks": 1.0 - np.asarray(data["terminals"], np.float32),
        "next_observations": np.asarray(data["next_observations"], np.float32),
    }
    size = len(host["rewards"])
    obs, act = host["observations"][:1], host["actions"][:1]
    rng = jax.random.PRNGKey(seed)
    rng, actor_key, critic_key, value_key = jax.random.split(rng, 4)
    actor_tx = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(optax.cosine_decay_schedule(-LR, MAX_STEPS)))
    m = {
        "rng": rng,
        "actor": Model.create(NormalTanhPolicy((256, 256), act.shape[-1]), [actor_key, obs], actor_tx),
        "critic": Model.create(DoubleCritic((256, 256)), [critic_key, obs, act], optax.adam(LR)),
        "value": Model.create(ValueCritic((256, 256)), [value_key, obs], optax.adam(LR)),
        "target_critic": Model.create(DoubleCritic((256, 256)), [critic_key, obs, act]),
    }
    np_rng = np.random.default_rng(seed)

    def sample():  # dataset_utils.Dataset.sample
        idx = np_rng.integers(size, size=batch_size)
        return {k: v[idx] for k, v in host.items()}

    def compile_():
        t0 = time.perf_counter()
        m["fn"] = _update_jit.lower(
            m["rng"], m["actor"], m["critic"], m["value"], m["target_critic"], sample()
        ).compile()
        return time.perf_counter() - t0

    def run(min_updates: int) -> int:
        for _ in range(min_updates):  # train_offline.py's loop: one host batch, one jitted update
            (m["rng"], m["actor"], m["critic"], m["value"], m["target_critic"], info) = m["fn"](
                m["rng"], m["actor"], m["critic"], m["value"], m["target_critic"], sample()
            )
        jax.block_until_ready(m["critic"])
        assert np.isfinite(float(info["critic_loss"]))
        return min_updates

    return Contestant(
        "original",
        compile_,
        run,
        "ikostrikov/implicit_q_learning learner.py (one jitted update per host-sampled batch)",
    )
