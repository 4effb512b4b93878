"""CQL's and AWAC's networks as CORL builds them (issue 28): initialisations, CQL's learnable log-std scale and
offset and its clip. The update equations themselves: tests/test_update_equations.py."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from offbench import registry
from offbench.config import resolve

OBS = jnp.asarray(np.random.default_rng(0).normal(size=(8, 3)), jnp.float32)


def _make(name, **overrides):
    algo = registry.get(name)
    return algo.make(resolve(algo.default_config, name, None, None, overrides), registry.Spec(3, 2, total_steps=10))


def _dense(tree):
    """{path: (kernel, bias)} of every Dense layer of a parameter tree."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    out = {}
    for path, leaf in flat:
        names = [str(getattr(k, "key", k)) for k in path]
        if names[-1] in ("kernel", "bias"):
            out.setdefault("/".join(names[:-1]), {})[names[-1]] = np.asarray(leaf)
    return out


def test_cql_networks_as_corl_builds_them():
    """CORL cql.py TanhGaussianPolicy (m = 1, o = -1 learnable, log-std clipped to [-20, 2], PyTorch-default hidden
    layers, xavier gain-1e-2 output layer of 2|A| units, zero bias) and FullyConnectedQFunction with orthogonal_init
    (orthogonal gain sqrt 2 hidden layers, gain 1e-2 output, zero biases)."""
    from offbench.training.kit.networks import ScaledTanhGaussianActor

    agent = _make("cql", hidden_dims=[64, 64, 64])
    state = agent.init(jax.random.PRNGKey(0))
    actor = state["actor"].params
    assert float(actor["params"]["log_std_multiplier"]) == 1.0 and float(actor["params"]["log_std_offset"]) == -1.0
    layers = _dense(actor)
    out = layers["params/Dense_0"]
    assert out["kernel"].shape == (64, 4) and not out["bias"].any()
    assert np.abs(out["kernel"]).max() <= 1e-2 * math.sqrt(6 / (64 + 4))  # xavier_uniform_, gain 1e-2
    for name in ("params/MLP_0/Dense_0", "params/MLP_0/Dense_1", "params/MLP_0/Dense_2"):
        w, b = layers[name]["kernel"], layers[name]["bias"]
        bound = 1 / math.sqrt(w.shape[0])  # PyTorch nn.Linear default: U(+-1/sqrt(fan_in)), bias too
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound and np.abs(b).min() > 0
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    mean, log_std = ScaledTanhGaussianActor(2, (64, 64, 64)).apply(actor, OBS)
    assert np.abs(np.asarray(log_std) + 1.0).max() < 0.05  # initial std e^-1 = 0.37 (offbench before: 1.0)
    # the clip acts on m * raw + o, at CORL's [-20, 2]
    for m, o, expected in ((1.0, 50.0, 2.0), (1.0, -50.0, -20.0)):
        p = {"params": {**actor["params"], "log_std_multiplier": jnp.asarray(m), "log_std_offset": jnp.asarray(o)}}
        assert np.asarray(ScaledTanhGaussianActor(2, (64, 64, 64)).apply(p, OBS)[1]).tolist() == [[expected] * 2] * 8
    critic = _dense(state["critic"].params)
    for layer in critic.values():
        assert not layer["bias"].any()
        w = layer["kernel"][0]  # the first of the twin critics
        gain = 1e-2 if w.shape[1] == 1 else math.sqrt(2)
        n = min(w.shape)
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T  # orthogonal: gram = gain^2 I
        np.testing.assert_allclose(gram, gain**2 * np.eye(n), atol=1e-5 * max(1.0, gain**2))


def test_awac_networks_keep_pytorch_default_init():
    """CORL awac.py Actor / Critic set no initialisation: PyTorch's nn.Linear default (weights and biases
    ~ U(+-1/sqrt(fan_in))) for every layer; the log-std parameter starts at 0."""
    state = _make("awac", hidden_dims=[64, 64, 64]).init(jax.random.PRNGKey(0))
    for tree in (state["actor"].params, state["critic"].params):
        for layer in _dense(tree).values():
            w, b = layer["kernel"], layer["bias"]
            bound = 1 / math.sqrt(w.shape[-2])
            assert np.abs(w).max() <= bound and np.abs(b).max() <= bound and np.abs(b).min() > 0
    assert not np.asarray(state["actor"].params["params"]["log_std"]).any()
