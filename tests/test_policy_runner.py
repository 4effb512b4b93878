"""The offbench-mlp-policy/1 runner: forward pass, sampling, and a real policy reproducing its return."""

from __future__ import annotations

import json

import numpy as np
import pytest

from offbench.errors import OffbenchError
from offbench.recipes.policy import MLPPolicy, evaluate_policy, load_policy
from offbench.recipes.recipes import default_behavior_dir

BDIR = default_behavior_dir()
needs_data = pytest.mark.skipif(not (BDIR / "policies").exists(), reason=f"no behaviour data at {BDIR}")


def _write_policy(path, activation="tanh", squash="none", log_std=True, fmt="offbench-mlp-policy/1"):
    rng = np.random.default_rng(0)
    arrays = {
        "obs_shift": rng.normal(size=3),
        "obs_scale": rng.uniform(0.5, 2, 3),
        "w0": rng.normal(size=(3, 5)),
        "b0": rng.normal(size=5),
        "w1": rng.normal(size=(5, 2)),
        "b1": rng.normal(size=2),
        "act_shift": np.array([0.1, -0.2]),
        "act_scale": np.array([0.5, 2.0]),
    }
    if log_std:
        arrays["log_std"] = np.array([-1.0, 0.5])
    meta = {"format": fmt, "activation": activation, "squash": squash, "n_layers": 2, "env_id": "Pendulum-v1"}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return arrays


@pytest.mark.parametrize("activation,squash", [("tanh", "none"), ("relu", "tanh")])
def test_forward_pass_matches_the_format(tmp_path, activation, squash):
    a = _write_policy(tmp_path / "p.npz", activation, squash)
    pol = MLPPolicy(tmp_path / "p.npz")
    obs = np.random.default_rng(1).normal(size=(4, 3))
    h = (obs - a["obs_shift"]) / a["obs_scale"]
    h = h @ a["w0"] + a["b0"]
    h = np.tanh(h) if activation == "tanh" else np.maximum(h, 0)
    out = h @ a["w1"] + a["b1"]
    out = np.tanh(out) if squash == "tanh" else out
    expect = out * a["act_scale"] + a["act_shift"]
    np.testing.assert_allclose(pol.mean(obs), expect, rtol=1e-10)
    np.testing.assert_allclose(pol.mean(obs[0]), expect[0], rtol=1e-10)  # unbatched works too
    # sampling: mean + exp(log_std) * N(0, 1), reproducible from the generator
    s1 = pol.sample(np.repeat(obs[:1], 20000, 0), np.random.default_rng(3))
    s2 = pol.sample(np.repeat(obs[:1], 20000, 0), np.random.default_rng(3))
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_allclose(s1.std(0), np.exp(a["log_std"]), rtol=0.05)
    np.testing.assert_allclose(s1.mean(0), expect[0], atol=0.05)


def test_bad_files_are_one_line_errors(tmp_path):
    _write_policy(tmp_path / "p.npz", fmt="other/1")
    with pytest.raises(OffbenchError, match="format"):
        MLPPolicy(tmp_path / "p.npz")
    with pytest.raises(OffbenchError, match="does not exist"):
        MLPPolicy(tmp_path / "missing.npz")
    _write_policy(tmp_path / "q.npz", log_std=False)
    with pytest.raises(OffbenchError, match="log_std"):
        MLPPolicy(tmp_path / "q.npz").sample(np.zeros((1, 3)), np.random.default_rng(0))


@needs_data
def test_hopper_sac_reproduces_its_measured_return():
    """hopper-sac (measured_return 1104.9 over seeds 0..2, mujoco 3.3.7): the same seeds here within 5%."""
    pol = load_policy(BDIR, "hopper-sac")
    assert pol.meta["measured_episodes"] == 3
    returns = evaluate_policy(pol, episodes=3, seed=0)
    assert abs(returns.mean() - pol.measured_return) <= 0.05 * pol.measured_return, returns
    # deterministic: the same seeds give the same returns
    np.testing.assert_allclose(evaluate_policy(pol, episodes=1, seed=0), returns[:1])


@needs_data
def test_trpo_snapshot_reproduces_its_measured_return():
    pol = load_policy(BDIR, "hopper-trpo-iter0000020")
    returns = evaluate_policy(pol, episodes=pol.meta["measured_episodes"], seed=0)
    assert abs(returns.mean() - pol.measured_return) <= 0.05 * pol.measured_return, returns
