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
* :class:`ScaledTanhGaussianActor` -- CORL's CQL policy: one output layer for (mean, raw log-std), a learnable
  log-std multiplier and offset, log-std clipped to [-20, 2].

Initialisation schemes (``init_scheme`` / ``out_scheme`` of the modules; default ``"orthogonal"``, the IQL code's):
``"orthogonal"`` (gain sqrt 2, zero bias), ``"torch"`` (PyTorch's ``nn.Linear`` default), ``"orthogonal_1e-2"``
and ``"xavier_1e-2"`` (gain 1e-2, zero bias: CORL's output layers).

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


def torch_bias_init(fan_in: int):
    """PyTorch nn.Linear.reset_parameters (torch/nn/modules/linear.py): bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


INIT_SCHEMES = ("orthogonal", "torch", "orthogonal_1e-2", "xavier_1e-2")


def dense(features: int, scheme: str, fan_in: int) -> nn.Dense:
    """A Dense layer initialised by ``scheme`` (INIT_SCHEMES):
    orthogonal       -- orthogonal, gain sqrt(2), zero bias (ikostrikov/implicit_q_learning common.py default_init)
    torch            -- PyTorch's nn.Linear default: kaiming_uniform_(a=sqrt(5)), i.e. weights and bias
                        ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch/nn/modules/linear.py reset_parameters)
    orthogonal_1e-2  -- orthogonal, gain 1e-2, zero bias (CORL cql.py init_module_weights, orthogonal_init)
    xavier_1e-2      -- xavier_uniform_, gain 1e-2, zero bias (CORL cql.py init_module_weights, otherwise)"""
    if scheme == "orthogonal":
        return nn.Dense(features, kernel_init=default_init())
    if scheme == "torch":  # variance_scaling(1/3, fan_in, uniform): bound sqrt(3 * (1/3) / fan_in)
        kernel = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
        return nn.Dense(features, kernel_init=kernel, bias_init=torch_bias_init(fan_in))
    if scheme == "orthogonal_1e-2":
        return nn.Dense(features, kernel_init=default_init(1e-2))
    if scheme == "xavier_1e-2":  # torch xavier_uniform_ bound gain * sqrt(6 / (fan_in + fan_out))
        return nn.Dense(features, kernel_init=nn.initializers.variance_scaling(1e-4, "fan_avg", "uniform"))
    raise ValueError(f"unknown init scheme {scheme!r}; one of {INIT_SCHEMES}")


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    out_dim: int | None = None
    activation: Callable = nn.relu
    dropout_rate: float = 0.0
    layer_norm: bool = False
    activate_final: bool = False
    init_scheme: str = "orthogonal"  # hidden layers (INIT_SCHEMES)
    out_scheme: str | None = None  # the output layer; None: ``init_scheme``

    @nn.compact
    def __call__(self, x, training: bool = False):
        for size in self.hidden_dims:
            x = dense(size, self.init_scheme, x.shape[-1])(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = self.activation(x)
            if self.dropout_rate > 0.0:
                x = nn.Dropout(self.dropout_rate)(x, deterministic=not training)
        if self.out_dim is not None:
            x = dense(self.out_dim, self.out_scheme or self.init_scheme, x.shape[-1])(x)
            if self.activate_final:
                x = self.activation(x)
        return x


class Critic(nn.Module):
    """Q(s, a) -> scalar."""

    hidden_dims: Sequence[int] = (256, 256)
    layer_norm: bool = False
    init_scheme: str = "orthogonal"
    out_scheme: str | None = None

    @nn.compact
    def __call__(self, observations, actions):
        x = jnp.concatenate([observations, actions], axis=-1)
        q = MLP(
            self.hidden_dims, 1, layer_norm=self.layer_norm, init_scheme=self.init_scheme, out_scheme=self.out_scheme
        )
        return q(x)[..., 0]


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


def critic_ensemble(
    hidden_dims=(256, 256),
    num: int = 2,
    layer_norm: bool = False,
    init_scheme: str = "orthogonal",
    out_scheme: str | None = None,
) -> nn.Module:
    """``num`` Q-functions; ``apply`` returns shape ``(num, batch)``; ``init_scheme`` / ``out_scheme``: INIT_SCHEMES."""
    return Ensemble(Critic, num)(
        hidden_dims=tuple(hidden_dims), layer_norm=layer_norm, init_scheme=init_scheme, out_scheme=out_scheme
    )


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
    init_scheme: str = "orthogonal"  # every Dense layer (INIT_SCHEMES)

    @nn.compact
    def __call__(self, observations, training: bool = False):
        h = MLP(self.hidden_dims, dropout_rate=self.dropout_rate, activate_final=True, init_scheme=self.init_scheme)(
            observations, training
        )
        mean = dense(self.act_dim, self.init_scheme, h.shape[-1])(h)
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


class ScaledTanhGaussianActor(nn.Module):
    """CORL's CQL policy (tinkoff-ai/CORL algorithms/offline/cql.py TanhGaussianPolicy, ReparameterizedTanhGaussian):
    one output layer of 2|A| units split into (mean, raw log-std); log_std = clip(m * raw + o, -20, 2) with a
    learnable scalar multiplier m (starts at 1) and offset o (starts at -1, so the initial std is e^-1 = 0.37);
    a = tanh(u), u ~ N(mean, exp(log_std)). Hidden layers keep PyTorch's default init and the output layer is
    xavier_uniform with gain 1e-2, zero bias (``init_module_weights`` is called without ``orthogonal_init``).
    Returns ``(mean, log_std)`` of u, as :class:`TanhGaussianActor`."""

    act_dim: int
    hidden_dims: Sequence[int] = (256, 256, 256)
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    log_std_multiplier: float = 1.0
    log_std_offset: float = -1.0
    init_scheme: str = "torch"
    out_scheme: str = "xavier_1e-2"

    @nn.compact
    def __call__(self, observations, training: bool = False):
        h = MLP(self.hidden_dims, activate_final=True, init_scheme=self.init_scheme)(observations)
        out = dense(2 * self.act_dim, self.out_scheme, h.shape[-1])(h)
        mean, raw = out[..., : self.act_dim], out[..., self.act_dim :]
        m = self.param("log_std_multiplier", nn.initializers.constant(self.log_std_multiplier), ())
        o = self.param("log_std_offset", nn.initializers.constant(self.log_std_offset), ())
        return mean, jnp.clip(m * raw + o, self.log_std_min, self.log_std_max)


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
    init_scheme: str = "orthogonal"  # every layer (INIT_SCHEMES)

    @nn.compact
    def __call__(self, observations, training: bool = False):
        h = MLP(self.hidden_dims, activate_final=True, init_scheme=self.init_scheme)(observations)
        return jnp.tanh(dense(self.act_dim, self.init_scheme, h.shape[-1])(h))


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
