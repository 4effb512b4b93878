"""Stitching: a path split over two episodes, the goal reward only at the end of the second.

States are one-hot; the chain is s_0 .. s_2L. Episode A walks s_0 -> s_L (action +0.9, no reward, ends
by a timeout at s_L); episode B walks s_L -> s_2L (action +0.9, reward R on its last step, terminal).
Episode C leaves s_0 the other way (action -0.9) into a dead end d_1 .. d_L with no reward. The goal is
only reachable from s_0 by *stitching* A and B. IQL bootstraps through s_L, so its V/Q at s_0 carry the
goal reward and its policy at s_0 goes right; AWR's Monte-Carlo values stop at the end of episode A
(zero), so its weights at s_0 are equal and its policy, like BC's, averages +0.9 and -0.9.

AWR runs here with pure Monte-Carlo targets (``bootstrap_truncations: false``): by default offbench's AWR
bootstraps with V at truncations as xbpeng/awr's TD(lambda) returns do, which carries some value through a
timeout -- the test is about what Monte-Carlo returns can and cannot do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from offbench import registry
from offbench.config import resolve
from offbench.training.kit.networks import GaussianActor, ValueNet, critic_ensemble
from offbench.training.step import make_train_chunk, make_train_step

L, R, GAMMA, STEPS = 4, 10.0, 0.9, 1000
HIDDEN = [64, 64]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def stitching_dataset():
    n_states = 2 * L + 1 + L  # chain s_0..s_2L, then dead end d_1..d_L
    eye = np.eye(n_states, dtype=np.float32)
    rows = []  # (state, action, reward, next state, terminal, end)
    for i in range(L):  # episode A: s_0 -> s_L
        rows.append((i, 0.9, 0.0, i + 1, 0.0, i == L - 1))
    for i in range(L, 2 * L):  # episode B: s_L -> s_2L, reward at the goal
        last = i == 2 * L - 1
        rows.append((i, 0.9, R if last else 0.0, i + 1, float(last), last))
    dead = [0] + [2 * L + 1 + k for k in range(L)]  # episode C: s_0 -> d_1 -> ... -> d_L
    for k in range(L):
        rows.append((dead[k], -0.9, 0.0, dead[k + 1], 0.0, k == L - 1))
    s, a, r, s2, d, e = (np.array(x) for x in zip(*rows))
    return {
        "observations": eye[s],
        "actions": a[:, None].astype(np.float32),
        "rewards": r.astype(np.float32),
        "next_observations": eye[s2],
        "terminals": d.astype(np.float32),
        "episode_ends": e.astype(bool),
    }, eye


def train(name, overrides):
    algo = registry.get(name)
    config = resolve(algo.default_config, name, None, None, {"hidden_dims": HIDDEN, "batch_size": 64, **overrides})
    data, eye = stitching_dataset()
    if algo.preprocess is not None:
        data = algo.preprocess(data, config)
    device = {k: jnp.asarray(v, jnp.float32) for k, v in data.items() if k != "episode_ends"}
    agent = algo.make(config, registry.Spec(eye.shape[1], 1, total_steps=STEPS))
    chunk = make_train_chunk(make_train_step(agent.update, config["batch_size"]), STEPS)
    key = jax.random.PRNGKey(0)[None]
    state = jax.vmap(agent.init)(key)
    state, _, _ = chunk(state, key, device, jnp.asarray(len(data["rewards"]), jnp.int32))
    return jax.tree_util.tree_map(lambda x: x[0], state), eye, data


def policy_mean_at_start(state, eye):
    mean, _ = GaussianActor(1, tuple(HIDDEN)).apply(state["actor"].params, eye[:1])
    return float(mean[0, 0])


def test_iql_stitches_awr_and_bc_do_not():
    fast = {"actor_lr": 1e-3, "cosine_decay": False}
    iql, eye, _ = train("iql", {**fast, "critic_lr": 1e-3, "value_lr": 1e-3, "tau": 0.05, "discount": GAMMA})
    awr, _, awr_data = train("awr", {**fast, "value_lr": 1e-3, "discount": GAMMA, "bootstrap_truncations": False})
    bc, _, _ = train("bc", fast)

    goal_value = GAMMA ** (2 * L - 1) * R  # Q*(s_0, right) = 4.78
    v_iql = float(ValueNet(tuple(HIDDEN)).apply(iql["value"].params, eye[:1])[0])
    q_iql = float(critic_ensemble(tuple(HIDDEN), 2).apply(iql["critic"].params, eye[:1], jnp.array([[0.9]])).min())
    v_awr = float(ValueNet(tuple(HIDDEN)).apply(awr["value"].params, eye[:1])[0])

    # IQL: the goal reward reached s_0 through the episode boundary at s_L
    assert q_iql > 0.7 * goal_value, (q_iql, goal_value)
    assert v_iql > 0.3 * goal_value, (v_iql, goal_value)
    # AWR: its targets at s_0 are Monte-Carlo returns of episodes A and C, both 0 -- it cannot stitch
    assert np.allclose(awr_data["returns"][[0, 2 * L]], 0.0)
    assert abs(v_awr) < 0.1 * goal_value, v_awr
    # policies at s_0: IQL goes towards the goal; AWR and BC average the two dataset actions
    assert policy_mean_at_start(iql, eye) > 0.5
    assert abs(policy_mean_at_start(awr, eye)) < 0.3
    assert abs(policy_mean_at_start(bc, eye)) < 0.3
