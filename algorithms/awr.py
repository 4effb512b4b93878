"""AWR -- Advantage-Weighted Regression (Peng, Kumar, Zhang & Levine, 2019), offline.

``preprocess`` computes each transition's discounted Monte-Carlo return within its own episode
(G_t = r_t + gamma * G_{t+1}, restarting at every ``episode_ends``; no bootstrapping at the end of an
episode, so values never flow between episodes: AWR cannot stitch). Per update:
  V  <- regression of V(s) onto G                                      (AWR eq. 8, Monte-Carlo target)
  A  =  G - V(s), standardised over the batch ((A - mean) / std; the AWR code's _calc_adv does so over its
        buffer) unless ``normalize_advantage`` is off
  pi <- argmax E[ min(exp(A / temperature), max_weight) * log pi(a | s) ]   (AWR eq. 9, weight clipping)
Policy: IQL's Gaussian, as for BC.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.networks import GaussianActor, ValueNet, gaussian_log_prob, gaussian_policy_act
from offbench.training.train_state import TrainState

DEFAULT_CONFIG = {
    "actor_lr": 3e-4,
    "value_lr": 3e-4,
    "hidden_dims": [256, 256],
    "discount": 0.99,
    "temperature": 1.0,         # beta in exp(A / beta)
    "max_weight": 20.0,         # omega_max
    "normalize_advantage": True,  # AWR code (xbpeng/awr, _calc_adv): A standardised before exp(A / beta)
    "cosine_decay": False,
    "exploration_noise": None,
}


def monte_carlo_returns(rewards: np.ndarray, episode_ends: np.ndarray, discount: float) -> np.ndarray:
    """Discounted return-to-go of every transition within its episode (NumPy, one backward pass)."""
    rewards = np.asarray(rewards, np.float64)
    ends = np.asarray(episode_ends, bool)
    out = np.zeros_like(rewards)
    g = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        if ends[i]:
            g = 0.0
        g = rewards[i] + discount * g
        out[i] = g
    return out.astype(np.float32)


def awr_weights(advantage, temperature: float, max_weight: float):
    """AWR's clipped exponential weights min(exp(A / temperature), max_weight)."""
    return jnp.minimum(jnp.exp(advantage / temperature), max_weight)


def preprocess(data: dict, config: dict) -> dict:
    return {**data, "returns": monte_carlo_returns(data["rewards"], data["episode_ends"], float(config["discount"]))}


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    actor = GaussianActor(spec.act_dim, hidden)
    value = ValueNet(hidden)
    temperature, max_w = config["temperature"], config["max_weight"]
    normalize_adv = bool(config["normalize_advantage"])
    lr = config["actor_lr"]
    actor_tx = optax.adam(optax.cosine_decay_schedule(lr, max(1, spec.total_steps)) if config["cosine_decay"] else lr)

    def init(key):
        k_a, k_v = jax.random.split(key)
        obs = jnp.zeros((1, spec.obs_dim))
        return {"actor": TrainState.create(actor.init(k_a, obs), actor_tx),
                "value": TrainState.create(value.init(k_v, obs), optax.adam(config["value_lr"]))}

    def update(state, batch, key):
        obs, returns = batch["observations"], batch["returns"]

        def value_loss(params):
            v = value.apply(params, obs)
            return ((v - returns) ** 2).mean(), v

        (v_loss, v), g = jax.value_and_grad(value_loss, has_aux=True)(state["value"].params)
        adv = returns - v
        if normalize_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-5)
        weights = awr_weights(jax.lax.stop_gradient(adv), temperature, max_w)

        def actor_loss(params):
            mean, log_std = actor.apply(params, obs)
            return -(weights * gaussian_log_prob(batch["actions"], mean, log_std)).mean()

        a_loss, ga = jax.value_and_grad(actor_loss)(state["actor"].params)
        new_state = {"actor": state["actor"].apply_gradients(ga), "value": state["value"].apply_gradients(g)}
        return new_state, {"value_loss": v_loss, "actor_loss": a_loss, "v": v.mean(), "adv": adv.mean(),
                           "weight": weights.mean()}

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = actor.apply(state["actor"].params, observations)
        return gaussian_policy_act(key, mean, log_std, deterministic, spec.act_low, spec.act_high,
                                   config["exploration_noise"])

    return Agent(init, update, act)


register("awr", make=make, default_config=DEFAULT_CONFIG, preprocess=preprocess, finetune=False,
         description="Advantage-Weighted Regression with Monte-Carlo returns (Peng et al., 2019)")
