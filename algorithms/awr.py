"""AWR -- Advantage-Weighted Regression (Peng, Kumar, Zhang & Levine, 2019), offline.

``preprocess`` computes each transition's discounted return to the end of its own episode
(G_t = r_t + gamma * G_{t+1}, restarting at every ``episode_ends``) and, for the bootstrap, the episode's
last next observation s_end and gamma^(T - t + 1) (0 when the episode ends in a true terminal). Per update:
  y  = G_t + gamma^(T - t + 1) * (1 - terminal_T) * V(s_end)   (a truncated episode -- timeout, dataset end --
       is bootstrapped with V, as xbpeng/awr learning/awr_agent.py _compute_return does with val_t[-1];
       that is its TD(lambda) return at lambda = 1; ``bootstrap_truncations: false`` gives pure Monte Carlo)
  V  <- regression of V(s) onto y (y held fixed)                      (AWR eq. 8)
  A  =  y - V(s), standardised over the batch ((A - mean) / std; the AWR code's _calc_adv does so over its
        buffer) unless ``normalize_advantage`` is off
  pi <- argmax E[ min(exp(A / awr_temperature), max_weight) * log pi(a | s) ]   (AWR eq. 9, weight clipping)
Only a truncated episode's end value links it to others; a terminated one is pure Monte Carlo. Policy: IQL's Gaussian, as for BC,
whose std is learned; ``fixed_std: 0.2`` holds it at AWR's fixed 0.2 instead (xbpeng/awr awr_agent.py action_std=0.2,
learning/rl_agent.py _build_action_pd: the log-std is a non-trainable log(action_std)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.kit.networks import GaussianActor, ValueNet, gaussian_log_prob, gaussian_policy_act
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/awr.yaml holds the suite layers). Peng et al. 2019, Table 3 and the code
# xbpeng/awr (learning/awr_agent.py) for the algorithm's values; IQL App. B for the optimiser and networks.
DEFAULT_CONFIG = {
    "actor_lr": 3e-4,  # IQL App. B (harness-wide optimiser; AWR: SGD momentum, 5e-5)
    "value_lr": 3e-4,  # IQL App. B (AWR: SGD momentum, 1e-2)
    "hidden_dims": [256, 256],  # IQL App. B (AWR: actor 128-64, critic 128-64)
    "discount": 0.99,  # AWR Table 3
    "awr_temperature": 1.0,  # AWR Table 3: beta, a real temperature in exp(A / beta) (code: temp)
    "max_weight": 20.0,  # AWR Table 3: omega_max (code: weight_clip)
    "normalize_advantage": True,  # AWR code _calc_adv: A standardised before exp(A / beta)
    "bootstrap_truncations": True,  # AWR code _compute_return: truncated paths end in r + gamma * V(s_T)
    "cosine_decay": False,  # AWR uses a constant step size
    "exploration_noise": None,
    "fixed_std": None,  # None: IQL's learned std (as BC); 0.2: AWR's fixed action_std (xbpeng/awr awr_agent.py)
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "value_lr": "(0, inf)",
    "discount": "(0, 1)",
    "awr_temperature": "(0, inf)",
    "max_weight": "(0, inf)",
    "exploration_noise": "[0, inf)",
    "fixed_std": "(0, inf)",
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


def bootstrap_terms(
    next_observations: np.ndarray, terminals: np.ndarray, episode_ends: np.ndarray, discount: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per transition: (s_end, the next observation of its episode's last transition; gamma^(T - t + 1) *
    (1 - terminal_T), the weight of V(s_end) in its target)."""
    ends = np.asarray(episode_ends, bool)
    idx = np.flatnonzero(ends)
    ep = np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
    last = idx[ep]  # index of each transition's episode end
    steps = (last - np.arange(len(ends)) + 1).astype(np.float64)
    weight = discount**steps * (1.0 - np.asarray(terminals, np.float64)[last])
    return np.asarray(next_observations, np.float32)[last], weight.astype(np.float32)


def exp_advantage_weights(advantage, awr_temperature: float, max_weight: float):
    """AWR's clipped exponential weights min(exp(A / awr_temperature), max_weight)."""
    return jnp.minimum(jnp.exp(advantage / awr_temperature), max_weight)


def preprocess(data: dict, config: dict) -> dict:
    gamma = float(config["discount"])
    out = {**data, "returns": monte_carlo_returns(data["rewards"], data["episode_ends"], gamma)}
    if config["bootstrap_truncations"]:
        out["bootstrap_obs"], out["bootstrap_discount"] = bootstrap_terms(
            data["next_observations"], data["terminals"], data["episode_ends"], gamma
        )
    return out


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    actor = GaussianActor(spec.act_dim, hidden)
    value = ValueNet(hidden)
    temperature, max_w = config["awr_temperature"], config["max_weight"]
    normalize_adv, bootstrap = bool(config["normalize_advantage"]), bool(config["bootstrap_truncations"])
    lr = config["actor_lr"]
    actor_tx = optax.adam(optax.cosine_decay_schedule(lr, max(1, spec.total_steps)) if config["cosine_decay"] else lr)
    fixed_std = config["fixed_std"]

    def policy(params, obs):
        """(mean, log_std); with ``fixed_std`` the log-std is the constant log(fixed_std) (AWR)."""
        mean, log_std = actor.apply(params, obs)
        return mean, log_std if fixed_std is None else jnp.full_like(mean, jnp.log(float(fixed_std)))

    def init(key):
        k_a, k_v = jax.random.split(key)
        obs = jnp.zeros((1, spec.obs_dim))
        return {
            "actor": TrainState.create(actor.init(k_a, obs), actor_tx),
            "value": TrainState.create(value.init(k_v, obs), optax.adam(config["value_lr"])),
        }

    def update(state, batch, key):
        obs, returns = batch["observations"], batch["returns"]
        if bootstrap:
            v_end = value.apply(state["value"].params, batch["bootstrap_obs"])
            returns = returns + batch["bootstrap_discount"] * jax.lax.stop_gradient(v_end)

        def value_loss(params):
            v = value.apply(params, obs)
            return ((v - returns) ** 2).mean(), v

        (v_loss, v), g = jax.value_and_grad(value_loss, has_aux=True)(state["value"].params)
        adv = returns - v
        if normalize_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-5)
        weights = exp_advantage_weights(jax.lax.stop_gradient(adv), temperature, max_w)

        def actor_loss(params):
            mean, log_std = policy(params, obs)
            return -(weights * gaussian_log_prob(batch["actions"], mean, log_std)).mean()

        a_loss, ga = jax.value_and_grad(actor_loss)(state["actor"].params)
        new_state = {"actor": state["actor"].apply_gradients(ga), "value": state["value"].apply_gradients(g)}
        return new_state, {
            "value_loss": v_loss,
            "actor_loss": a_loss,
            "v": v.mean(),
            "adv": adv.mean(),
            "weight": weights.mean(),
        }

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = policy(state["actor"].params, observations)
        return gaussian_policy_act(
            key, mean, log_std, deterministic, spec.act_low, spec.act_high, config["exploration_noise"]
        )

    return Agent(init, update, act)


register(
    "awr",
    make=make,
    default_config=DEFAULT_CONFIG,
    preprocess=preprocess,
    finetune=False,
    description="Advantage-Weighted Regression with Monte-Carlo returns (Peng et al., 2019)",
    ranges=RANGES,
)
