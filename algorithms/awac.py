"""AWAC -- Advantage-Weighted Actor-Critic (Nair, Gupta, Dalal & Levine, 2020).

Per update:
  Q_i <- regression onto r + gamma * (1 - terminal) * min_j Q_target,j(s', a'),  a' ~ pi(. | s')   (AWAC eq. 3: TD with the current policy)
  A   =  min_j Q_j(s, a) - E_{a' ~ pi(. | s)} min_j Q_j(s, a')   (expectation by ``value_samples`` samples)
  pi  <- argmax E_(s,a)~D [ min(exp(A / lambda), max_weight) * log pi(a | s) ]       (AWAC eq. 13)
  Q_target <- Polyak(tau)
Policy and networks as CORL's AWAC (algorithms/offline/awac.py, Actor / Critic): 3 x 256 MLPs, a Gaussian with a
*linear* mean and a state-independent log-std clipped to [-20, 2], samples clipped to the action box;
states normalised (``normalize_obs``, CORL compute_mean_std / normalize_states). Every layer keeps PyTorch's
default nn.Linear initialisation, as CORL's (awac.py:126-135, 178-186 set none; ``init_scheme="torch"``).
The evaluation action is the policy's *unclipped* mean, as CORL's Actor.act in eval mode (awac.py:159-167,
``policy.mean``); the environment's actuators clamp it (MuJoCo ctrlrange) and its control cost sees it unclipped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.kit.losses import regress_critics
from offbench.training.kit.networks import (
    GaussianActor,
    critic_ensemble,
    gaussian_log_prob,
    gaussian_policy_act,
    polyak,
)
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/awac.yaml holds the suite layers): CORL's offline AWAC
# (tinkoff-ai/CORL algorithms/offline/awac.py TrainConfig and configs/offline/awac/*/*.yaml), the
# implementation behind the CORL numbers the report shows; AWAC paper (Nair et al. 2020) where they agree.
DEFAULT_CONFIG = {
    "actor_lr": 3e-4,  # CORL configs: learning_rate 3e-4 (AWAC paper: Adam 3e-4)
    "critic_lr": 3e-4,  # CORL configs: learning_rate 3e-4
    "hidden_dims": [256, 256, 256],  # CORL awac.py Actor / Critic: 3 hidden layers of hidden_dim 256
    "discount": 0.99,  # CORL configs: gamma 0.99
    "tau": 0.005,  # CORL configs: tau 0.005
    "awac_lambda": 0.3333,  # CORL configs/offline/awac/{hopper,halfcheetah,walker2d}: 0.3333 (suites set theirs)
    "max_weight": 100.0,  # CORL awac.py: exp_adv_max 100
    "value_samples": 1,  # CORL awac.py _actor_loss: one policy sample estimates E_pi Q(s, .)
    "log_std_min": -20.0,  # CORL awac.py Actor: min_log_std -20
    "normalize_obs": True,  # CORL awac.py train(): states always normalised
    "exploration_noise": None,  # fine-tuning: None samples the Gaussian
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "critic_lr": "(0, inf)",
    "discount": "(0, 1)",
    "tau": "(0, 1]",
    "awac_lambda": "(0, inf)",
    "max_weight": "(0, inf)",
    "value_samples": "[1, inf)",
    "exploration_noise": "[0, inf)",
}


def awac_weights(advantage, awac_lambda: float, max_weight: float):
    return jnp.minimum(jnp.exp(advantage / awac_lambda), max_weight)


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    actor = GaussianActor(
        spec.act_dim, hidden, log_std_min=float(config["log_std_min"]), tanh_mean=False, init_scheme="torch"
    )
    critic = critic_ensemble(hidden, 2, init_scheme="torch")  # CORL awac.py Actor / Critic: PyTorch's default init
    discount, tau, lam, max_w = config["discount"], config["tau"], config["awac_lambda"], config["max_weight"]
    n_samples = int(config["value_samples"])
    low, high = spec.act_low, spec.act_high

    def sample_actions(params, obs, key, n=None):
        mean, log_std = actor.apply(params, obs)
        shape = mean.shape if n is None else (n,) + mean.shape
        return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(key, shape), low, high)

    def init(key):
        k_a, k_c = jax.random.split(key)
        obs, act = jnp.zeros((1, spec.obs_dim)), jnp.zeros((1, spec.act_dim))
        critic_params = critic.init(k_c, obs, act)
        return {
            "actor": TrainState.create(actor.init(k_a, obs), optax.adam(config["actor_lr"])),
            "critic": TrainState.create(critic_params, optax.adam(config["critic_lr"])),
            "target_critic": critic_params,
        }

    def update(state, batch, key):
        k_next, k_pi = jax.random.split(key)
        obs, act = batch["observations"], batch["actions"]

        # policy evaluation: TD with the next action from the current policy
        next_act = sample_actions(state["actor"].params, batch["next_observations"], k_next)
        next_q = critic.apply(state["target_critic"], batch["next_observations"], next_act).min(0)
        target = batch["rewards"] + discount * (1.0 - batch["terminals"]) * next_q

        critic_state, q_loss, q = regress_critics(critic, state["critic"], obs, act, target)

        # policy improvement: advantage-weighted regression onto the dataset actions
        pi_act = sample_actions(state["actor"].params, obs, k_pi, n_samples)  # (n, B, act)
        obs_n = jnp.broadcast_to(obs, (n_samples,) + obs.shape)
        v = critic.apply(critic_state.params, obs_n, pi_act).min(0).mean(0)  # E_pi min_j Q_j(s, .)
        adv = critic.apply(critic_state.params, obs, act).min(0) - v
        weights = awac_weights(adv, lam, max_w)

        def actor_loss(params):
            mean, log_std = actor.apply(params, obs)
            return -(weights * gaussian_log_prob(act, mean, log_std)).mean()

        a_loss, ga = jax.value_and_grad(actor_loss)(state["actor"].params)
        new_state = {
            "actor": state["actor"].apply_gradients(ga),
            "critic": critic_state,
            "target_critic": polyak(state["target_critic"], critic_state.params, tau),
        }
        return new_state, {
            "critic_loss": q_loss,
            "actor_loss": a_loss,
            "q": q.mean(),
            "adv": adv.mean(),
            "weight": weights.mean(),
        }

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = actor.apply(state["actor"].params, observations)
        if deterministic:  # CORL awac.py:165 Actor.act in eval mode: policy.mean, not clipped
            return mean
        return gaussian_policy_act(key, mean, log_std, False, low, high, config["exploration_noise"])

    return Agent(init, update, act)


register(
    "awac",
    make=make,
    default_config=DEFAULT_CONFIG,
    description="Advantage-Weighted Actor-Critic (Nair et al., 2020)",
    ranges=RANGES,
)
