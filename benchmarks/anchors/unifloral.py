"""Unifloral's IQL update (github.com/EmptyJackson/unifloral, ``algorithms/iql.py`` at f2dc127; Apache-2.0,
Copyright the Unifloral authors), adapted: distrax's Normal is written out, the dataset is a jit argument
instead of a closed-over constant, and the ``lax.scan`` over ``eval_interval`` (2500) steps is jitted once
(its script calls ``lax.scan`` between evaluations).

Per update (``make_train_step._train_step``): Polyak target update first; target twin-Q on (s, a) and
V(s') from the *current* value net; Q and V losses and gradients from the same pre-update parameters;
the actor's weights from the value loss's advantage. Networks: 2 x 256 ReLU, obs normalisation inside
every network, Flax default init, Adam(eps=1e-5) with a cosine schedule for all three.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState

from anchors import Contestant, normal_log_prob

GAMMA, POLYAK, BETA, TAU_IQL, ADV_CLIP, LR, NUM_UPDATES = 0.99, 0.005, 3.0, 0.7, 100.0, 3e-4, 1_000_000
SCAN_LENGTH = 2500  # Args.eval_interval


class SoftQNetwork(nn.Module):
    obs_mean: jax.Array
    obs_std: jax.Array

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([(obs - self.obs_mean) / (self.obs_std + 1e-3), action], axis=-1)
        for _ in range(2):
            x = nn.relu(nn.Dense(256)(x))
        return nn.Dense(1)(x).squeeze(-1)


class DualQNetwork(nn.Module):
    obs_mean: jax.Array
    obs_std: jax.Array

    @nn.compact
    def __call__(self, obs, action):
        vmap_critic = nn.vmap(
            SoftQNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=None,
            out_axes=-1,
            axis_size=2,
        )
        return vmap_critic(self.obs_mean, self.obs_std)(obs, action)


class StateValueFunction(nn.Module):
    obs_mean: jax.Array
    obs_std: jax.Array

    @nn.compact
    def __call__(self, x):
        x = (x - self.obs_mean) / (self.obs_std + 1e-3)
        for _ in range(2):
            x = nn.relu(nn.Dense(256)(x))
        return nn.Dense(1)(x).squeeze(-1)


class TanhGaussianActor(nn.Module):
    num_actions: int
    obs_mean: jax.Array
    obs_std: jax.Array
    log_std_max: float = 2.0
    log_std_min: float = -20.0

    @nn.compact
    def __call__(self, x):
        x = (x - self.obs_mean) / (self.obs_std + 1e-3)
        for _ in range(2):
            x = nn.relu(nn.Dense(256)(x))
        mean = nn.tanh(nn.Dense(self.num_actions)(x))
        logstd = self.param("logstd", lambda key: jnp.zeros(self.num_actions, dtype=jnp.float32))
        return mean, jnp.clip(logstd, self.log_std_min, self.log_std_max)


def make(data: dict, batch_size: int = 256, seed: int = 0) -> Contestant:
    dataset = {
        "obs": jnp.asarray(data["observations"]),
        "action": jnp.asarray(data["actions"]),
        "reward": jnp.asarray(data["rewards"]),
        "next_obs": jnp.asarray(data["next_observations"]),
        "done": jnp.asarray(data["terminals"]),
    }
    obs_mean = dataset["obs"].mean(axis=0)
    obs_std = jnp.nan_to_num(dataset["obs"].std(axis=0), nan=1.0)
    n_act = dataset["action"].shape[1]
    actor_net, q_net, value_net = (
        TanhGaussianActor(n_act, obs_mean, obs_std),
        DualQNetwork(obs_mean, obs_std),
        StateValueFunction(obs_mean, obs_std),
    )

    def create(rng, net, dummy):
        return TrainState.create(
            apply_fn=net.apply,
            params=net.init(rng, *dummy),
            tx=optax.adam(optax.cosine_decay_schedule(LR, NUM_UPDATES), eps=1e-5),
        )

    rng = jax.random.PRNGKey(seed)
    rng, r_actor, r_q, r_value = jax.random.split(rng, 4)
    dummy_obs, dummy_act = jnp.zeros(dataset["obs"].shape[1]), jnp.zeros(n_act)
    agent = {
        "actor": create(r_actor, actor_net, [dummy_obs]),
        "q": create(r_q, q_net, [dummy_obs, dummy_act]),
        "q_target": create(r_q, q_net, [dummy_obs, dummy_act]),
        "value": create(r_value, value_net, [dummy_obs]),
    }

    def train_step(carry, _, dataset):
        rng, agent = carry
        rng, rng_batch = jax.random.split(rng)
        idx = jax.random.randint(rng_batch, (batch_size,), 0, len(dataset["obs"]))
        batch = jax.tree_util.tree_map(lambda x: x[idx], dataset)
        q_target = agent["q_target"].replace(
            step=agent["q_target"].step + 1,
            params=optax.incremental_update(agent["q"].params, agent["q_target"].params, POLYAK),
        )
        agent = dict(agent, q_target=q_target)
        v_target = q_net.apply(q_target.params, batch["obs"], batch["action"]).min(-1)
        next_v_target = value_net.apply(agent["value"].params, batch["next_obs"])
        q_targets = batch["reward"] + GAMMA * (1 - batch["done"]) * next_v_target

        def q_loss_fn(params):
            return jnp.square(q_net.apply(params, batch["obs"], batch["action"]) - q_targets[:, None]).mean()

        def value_loss_fn(params):
            adv = v_target - value_net.apply(params, batch["obs"])
            return jnp.mean(jnp.abs(TAU_IQL - (adv < 0.0).astype(float)) * adv**2), adv

        q_loss, q_grad = jax.value_and_grad(q_loss_fn)(agent["q"].params)
        (value_loss, adv), value_grad = jax.value_and_grad(value_loss_fn, has_aux=True)(agent["value"].params)
        agent = dict(
            agent, q=agent["q"].apply_gradients(grads=q_grad), value=agent["value"].apply_gradients(grads=value_grad)
        )
        exp_adv = jnp.exp(adv * BETA).clip(max=ADV_CLIP)

        def actor_loss_fn(params):
            def one(obs, action, w):  # vmapped per transition, as Unifloral's _compute_loss
                mean, log_std = actor_net.apply(params, obs)
                return w * -normal_log_prob(action, mean, log_std)

            return jax.vmap(one)(batch["obs"], batch["action"], exp_adv).mean()

        actor_loss, actor_grad = jax.value_and_grad(actor_loss_fn)(agent["actor"].params)
        agent = dict(agent, actor=agent["actor"].apply_gradients(grads=actor_grad))
        return (rng, agent), {"value_loss": value_loss, "q_loss": q_loss, "actor_loss": actor_loss}

    @jax.jit
    def scan(rng, agent, dataset):
        return jax.lax.scan(lambda c, x: train_step(c, x, dataset), (rng, agent), None, SCAN_LENGTH)

    box = {"rng": rng, "agent": agent, "fn": None}

    def compile_():
        import time

        t0 = time.perf_counter()
        box["fn"] = scan.lower(box["rng"], box["agent"], dataset).compile()
        return time.perf_counter() - t0

    def run(min_updates: int) -> int:
        done = 0
        while done < min_updates:
            (box["rng"], box["agent"]), loss = box["fn"](box["rng"], box["agent"], dataset)
            done += SCAN_LENGTH
        jax.block_until_ready(box["agent"])
        assert np.isfinite(float(loss["q_loss"][-1]))
        return done

    return Contestant("unifloral", compile_, run, "EmptyJackson/unifloral algorithms/iql.py (lax.scan of 2500)")
