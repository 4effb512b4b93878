"""One-step RL (Brandfonbrener, Whitney, Ranganath & Bruna, NeurIPS 2021), exponentially weighted variant.

One step of policy evaluation of the *behaviour* policy mu, then one step of policy improvement:

  evaluation (SARSA, fitted Q evaluation of mu -- the next action is the dataset's, never the policy's):
    Q_i <- regression onto r + gamma * (1 - terminal) * Q_target(s', a'_D)
    V   <- regression (L2) of V(s) onto Q_target(s, a_D)   i.e. V(s) = E_{a ~ mu} Q(s, a)
  improvement (exponentially weighted, one step away from mu):
    pi  <- argmax E_(s,a)~D [ min(exp(beta * (Q_target(s, a) - V(s))), max_weight) * log pi(a | s) ]

The learned policy never enters a Bellman target, so there is exactly one improvement step (no
iteration); this is IQL with expectile 0.5 and a SARSA critic. ``beta`` is the inverse temperature.
Departures from the paper's procedure (twin SARSA critics instead of one, V regressed on dataset actions
instead of sampled from a learned behaviour policy, the phases trained together instead of in sequence,
IQL's values instead of the paper's per-dataset tuning) are listed in docs/algorithms.md.

``preprocess`` adds ``next_actions`` (the action of the next row *within the same episode*) and
``has_next_action``. Rows that end their episode have no next action in the data: a true terminal is
masked anyway by (1 - terminal); a timeout / truncated end (``has_next_action`` = 0) bootstraps with
V(s') = E_mu Q(s', .) instead of Q(s', a'), so no action of another episode ever enters a target.
Not fine-tunable: online transitions carry no behaviour next action.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.kit.losses import awr_weights, regress_critics
from offbench.training.kit.networks import (
    GaussianActor,
    ValueNet,
    critic_ensemble,
    gaussian_log_prob,
    gaussian_policy_act,
    polyak,
)
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/onestep.yaml holds the suite layers). Reference for the procedure:
# Brandfonbrener et al. 2021 and davidbrandfonbrener/onestep-rl (q_learner.py SarsaLearner, policy_learner.py
# ExpWeightLearner); for the values: the IQL paper's like-for-like comparison (App. B: IQL's optimiser,
# networks and per-suite beta, since this variant is IQL with expectile 0.5). Differences: docs/algorithms.md.
DEFAULT_CONFIG = {
    "actor_lr": 3e-4,  # IQL App. B (onestep-rl config/pi/exp_weight.yaml: 1e-4)
    "critic_lr": 3e-4,  # IQL App. B (onestep-rl config/q/sarsa.yaml: 1e-4)
    "value_lr": 3e-4,  # IQL App. B (onestep-rl: V = E_mu Q by sampling a learned behaviour policy, no V net)
    "hidden_dims": [256, 256],  # IQL App. B (onestep-rl: 2 x 1024)
    "discount": 0.99,  # onestep-rl config/train.yaml
    "tau": 0.005,  # onestep-rl config/q/sarsa.yaml: tau 0.005 (there every 2nd step)
    "beta": 3.0,  # inverse temperature in exp(beta * A) (onestep-rl ExpWeightLearner: temp); suites set theirs
    "max_weight": 100.0,  # onestep-rl policy_learner.py ExpWeightLearner: max_weight 100
    "cosine_decay": True,  # IQL App. B (onestep-rl: constant learning rate)
    "exploration_noise": None,
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "critic_lr": "(0, inf)",
    "value_lr": "(0, inf)",
    "discount": "(0, 1)",
    "tau": "(0, 1]",
    "beta": "[0, inf)",
    "max_weight": "(0, inf)",
    "exploration_noise": "[0, inf)",
}


def next_actions(actions: np.ndarray, episode_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(next action within the episode, 1.0 where it exists); the last row of an episode gets its own
    action as a placeholder and 0.0."""
    actions = np.asarray(actions, np.float32)
    has_next = ~np.asarray(episode_ends, bool)
    nxt = np.concatenate([actions[1:], actions[-1:]], axis=0)
    nxt[~has_next] = actions[~has_next]
    return nxt, has_next.astype(np.float32)


def preprocess(data: dict, config: dict) -> dict:
    nxt, has_next = next_actions(data["actions"], data["episode_ends"])
    return {**data, "next_actions": nxt, "has_next_action": has_next}


def sarsa_target(rewards, terminals, discount, next_q, next_v, has_next):
    """r + gamma * (1 - d) * (Q(s', a'_D) where the data has a' else V(s'))."""
    return rewards + discount * (1.0 - terminals) * jnp.where(has_next > 0, next_q, next_v)


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    actor = GaussianActor(spec.act_dim, hidden)
    critic = critic_ensemble(hidden, 2)
    value = ValueNet(hidden)
    discount, tau, beta, max_w = config["discount"], config["tau"], config["beta"], config["max_weight"]
    lr = config["actor_lr"]
    actor_tx = optax.adam(optax.cosine_decay_schedule(lr, max(1, spec.total_steps)) if config["cosine_decay"] else lr)

    def init(key):
        k_a, k_c, k_v = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, spec.obs_dim)), jnp.zeros((1, spec.act_dim))
        critic_params = critic.init(k_c, obs, act)
        return {
            "actor": TrainState.create(actor.init(k_a, obs), actor_tx),
            "critic": TrainState.create(critic_params, optax.adam(config["critic_lr"])),
            "target_critic": critic_params,
            "value": TrainState.create(value.init(k_v, obs), optax.adam(config["value_lr"])),
        }

    def evaluate_behaviour(state, batch):
        """One SARSA step for Q^mu and V^mu = E_mu Q^mu."""
        obs, act, next_obs = batch["observations"], batch["actions"], batch["next_observations"]
        q_data = critic.apply(state["target_critic"], obs, act).min(0)

        def value_loss(params):
            v = value.apply(params, obs)
            return ((q_data - v) ** 2).mean(), v

        (v_loss, v), g = jax.value_and_grad(value_loss, has_aux=True)(state["value"].params)
        value_state = state["value"].apply_gradients(g)

        next_q = critic.apply(state["target_critic"], next_obs, batch["next_actions"]).min(0)
        target = sarsa_target(
            batch["rewards"],
            batch["terminals"],
            discount,
            next_q,
            value.apply(value_state.params, next_obs),
            batch["has_next_action"],
        )

        critic_state, q_loss, q = regress_critics(critic, state["critic"], obs, act, target)
        metrics = {"critic_loss": q_loss, "value_loss": v_loss, "q": q.mean(), "v": v.mean()}
        return critic_state, value_state, q_data, metrics

    def improve(actor_state, value_state, batch, q_data):
        """One exponentially weighted improvement step over mu (dataset actions)."""
        adv = q_data - value.apply(value_state.params, batch["observations"])
        weights = awr_weights(adv, beta, max_w)

        def actor_loss(params):
            mean, log_std = actor.apply(params, batch["observations"])
            return -(weights * gaussian_log_prob(batch["actions"], mean, log_std)).mean()

        a_loss, g = jax.value_and_grad(actor_loss)(actor_state.params)
        return actor_state.apply_gradients(g), {"actor_loss": a_loss, "adv": adv.mean(), "weight": weights.mean()}

    def update(state, batch, key):
        critic_state, value_state, q_data, m_eval = evaluate_behaviour(state, batch)
        actor_state, m_imp = improve(state["actor"], value_state, batch, q_data)
        new_state = {
            "actor": actor_state,
            "critic": critic_state,
            "value": value_state,
            "target_critic": polyak(state["target_critic"], critic_state.params, tau),
        }
        return new_state, {**m_eval, **m_imp}

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = actor.apply(state["actor"].params, observations)
        return gaussian_policy_act(
            key, mean, log_std, deterministic, spec.act_low, spec.act_high, config["exploration_noise"]
        )

    return Agent(init, update, act)


register(
    "onestep",
    make=make,
    default_config=DEFAULT_CONFIG,
    preprocess=preprocess,
    finetune=False,
    description="One-step RL, exponentially weighted (Brandfonbrener et al., 2021)",
    ranges=RANGES,
)
