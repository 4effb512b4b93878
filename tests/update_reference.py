"""Shared pieces of tests/test_update_equations.py: a fixed batch, hand-set weights with SGD in place of the
optimisers, and forward passes written independently of offbench's networks (dense layers read by name)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from offbench import registry
from offbench.config import resolve
from offbench.training.kit.train_state import TrainState

OBS, ACT, B = 3, 2, 6
HIDDEN = [4, 4]
LR = 0.5
LOG_2PI = math.log(2 * math.pi)


# ------------------------------------------------------------------------------------------------
# Fixtures: a batch, hand-set weights, SGD in place of Adam


def fixed_batch(seed=0):
    rng = np.random.default_rng(seed)
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {
        "observations": f(rng.normal(size=(B, OBS))),
        "actions": f(rng.uniform(-0.9, 0.9, (B, ACT))),
        "rewards": f(rng.normal(size=B)),
        "next_observations": f(rng.normal(size=(B, OBS))),
        "terminals": f([0, 0, 1, 0, 0, 1]),
    }


def make_agent(name, **overrides):
    algo = registry.get(name)
    cfg = resolve(algo.default_config, name, None, None, {"hidden_dims": HIDDEN, **overrides})
    return algo.make(cfg, registry.Spec(OBS, ACT, total_steps=10)), cfg


def hand_set(state, seed=1, scale=0.6):
    """Every parameter replaced by a fixed draw (the same for any init scheme), every optimiser by SGD(LR)."""
    rng = np.random.default_rng(seed)

    def fill(x):
        return jnp.asarray(rng.normal(size=np.shape(x)) * scale, jnp.float32)

    sgd = optax.sgd(LR)
    out = {}
    for k, v in state.items():
        if isinstance(v, TrainState):
            params = jax.tree_util.tree_map(fill, v.params)
            out[k] = TrainState(params=params, opt_state=sgd.init(params), tx=sgd)
        elif k == "step":
            out[k] = v
        else:
            out[k] = jax.tree_util.tree_map(fill, v)
    return out


def params(state, k):
    v = state[k]
    return v.params if isinstance(v, TrainState) else v


def assert_sgd_step(old, new, grad):
    """The algorithm's step old -> new was -LR * grad (leaf by leaf)."""
    for o, n, g in zip(*(jax.tree_util.tree_leaves(t) for t in (old, new, grad))):
        applied = (np.asarray(o, np.float64) - np.asarray(n, np.float64)) / LR
        scale = max(1.0, float(np.abs(g).max()))
        np.testing.assert_allclose(applied, np.asarray(g), rtol=2e-4, atol=2e-5 * scale)


def assert_polyak(old_target, new_online, new_target, tau):
    for t, o, n in zip(*(jax.tree_util.tree_leaves(x) for x in (old_target, new_online, new_target))):
        np.testing.assert_allclose(n, (1 - tau) * np.asarray(t) + tau * np.asarray(o), rtol=1e-5, atol=1e-7)


def close(metric, value):
    assert float(metric) == pytest.approx(float(value), rel=2e-5, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# Independent forward passes (dense layers read by name) and densities


def layers(d):
    return [(d[f"Dense_{i}"]["kernel"], d[f"Dense_{i}"]["bias"]) for i in range(len(d))]


def mlp(ls, x, activate_last=False):
    for i, (w, b) in enumerate(ls):
        x = x @ w + b
        if i < len(ls) - 1 or activate_last:
            x = jnp.maximum(x, 0.0)
    return x


def twin_q(p, s, a):
    """(2, ...): Q_1, Q_2 of an ensemble whose parameters carry a leading axis of 2."""
    x = jnp.concatenate([jnp.broadcast_to(s, a.shape[:-1] + s.shape[-1:]), a], -1)
    d = p["params"]["MLP_0"]
    return jnp.stack([mlp(layers(jax.tree_util.tree_map(lambda t, i=i: t[i], d)), x)[..., 0] for i in range(2)])


def value(p, s):
    return mlp(layers(p["params"]["MLP_0"]), s)[..., 0]


def head(p, s):
    """Hidden ReLU layers (MLP_0) then the output layer (Dense_0)."""
    h = mlp(layers(p["params"]["MLP_0"]), s, activate_last=True)
    return h @ p["params"]["Dense_0"]["kernel"] + p["params"]["Dense_0"]["bias"]


def gaussian(p, s, tanh_mean=True, lo=-5.0):
    """IQL's / AWAC's policy: N(mean(s), exp(clip(log_std, lo, 2))), mean tanh-squashed or linear."""
    mean = head(p, s)
    return (jnp.tanh(mean) if tanh_mean else mean), jnp.clip(p["params"]["log_std"], lo, 2.0)


def normal_logpdf(x, mean, log_std):
    return jnp.sum(-0.5 * ((x - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * LOG_2PI, -1)


def weighted_nll(p, s, a, w, **kw):
    mean, log_std = gaussian(p, s, **kw)
    return -(w * normal_logpdf(a, mean, jnp.broadcast_to(log_std, mean.shape))).mean()
