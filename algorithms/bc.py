"""BC -- behavioural cloning: maximum likelihood of the dataset's actions.

Per update:  pi <- argmax E_(s,a)~D [ log pi(a | s) ]
Policy: IQL's Gaussian (tanh on the mean, state-independent log-std), so BC and IQL differ only in the
weights of the same log-likelihood (IQL weights it by exp(beta * A), BC by 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from offbench.registry import Agent, Spec, register
from offbench.training.kit.networks import GaussianActor, gaussian_log_prob, gaussian_policy_act
from offbench.training.kit.train_state import TrainState

# The defaults (one source; configs/bc.yaml holds only the suite layers). The IQL paper compares against BC
# with IQL's policy and optimiser (Kostrikov et al. 2022, App. B), so these are IQL's values.
DEFAULT_CONFIG = {
    "actor_lr": 3e-4,  # IQL App. B: Adam 3e-4
    "hidden_dims": [256, 256],  # IQL App. B: 2 x 256 ReLU MLP
    "dropout_rate": 0.0,  # IQL App. B (0.1 on Kitchen / Adroit: suite layers)
    "cosine_decay": True,  # IQL App. B: cosine decay of the learning rate over the run (as IQL's actor)
    "exploration_noise": None,  # act(deterministic=False): None samples the Gaussian; a float adds N(0, sigma)
}
# The allowed interval of each value above (offbench.config.parse_range); every run checks them first.
RANGES = {
    "actor_lr": "(0, inf)",
    "dropout_rate": "[0, 1)",
    "exploration_noise": "[0, inf)",
}


def bc_loss(log_prob):
    """Negative log-likelihood of the dataset actions."""
    return -log_prob.mean()


def make(config: dict, spec: Spec) -> Agent:
    actor = GaussianActor(spec.act_dim, tuple(config["hidden_dims"]), dropout_rate=config["dropout_rate"])
    lr = config["actor_lr"]
    tx = optax.adam(optax.cosine_decay_schedule(lr, max(1, spec.total_steps)) if config["cosine_decay"] else lr)

    def init(key):
        return {"actor": TrainState.create(actor.init(key, jnp.zeros((1, spec.obs_dim))), tx)}

    def update(state, batch, key):
        def loss_fn(params):
            mean, log_std = actor.apply(params, batch["observations"], training=True, rngs={"dropout": key})
            return bc_loss(gaussian_log_prob(batch["actions"], mean, log_std)), log_std

        (loss, log_std), g = jax.value_and_grad(loss_fn, has_aux=True)(state["actor"].params)
        return {"actor": state["actor"].apply_gradients(g)}, {"actor_loss": loss, "log_std": log_std.mean()}

    def act(state, observations, key, deterministic: bool = True):
        mean, log_std = actor.apply(state["actor"].params, observations)
        return gaussian_policy_act(
            key, mean, log_std, deterministic, spec.act_low, spec.act_high, config["exploration_noise"]
        )

    return Agent(init, update, act)


register(
    "bc",
    make=make,
    default_config=DEFAULT_CONFIG,
    finetune=False,
    description="Behavioural cloning: max likelihood of dataset actions (Gaussian policy as IQL's)",
    ranges=RANGES,
)
