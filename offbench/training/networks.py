"""Shared Flax networks, written once and reused by every algorithm.

* :class:`MLP` -- ReLU MLP with orthogonal initialisation (as the IQL code), optional dropout and
  layer norm.
* :class:`Ensemble` -- an ensemble of any module built from one definition with ``flax.linen.vmap``
  (``variable_axes={'params': 0}``, ``split_rngs={'params': True}``); :class:`Critic` and
  :func:`critic_ensemble` build the usual twin Q.
* :class:`ValueNet` -- V(s).
* :class:`GaussianActor` -- IQL's policy: Gaussian with ``tanh`` on the mean and a state-independent
  log-std (not a squashed distribution).
* :class:`TanhGaussianActor` -- SAC/CQL's tanh-squashed Gaussian with state-dependent std.
* :class:`DeterministicActor` -- TD3's ``tanh`` actor.

Distributions are plain functions over (mean, log_std) so no distribution library is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)  # Python floats: importing this module starts no JAX backend


def default_init(scale: float = math.sqrt(2.0)):
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    out_dim: int | None = None
    activation: Callable = nn.relu
    dropout_rate: float = 0.0
    layer_norm: bool = False
    activate_final: bool = False

    @nn.compact
    def __call__(self, x, training: bool = False):
        for size in self.hidden_dims:
            x = nn.Dense(size, kernel_init=default_init())(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = self.activation(x)
            if self.dropout_rate > 0.0:
                x = nn.Dropout(self.dropout_rate)(x, deterministic=not training)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=default_init())(x)
            if self.activate_final:
                x = self.activation(x)
        return x


class Critic(nn.Module):
    """Q(s, a) -> scalar."""

    hidden_dims: Sequence[int] = (256, 256)
    layer_norm: bool = False

    @nn.compact
    def __call__(self, observations, actions):
        x = jnp.concatenate([observations, actions], axis=-1)
        return MLP(self.hidden_dims, 1, layer_norm=self.layer_norm)(x)[..., 0]


class ValueNet(nn.Module):
    """V(s) -> scalar."""

    hidden_dims: Sequence[int] = (256, 256)
    layer_norm: bool = False

    @nn.compact
    def __call__(self, observations):
        return MLP(self.hidden_dims, 1, layer_norm=self.layer_norm)(observations)[..., 0]


def Ensemble(module_cls, num: int):
    """``num`` independent copies of ``module_cls`` from one definition, stacked on axis 0."""
    return nn.vmap(
        module_cls, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None, out_axes=0, axis_size=num
    )


def critic_ensemble(hidden_dims=(256, 256), num: int = 2, layer_norm: bool = False) -> nn.Module:
    """``num`` Q-functions; ``apply`` returns shape ``(num, batch)``."""
    return Ensemble(Critic, num)(hidden_dims=tuple(hidden_dims), layer_norm=layer_norm)


# --------------------------------------------------------------------------------------------------
# Gaussian helpers (diagonal)


def gaussian_log_prob(x, mean, log_std):
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(log_std):
    return jnp.sum(log_std + 0.5 * (1.0 + LOG_2PI), axis=-1)


class GaussianActor(nn.Module):
    """IQL's policy: N(tanh(mean(s)), exp(log_std)) with a state-independent log-std parameter.

    Returns ``(mean, log_std)``; ``mean`` is already in [-1, 1]; the distribution is *not* squashed.
    """

    act_dim: int
    hidden_dims: Sequence[int] = (256, 256)
    dropout_rate: float = 0.0
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    tanh_mean: bool = True

    @nn.compact
    def __call__(self, observations, training: bool = False):
        h = MLP(self.hidden_dims, dropout_rate=self.dropout_rate, activate_final=True)(observations, training)
        mean = nn.Dense(self.act_dim, kernel_init=default_init())(h)
        if self.tanh_mean:
            mean = jnp.tanh(mean)
        log_std = self.param("log_std", nn.initializers.zeros, (self.act_dim,))
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        return mean, jnp.broadcast_to(log_std, mean.shape)


class TanhGaussianActor(nn.Module):
    """SAC-style policy: a = tanh(u), u ~ N(mean(s), exp(log_std(s))). Returns ``(mean, log_std)`` of u."""

    act_dim: int
    hidden_dims: Sequence[int] = (256, 256)
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, observations, training: bool = False):
        h = MLP(self.hidden_dims, activate_final=True)(observations)
        mean = nn.Dense(self.act_dim, kernel_init=default_init(1e-2))(h)
        log_std = nn.Dense(self.act_dim, kernel_init=default_init(1e-2))(h)
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        return mean, log_std


def tanh_gaussian_sample(key, mean, log_std):
    """Sample a = tanh(u) and return (a, log pi(a)) with the tanh change of variables."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    a = jnp.tanh(u)
    log_prob = gaussian_log_prob(u, mean, log_std) - jnp.sum(
        2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1
    )
    return a, log_prob


def tanh_gaussian_log_prob(a, mean, log_std, eps: float = 1e-6):
    """log pi(a) of a tanh-Gaussian for given actions in (-1, 1)."""
    a = jnp.clip(a, -1.0 + eps, 1.0 - eps)
    u = jnp.arctanh(a)
    return gaussian_log_prob(u, mean, log_std) - jnp.sum(jnp.log(1.0 - a**2 + eps), axis=-1)


class DeterministicActor(nn.Module):
    """TD3's actor: a = max_action * tanh(f(s))."""

    act_dim: int
    hidden_dims: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, observations, training: bool = False):
        h = MLP(self.hidden_dims, activate_final=True)(observations)
        return jnp.tanh(nn.Dense(self.act_dim, kernel_init=default_init())(h))


def polyak(target, online, tau: float):
    """target <- tau * online + (1 - tau) * target."""
    return jax.tree_util.tree_map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def gaussian_policy_act(
    key, mean, log_std, deterministic: bool, low: float = -1.0, high: float = 1.0, noise: float | None = None
):
    """The action of a (non-squashed) Gaussian policy: its mean when ``deterministic``, else a sample
    (``noise`` None: the policy's own std; a float: N(0, noise) added to the mean), clipped to [low, high]."""
    if deterministic:
        return jnp.clip(mean, low, high)
    std = jnp.exp(log_std) if noise is None else noise
    return jnp.clip(mean + std * jax.random.normal(key, mean.shape), low, high)
