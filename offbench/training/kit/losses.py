"""Loss pieces shared by several algorithms (kept tiny and testable)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def expectile_loss(diff, expectile: float):
    """Asymmetric L2: |tau - 1(diff < 0)| * diff^2, with diff = target - prediction (IQL eq. 3)."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff**2


def awr_weights(advantage, temperature: float, max_weight: float = 100.0):
    """exp(temperature * A), clipped at ``max_weight`` (IQL eq. 7 / AWR)."""
    return jnp.minimum(jnp.exp(advantage * temperature), max_weight)


def regress_critics(critic, critic_state, observations, actions, target):
    """One gradient step of every critic of an ensemble onto a shared TD target:
    loss = sum_i mean_batch (Q_i(s, a) - y)^2. Returns (new critic state, loss, Q of shape (n, batch))."""

    def loss_fn(params):
        q = critic.apply(params, observations, actions)
        return ((q - target) ** 2).sum(0).mean(), q

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(critic_state.params)
    return critic_state.apply_gradients(grads), loss, q
