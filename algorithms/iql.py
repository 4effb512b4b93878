"""IQL -- Implicit Q-Learning (Kostrikov, Nair & Levine, ICLR 2022).

Per update (the order of the original code):
  V  <- expectile regression of V(s) onto min_i Q_target,i(s, a)            (eq. 5)
  pi <- advantage-weighted regression, weights exp(beta * (Q_target - V)) <= 100   (eq. 7)
  Q  <- regression onto r + gamma * (1 - terminal) * V(s')                   (eq. 6; no policy action)
  Q_target <- Polyak(0.005)
Policy: Gaussian with tanh on the mean and a state-independent log-std (not a squashed distribution).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.kit.losses import awr_weights, expectile_loss, regress_critics
from offbench.training.kit.networks import GaussianActor, ValueNet, critic_ensemble, gaussian_log_prob, polyak
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/iql.yaml holds the suite layers): Kostrikov, Nair & Levine, ICLR 2022,
# App. B, and the original code github.com/ikostrikov/implicit_q_learning (configs/mujoco_config.py).
DEFAULT_CONFIG = {
    "actor_lr": 3e-4,  # App. B: Adam 3e-4 for all networks
    "critic_lr": 3e-4,  # App. B
    "value_lr": 3e-4,  # App. B
    "hidden_dims": [256, 256],  # App. B: 2 x 256 ReLU MLPs
    "discount": 0.99,  # App. B
    "tau": 0.005,  # App. B: Polyak coefficient of the target critic
    "expectile": 0.7,  # App. B (locomotion; suite layers set every suite's)
    "beta": 3.0,  # App. B: inverse temperature in exp(beta * A) (code: temperature)
    "max_weight": 100.0,  # App. B / code: exp-advantage weights clipped at 100
    "dropout_rate": 0.0,  # actor dropout (0.1 on Kitchen / Adroit: suite layers)
    "cosine_decay": True,  # App. B: cosine decay of the actor learning rate over the run
    "exploration_noise": None,  # fine-tuning: None samples the Gaussian; a float adds N(0, sigma) to the mean
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "critic_lr": "(0, inf)",
    "value_lr": "(0, inf)",
    "discount": "(0, 1)",
    "tau": "(0, 1]",
    "expectile": "(0, 1)",
    "beta": "[0, inf)",
    "max_weight": "(0, inf)",
    "dropout_rate": "[0, 1)",
    "exploration_noise": "[0, inf)",
}


def make(config: dict, spec: Spec) -> Agent:
    hidden = tuple(config["hidden_dims"])
    actor = GaussianActor(spec.act_dim, hidden, dropout_rate=config["dropout_rate"])
    critic = critic_ensemble(hidden, 2)
    value = ValueNet(hidden)
    discount, tau = config["discount"], config["tau"]
    expectile, beta, max_w = config["expectile"], config["beta"], config["max_weight"]

    # Same optimiser-state layout with or without decay, so an offline state can be fine-tuned without it.
    actor_schedule = (
        optax.cosine_decay_schedule(config["actor_lr"], max(1, spec.total_steps))
        if config["cosine_decay"]
        else optax.constant_schedule(config["actor_lr"])
    )
    actor_tx = optax.adam(actor_schedule)

    def init(key):
        k_a, k_c, k_v = jax.random.split(key, 3)
        obs = jnp.zeros((1, spec.obs_dim))
        act = jnp.zeros((1, spec.act_dim))
        critic_params = critic.init(k_c, obs, act)
        return {
            "actor": TrainState.create(actor.init(k_a, obs), actor_tx),
            "critic": TrainState.create(critic_params, optax.adam(config["critic_lr"])),
            "target_critic": critic_params,
            "value": TrainState.create(value.init(k_v, obs), optax.adam(config["value_lr"])),
        }

    def update(state, batch, key):
        obs, act = batch["observations"], batch["actions"]
        target_q = critic.apply(state["target_critic"], obs, act).min(0)

        def value_loss(params):
            v = value.apply(params, obs)
            return expectile_loss(target_q - v, expectile).mean(), v

        (v_loss, v), g = jax.value_and_grad(value_loss, has_aux=True)(state["value"].params)
        value_state = state["value"].apply_gradients(g)

        # V(s) for the actor's weights and V(s') for the critic's target, both with the updated V (as the
        # original code), in one forward call over the concatenated batch.
        v_both = value.apply(value_state.params, jnp.concatenate([obs, batch["next_observations"]]))
        v_new, next_v = v_both[: obs.shape[0]], v_both[obs.shape[0] :]
        weights = awr_weights(target_q - v_new, beta, max_w)

        def actor_loss(params):
            mean, log_std = actor.apply(params, obs, training=True, rngs={"dropout": key})
            return -(weights * gaussian_log_prob(act, mean, log_std)).mean()

        a_loss, g = jax.value_and_grad(actor_loss)(state["actor"].params)
        actor_state = state["actor"].apply_gradients(g)

        target = batch["rewards"] + discount * (1.0 - batch["terminals"]) * next_v

        critic_state, q_loss, q = regress_critics(critic, state["critic"], obs, act, target)

        new_state = {
            "actor": actor_state,
            "critic": critic_state,
            "value": value_state,
            "target_critic": polyak(state["target_critic"], critic_state.params, tau),
        }
        metrics = {
            "critic_loss": q_loss,
            "value_loss": v_loss,
            "actor_loss": a_loss,
            "q": q.mean(),
            "v": v.mean(),
            "adv": (target_q - v_new).mean(),
            "weight": weights.mean(),
        }
        return new_state, metrics

    noise = config["exploration_noise"]

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = actor.apply(state["actor"].params, observations)
        if deterministic:
            return jnp.clip(mean, spec.act_low, spec.act_high)
        std = jnp.exp(log_std) if noise is None else noise
        return jnp.clip(mean + std * jax.random.normal(key, mean.shape), spec.act_low, spec.act_high)

    return Agent(init, update, act)


register(
    "iql",
    make=make,
    default_config=DEFAULT_CONFIG,
    description="Implicit Q-Learning (Kostrikov et al., ICLR 2022)",
    ranges=RANGES,
)
