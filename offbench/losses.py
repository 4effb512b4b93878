"""Loss pieces shared by several algorithms (kept tiny and testable)."""
from __future__ import annotations

import jax.numpy as jnp


def expectile_loss(diff, expectile: float):
    """Asymmetric L2: |tau - 1(diff < 0)| * diff^2, with diff = target - prediction (IQL eq. 3)."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff**2


def awr_weights(advantage, temperature: float, max_weight: float = 100.0):
    """exp(temperature * A), clipped at ``max_weight`` (IQL eq. 7 / AWR)."""
    return jnp.minimum(jnp.exp(advantage * temperature), max_weight)
