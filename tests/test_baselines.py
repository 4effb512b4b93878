"""The seven baselines of issue 4: each loss on a hand-made batch against a value computed here,
2 seeds under jit+vmap through `offbench run` on a tiny hdf5, and the data preprocessing steps."""

from __future__ import annotations

import json
import math

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

from offbench import registry
from offbench.config import resolve
from offbench.errors import OffbenchError
from offbench.training.kit.networks import DeterministicActor, GaussianActor, ValueNet, critic_ensemble

BASELINES = ["bc", "filtered_bc", "awr", "awac", "onestep", "td3bc", "cql"]
TINY = {"hidden_dims": [16, 16]}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.setenv("OFFBENCH_DATA_DIR", str(tmp_path / "d4rl"))


def config_of(name, **overrides):
    algo = registry.get(name)
    return algo, resolve(algo.default_config, name, None, None, {**TINY, **overrides})


def hand_batch(obs_dim=3, act_dim=2, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "observations": jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
        "actions": jnp.asarray(rng.uniform(-0.9, 0.9, (n, act_dim)), jnp.float32),
        "rewards": jnp.asarray(rng.normal(size=n), jnp.float32),
        "next_observations": jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
        "terminals": jnp.asarray([0, 0, 1, 0, 0, 0, 1, 0][:n], jnp.float32),
    }


def np_gaussian_nll(a, mean, log_std):
    a, mean, log_std = (np.asarray(x, np.float64) for x in (a, mean, log_std))
    var = np.exp(2 * log_std)
    return (0.5 * (a - mean) ** 2 / var + log_std + 0.5 * np.log(2 * np.pi)).sum(-1)


def test_all_registered_with_finetune_flags():
    names = registry.names()
    for name in BASELINES + ["iql"]:
        assert name in names
    assert "10%BC" in registry.get("filtered_bc").description
    assert {n for n in BASELINES if registry.get(n).finetune} == {"awac", "td3bc", "cql"}
    assert registry.get("td3bc").default_config["normalize_obs"] is True


# ------------------------------------------------------------------------------------------------
# BC and 10%BC


def test_bc_loss_is_gaussian_nll():
    algo, cfg = config_of("bc", cosine_decay=False)
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    batch = hand_batch()
    mean, log_std = GaussianActor(2, (16, 16)).apply(state["actor"].params, batch["observations"])
    expected = np_gaussian_nll(batch["actions"], mean, log_std).mean()
    _, metrics = agent.update(state, batch, jax.random.PRNGKey(1))
    assert float(metrics["actor_loss"]) == pytest.approx(expected, rel=1e-5)


def test_filtered_bc_episode_rule_is_corls():
    from offbench.algorithms.filtered_bc import preprocess, top_episodes_mask

    # 10 episodes of length 2; episode k has return k (episode 7 the best, then 9, ...)
    order = np.array([3, 0, 5, 1, 9, 2, 4, 8, 6, 7], float)
    rewards = np.repeat(order / 2, 2)
    ends = np.tile([False, True], 10)
    mask = top_episodes_mask(rewards, ends, 0.1, "episodes")
    assert np.flatnonzero(mask).tolist() == [8, 9]  # episode with return 9 (index 4)
    mask = top_episodes_mask(rewards, ends, 0.25, "episodes")  # CORL: int(2.5) = 2 episodes: 9, 8
    assert np.flatnonzero(mask).tolist() == [8, 9, 14, 15]
    data = {"rewards": rewards, "episode_ends": ends, "actions": np.arange(20.0)[:, None]}
    out = preprocess(data, {"fraction": 0.35, "filter_rule": "episodes"})
    assert out["actions"][:, 0].tolist() == [8, 9, 14, 15, 18, 19]
    assert out["episode_ends"].tolist() == [False, True] * 3
    with pytest.raises(OffbenchError, match="fraction"):
        top_episodes_mask(rewards, ends, 0.0)
    with pytest.raises(OffbenchError, match="filter_rule"):
        top_episodes_mask(rewards, ends, 0.1, "best")


def _episodes(lengths, returns):
    """Concatenated episodes with the given lengths and (raw) returns, reward spread evenly per step."""
    rewards = np.concatenate([np.full(n, r / n) for n, r in zip(lengths, returns)])
    ends = np.concatenate([np.arange(n) == n - 1 for n in lengths])
    return rewards, ends


def test_filtered_bc_keeps_ten_percent_of_timesteps_on_unequal_episodes():
    """Decision Transformer's %BC: the best episodes while their total length stays within 10% of all timesteps."""
    from offbench.algorithms.filtered_bc import top_episodes_mask

    lengths = [300, 40, 20, 30, 500, 60, 50]  # 1000 timesteps, budget 100
    returns = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0]
    rewards, ends = _episodes(lengths, returns)
    mask = top_episodes_mask(rewards, ends, 0.1)  # the default rule: timesteps
    # the best (300 steps) is always kept, then nothing more fits: 30% of the timesteps, one episode
    assert mask.sum() == 300 and mask[:300].all()
    lengths = [40, 20, 30, 300, 500, 60, 50]  # now the best three fill 90 <= 100 steps; the 4th would not
    rewards, ends = _episodes(lengths, returns)
    mask = top_episodes_mask(rewards, ends, 0.1)
    assert mask.sum() == 90 and mask[:90].all()
    assert mask.sum() / len(mask) <= 0.1
    # the episode rule would keep int(0.1 * 7) = 0 -> 1 episode; at 0.3, two episodes whatever their length
    assert top_episodes_mask(rewards, ends, 0.3, "episodes").sum() == 60


def test_filtered_bc_ranks_on_dataset_rewards_not_the_antmaze_shift():
    """With r - 1, a short failed episode outranks a long successful one; ranking must use the raw rewards."""
    from offbench.algorithms.filtered_bc import preprocess

    lengths, returns = [100, 10, 95], [50.0, 5.0, 0.0]
    raw, ends = _episodes(lengths, returns)
    shifted = raw - 1.0  # returns -50, -5, -95: the 10-step episode would win
    data = {"rewards": shifted, "dataset_rewards": raw, "episode_ends": ends, "actions": np.arange(205.0)[:, None]}
    out = preprocess(data, {"fraction": 0.1, "filter_rule": "timesteps"})
    assert out["actions"][:, 0].tolist() == list(range(100))  # the long successful episode
    np.testing.assert_array_equal(out["rewards"], shifted[:100])  # training still sees the transformed rewards
    wrong = preprocess(
        {k: v for k, v in data.items() if k != "dataset_rewards"}, {"fraction": 0.1, "filter_rule": "timesteps"}
    )
    assert wrong["actions"][:, 0].tolist() == list(range(100, 110))  # what ranking on r - 1 picks


def test_prepare_hands_10pct_bc_the_raw_rewards(tmp_path):
    """End to end through the pipeline's prepare: an AntMaze-style r - 1 transform does not change the choice."""
    from offbench.training.prepare import RunOptions, prepare

    rng = np.random.default_rng(0)
    lengths, returns = [100, 10, 95], [50.0, 5.0, 0.0]
    raw, ends = _episodes(lengths, returns)
    n = len(raw)
    path = tmp_path / "hopper-medium-v2.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["next_observations"] = rng.normal(size=(n, 11)).astype(np.float32)
        f["actions"] = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        f["rewards"] = raw.astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = ends
    opts = RunOptions(
        algo="filtered_bc",
        suite="locomotion",
        dataset=str(path),
        steps=1,
        eval_every=1,
        overrides={"reward_transform": "antmaze", "hidden_dims": [8]},
        results=str(tmp_path / "r"),
        progress=False,
    )
    prep = prepare(opts, say=lambda _: None)
    # the best episode, as qlearning_dataset keeps it: its timeout step (the 100th) has no next step in the data
    assert prep.size == 99 and "dataset_rewards" not in prep.data
    np.testing.assert_allclose(np.asarray(prep.data["rewards"]), raw[:99] - 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# AWR


def test_awr_monte_carlo_returns_and_weights():
    from offbench.algorithms.awr import exp_advantage_weights, monte_carlo_returns, preprocess

    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ends = np.array([False, False, True, False, True])
    g = monte_carlo_returns(rewards, ends, 0.5)
    assert g.tolist() == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3, 4 + 0.5 * 5, 5])
    out = preprocess({"rewards": rewards, "episode_ends": ends}, {"discount": 0.5, "bootstrap_truncations": False})
    assert out["returns"].tolist() == pytest.approx(g.tolist()) and "bootstrap_obs" not in out
    w = exp_advantage_weights(jnp.array([0.0, 1.0, -1.0, 10.0]), 2.0, 20.0)
    assert np.asarray(w).tolist() == pytest.approx([1.0, math.exp(0.5), math.exp(-0.5), 20.0], rel=1e-6)


def test_awr_bootstraps_truncated_episodes_with_v():
    """xbpeng/awr _compute_return ends a truncated path in r + gamma * V(s_T); a terminal one in r."""
    from offbench.algorithms.awr import bootstrap_terms, preprocess

    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ends = np.array([False, False, True, False, True])
    terminals = np.array([0.0, 0.0, 0.0, 0.0, 1.0])  # episode 1 truncated (timeout), episode 2 terminated
    next_obs = np.arange(5.0)[:, None] + 10.0
    obs_end, w = bootstrap_terms(next_obs, terminals, ends, 0.5)
    assert obs_end[:, 0].tolist() == [12.0, 12.0, 12.0, 14.0, 14.0]
    assert w.tolist() == pytest.approx([0.125, 0.25, 0.5, 0.0, 0.0])
    out = preprocess(
        {"rewards": rewards, "episode_ends": ends, "terminals": terminals, "next_observations": next_obs},
        {"discount": 0.5, "bootstrap_truncations": True},
    )
    assert out["bootstrap_discount"].tolist() == pytest.approx(w.tolist())
    # in the update: target = G + gamma^(T-t+1) V(s_end), so a goal-less truncated AntMaze chunk (r - 1 each
    # step) no longer gets targets that run from -100 (first step) to -1 (last step) as if the maze ended there
    algo, cfg = config_of("awr", discount=0.5, normalize_advantage=False)
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    batch = {
        **hand_batch(),
        "returns": jnp.arange(8.0),
        "bootstrap_discount": jnp.linspace(0.0, 0.7, 8),
        "bootstrap_obs": jnp.asarray(np.random.default_rng(3).normal(size=(8, 3)), jnp.float32),
    }
    value = ValueNet((16, 16))
    v = np.asarray(value.apply(state["value"].params, batch["observations"]), np.float64)
    v_end = np.asarray(value.apply(state["value"].params, batch["bootstrap_obs"]), np.float64)
    y = np.arange(8.0) + np.linspace(0.0, 0.7, 8) * v_end
    _, m = agent.update(state, batch, jax.random.PRNGKey(1))
    assert float(m["value_loss"]) == pytest.approx(((v - y) ** 2).mean(), rel=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_awr_losses_on_hand_batch(normalize):
    algo, cfg = config_of(
        "awr", awr_temperature=0.5, bootstrap_truncations=False, max_weight=3.0, normalize_advantage=normalize
    )
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    batch = {**hand_batch(), "returns": jnp.asarray([0.0, 1.0, -2.0, 0.5, 3.0, 0.1, -0.3, 2.0]) * 50.0}
    v = np.asarray(ValueNet((16, 16)).apply(state["value"].params, batch["observations"]), np.float64)
    mean, log_std = GaussianActor(2, (16, 16)).apply(state["actor"].params, batch["observations"])
    g = np.asarray(batch["returns"], np.float64)
    adv = g - v
    if normalize:  # the AWR code standardises advantages before exponentiating them
        adv = (adv - adv.mean()) / (adv.std() + 1e-5)
    w = np.minimum(np.exp(adv / 0.5), 3.0)
    if normalize:  # standardised advantages: some weights clipped, some not
        assert 0 < (w < 3.0).sum() < len(w)
    _, m = agent.update(state, batch, jax.random.PRNGKey(1))
    assert float(m["value_loss"]) == pytest.approx(((v - g) ** 2).mean(), rel=1e-5)
    assert float(m["actor_loss"]) == pytest.approx(
        (w * np_gaussian_nll(batch["actions"], mean, log_std)).mean(), rel=1e-4
    )


# ------------------------------------------------------------------------------------------------
# AWAC


def test_awac_losses_on_hand_batch():
    from offbench.algorithms.awac import awac_weights

    assert np.asarray(awac_weights(jnp.array([0.0, 2.0, 9.0]), 2.0, 50.0)).tolist() == pytest.approx(
        [1.0, math.e, 50.0], rel=1e-6
    )
    algo, cfg = config_of("awac", discount=0.9, awac_lambda=0.5, value_samples=4)
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    # a (nearly) deterministic policy: log-std at CORL's floor (-20), so a' = pi's (linear) mean up to std e^-20
    params = jax.tree_util.tree_map(lambda x: x, state["actor"].params)
    params["params"]["log_std"] = jnp.full((2,), -30.0)
    state["actor"] = state["actor"].replace(params=params)
    batch = hand_batch()
    actor, critic = GaussianActor(2, (16, 16), log_std_min=-20.0, tanh_mean=False), critic_ensemble((16, 16), 2)
    next_a = np.clip(actor.apply(state["actor"].params, batch["next_observations"])[0], -1, 1)
    next_q = np.asarray(critic.apply(state["target_critic"], batch["next_observations"], next_a)).min(0)
    target = np.asarray(batch["rewards"]) + 0.9 * (1 - np.asarray(batch["terminals"])) * next_q
    q = np.asarray(critic.apply(state["critic"].params, batch["observations"], batch["actions"]))
    expected = ((q - target) ** 2).sum(0).mean()
    new_state, m = agent.update(state, batch, jax.random.PRNGKey(1))
    assert float(m["critic_loss"]) == pytest.approx(expected, rel=2e-3)
    # advantage against the *updated* critic: Q(s, a) - Q(s, pi(s))
    pi_a = actor.apply(state["actor"].params, batch["observations"])[0]
    c = new_state["critic"].params
    adv = np.asarray(critic.apply(c, batch["observations"], batch["actions"])).min(0) - np.asarray(
        critic.apply(c, batch["observations"], pi_a)
    ).min(0)
    # (tolerances: the policy samples still carry std e^-5 of noise)
    assert float(m["adv"]) == pytest.approx(adv.mean(), abs=3e-3)
    assert float(m["weight"]) == pytest.approx(np.minimum(np.exp(adv / 0.5), 100.0).mean(), rel=1e-2)


def test_awac_follows_corl_per_suite():
    """CORL configs/offline/awac/*/*.yaml: lambda 0.3333 on locomotion, 0.1 on AntMaze, Adroit and maze2d;
    3 x 256 networks, normalised states, raw locomotion rewards and r - 1 on AntMaze (modify_reward)."""
    d = registry.get("awac").default_config
    got = {s: resolve(d, "awac", s) for s in ("locomotion", "antmaze", "adroit", "maze2d")}
    assert {s: c["awac_lambda"] for s, c in got.items()} == {
        "locomotion": 0.3333,
        "antmaze": 0.1,
        "adroit": 0.1,
        "maze2d": 0.1,
    }
    for c in got.values():
        assert c["hidden_dims"] == [256, 256, 256] and c["normalize_obs"] is True and c["log_std_min"] == -20.0
    assert got["locomotion"]["reward_transform"] == "none" and got["antmaze"]["reward_transform"] == "antmaze"
    # the policy's mean is linear (CORL's Actor), not tanh-squashed as IQL's
    algo, cfg = config_of("awac")
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    params = jax.tree_util.tree_map(lambda x: x * 50.0, state["actor"].params)
    mean, _ = GaussianActor(2, (16, 16), tanh_mean=False).apply(params, hand_batch()["observations"])
    assert np.abs(np.asarray(mean)).max() > 1.0


# ------------------------------------------------------------------------------------------------
# One-step RL


def test_onestep_next_actions_stay_in_episode():
    from offbench.algorithms.onestep import next_actions, preprocess

    actions = np.arange(6, dtype=np.float32)[:, None]
    ends = np.array([False, True, False, False, True, True])  # episodes [0,1] [2,3,4] [5]
    nxt, has = next_actions(actions, ends)
    assert nxt[:, 0].tolist() == [1, 1, 3, 4, 4, 5]
    assert has.tolist() == [1, 0, 1, 1, 0, 0]
    out = preprocess({"actions": actions, "episode_ends": ends}, {})
    assert set(out) == {"actions", "episode_ends", "next_actions", "has_next_action"}


def test_onestep_sarsa_loss_on_hand_batch():
    algo, cfg = config_of("onestep", discount=0.9, beta=2.0)
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    batch = hand_batch()
    rng = np.random.default_rng(1)
    batch["next_actions"] = jnp.asarray(rng.uniform(-0.9, 0.9, (8, 2)), jnp.float32)
    batch["has_next_action"] = jnp.asarray([1, 1, 0, 1, 0, 1, 0, 1], jnp.float32)
    new_state, m = agent.update(state, batch, jax.random.PRNGKey(1))
    critic, value = critic_ensemble((16, 16), 2), ValueNet((16, 16))
    obs, nobs = batch["observations"], batch["next_observations"]
    q_data = np.asarray(critic.apply(state["target_critic"], obs, batch["actions"])).min(0)
    v_old = np.asarray(value.apply(state["value"].params, obs))
    assert float(m["value_loss"]) == pytest.approx(((q_data - v_old) ** 2).mean(), rel=1e-5)
    next_q = np.asarray(critic.apply(state["target_critic"], nobs, batch["next_actions"])).min(0)
    next_v = np.asarray(value.apply(new_state["value"].params, nobs))
    boot = np.where(np.asarray(batch["has_next_action"]) > 0, next_q, next_v)
    target = np.asarray(batch["rewards"]) + 0.9 * (1 - np.asarray(batch["terminals"])) * boot
    q = np.asarray(critic.apply(state["critic"].params, obs, batch["actions"]))
    assert float(m["critic_loss"]) == pytest.approx(((q - target) ** 2).sum(0).mean(), rel=1e-5)
    adv = q_data - np.asarray(value.apply(new_state["value"].params, obs))
    assert float(m["weight"]) == pytest.approx(np.minimum(np.exp(2.0 * adv), 100.0).mean(), rel=1e-5)


# ------------------------------------------------------------------------------------------------
# TD3+BC


def test_td3bc_actor_loss_lambda_normalisation():
    from offbench.algorithms.td3bc import td3bc_actor_loss

    q = jnp.array([2.0, -4.0, 6.0, 8.0])
    pi = jnp.array([[0.5], [0.0], [-0.5], [1.0]])
    a = jnp.array([[0.0], [0.0], [0.5], [0.0]])
    lam = 2.5 / np.abs([2.0, -4.0, 6.0, 8.0]).mean()  # 2.5 / 5
    expected = -lam * np.mean([2.0, -4.0, 6.0, 8.0]) + np.mean([0.25, 0.0, 1.0, 1.0])
    assert float(td3bc_actor_loss(q, pi, a, 2.5)) == pytest.approx(expected, rel=1e-6)
    # lambda is a constant: dL/dq_i = -lambda / n
    grad = jax.grad(lambda x: td3bc_actor_loss(x, pi, a, 2.5))(q)
    assert np.asarray(grad).tolist() == pytest.approx([-lam / 4] * 4, rel=1e-6)


def test_td3bc_delayed_actor_updates():
    algo, cfg = config_of("td3bc", policy_freq=2)
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    s0 = agent.init(jax.random.PRNGKey(0))
    batch = hand_batch()
    update = jax.jit(agent.update)
    s1, m1 = update(s0, batch, jax.random.PRNGKey(1))
    s2, m2 = update(s1, batch, jax.random.PRNGKey(2))

    def same(x, y):
        return all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y)))

    assert same(s0["actor"].params, s1["actor"].params) and same(s0["target_actor"], s1["target_actor"])
    assert not same(s1["actor"].params, s2["actor"].params) and not same(s1["target_actor"], s2["target_actor"])
    assert not same(s0["critic"].params, s1["critic"].params)
    assert (float(m1["actor_updated"]), float(m2["actor_updated"])) == (0.0, 1.0)
    assert int(s2["step"]) == 2
    # the actor loss reported on the actor step is TD3+BC's, evaluated with the updated critic
    actor, critic = DeterministicActor(2, (16, 16)), critic_ensemble((16, 16), 2)
    pi = actor.apply(s1["actor"].params, batch["observations"])
    q = np.asarray(critic.apply(s2["critic"].params, batch["observations"], pi))[0]
    expected = -2.5 / np.abs(q).mean() * q.mean() + ((np.asarray(pi) - np.asarray(batch["actions"])) ** 2).mean()
    assert float(m2["actor_loss"]) == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------------------------------
# CQL


def test_cql_logsumexp_term():
    from offbench.algorithms.cql import cql_logsumexp

    rng = np.random.default_rng(0)
    n, b, d = 3, 4, 2
    q_rand, q_s, q_n = (rng.normal(size=(n, b)) for _ in range(3))
    lp_s, lp_n = (rng.normal(size=(n, b)) - 1 for _ in range(2))
    for temp in (1.0, 0.5):
        out = np.asarray(cql_logsumexp(*(jnp.asarray(x) for x in (q_rand, q_s, lp_s, q_n, lp_n)), d, temp))
        cat = np.concatenate([q_rand - d * np.log(0.5), q_n - lp_n, q_s - lp_s], axis=0)  # (3n, b)
        expected = temp * np.log(np.exp(cat / temp).sum(0))
        assert out.tolist() == pytest.approx(expected.tolist(), rel=1e-5)


def test_cql_update_and_lagrange():
    batch = hand_batch()
    for lagrange in (False, True):
        algo, cfg = config_of("cql", lagrange=lagrange, target_action_gap=-100.0, cql_alpha=2.0)
        agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
        s0 = agent.init(jax.random.PRNGKey(0))
        s1, m = jax.jit(agent.update)(s0, batch, jax.random.PRNGKey(1))
        assert all(np.isfinite(float(v)) for v in m.values())
        # critic loss = TD + cql_alpha * (logsumexp - Q(s,a)) summed over the twin critics
        if not lagrange:
            assert float(m["critic_loss"]) == pytest.approx(
                2 * float(m["td_loss"]) + 2.0 * 2 * float(m["cql_diff"]), rel=1e-4
            )
        # alpha' rises when the gap is exceeded (Lagrange) and stays put otherwise
        moved = float(s1["log_alpha_prime"].params) - float(s0["log_alpha_prime"].params)
        assert (moved > 0) if lagrange else (moved == 0)
        assert float(s1["log_alpha"].params) != float(s0["log_alpha"].params)  # entropy tuning runs


def test_cql_follows_corl_per_suite():
    """One reference, entirely: CORL configs/offline/cql/{antmaze,pen|door|..., hopper|...}/*.yaml."""
    from offbench.data.loaders import Dataset, reward_scale_for

    d = registry.get("cql").default_config
    ant, adr, loco = (resolve(d, "cql", s) for s in ("antmaze", "adroit", "locomotion"))
    assert (ant["lagrange"], ant["target_action_gap"], ant["max_target_backup"], ant["cql_clip_diff_min"]) == (
        True,
        0.8,
        True,
        -200.0,
    )
    assert (ant["cql_alpha"], ant["actor_lr"], ant["alpha_lr"], ant["normalize_obs"]) == (5.0, 1e-4, 1e-4, False)
    assert ant["critic_hidden_dims"] == [256] * 5 and ant["hidden_dims"] == [256] * 3
    assert ant["reward_transform"] == "cql_antmaze"
    one = Dataset(
        np.zeros((2, 1)), np.zeros((2, 1)), np.array([0.0, 1.0]), np.zeros((2, 1)), np.zeros(2), np.array([False, True])
    )
    assert reward_scale_for(one, "cql_antmaze") == (10.0, -5.0)  # 10 r - 5
    assert (adr["cql_alpha"], adr["actor_lr"], adr["normalize_obs"], adr["lagrange"]) == (1.0, 1e-4, True, False)
    assert (loco["cql_alpha"], loco["actor_lr"], loco["normalize_obs"], loco["lagrange"]) == (10.0, 3e-5, True, False)
    assert loco["max_target_backup"] is False and loco["cql_clip_diff_min"] is None
    assert loco["critic_hidden_dims"] is None and loco["log_alpha_prime_init"] == 1.0


def test_cql_max_target_backup_and_diff_clip():
    """CORL _q_loss: the target takes the max over N sampled a' of min_j Q_target,j(s', a'); the penalty's
    per-sample difference is clipped to [cql_clip_diff_min, cql_clip_diff_max] before the mean."""
    from offbench.training.kit.networks import ScaledTanhGaussianActor, tanh_gaussian_sample

    batch = hand_batch()
    algo, cfg = config_of("cql", max_target_backup=True, cql_n_actions=4, critic_hidden_dims=[8, 8, 8])
    agent = algo.make(cfg, registry.Spec(3, 2, total_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    # CORL's gain-1e-2 output layer starts Q near 0; scaled weights give the sampled a' distinct values
    state["target_critic"] = jax.tree_util.tree_map(lambda x: 3.0 * x, state["target_critic"])
    key = jax.random.PRNGKey(1)
    _, m = agent.update(state, batch, key)
    k_next = jax.random.split(key, 5)[1]
    nobs = batch["next_observations"]
    mean, log_std = ScaledTanhGaussianActor(2, (16, 16)).apply(state["actor"].params, nobs)
    a, _ = tanh_gaussian_sample(k_next, *(jnp.broadcast_to(x, (4,) + x.shape) for x in (mean, log_std)))
    critic = critic_ensemble((8, 8, 8), 2)
    next_q = np.asarray(critic.apply(state["target_critic"], jnp.broadcast_to(nobs, (4,) + nobs.shape), a)).min(0)
    target = np.asarray(batch["rewards"]) + 0.99 * (1 - np.asarray(batch["terminals"])) * next_q.max(0)
    q = np.asarray(critic.apply(state["critic"].params, batch["observations"], batch["actions"]))
    assert float(m["td_loss"]) == pytest.approx(((q - target) ** 2).mean(), rel=1e-4)
    # the single-sample target differs (the max over 4 is larger)
    assert float(
        _cql_update(state, batch, key, cql_n_actions=4, critic_hidden_dims=[8, 8, 8])["td_loss"]
    ) != pytest.approx(float(m["td_loss"]), rel=1e-3)
    # clipping: a lower bound above every difference makes the mean difference that bound
    state = _cql_agent()[0].init(jax.random.PRNGKey(0))
    assert float(_cql_update(state, batch, key, cql_clip_diff_min=1e4)["cql_diff"]) == pytest.approx(1e4)
    assert float(_cql_update(state, batch, key)["cql_diff"]) < 1e3


def _cql_agent(**overrides):
    algo, cfg = config_of("cql", **overrides)
    return algo.make(cfg, registry.Spec(3, 2, total_steps=10)), cfg


def _cql_update(state, batch, key, **overrides):
    return _cql_agent(**overrides)[0].update(state, batch, key)[1]


# ------------------------------------------------------------------------------------------------
# End to end: `offbench run` on a tiny D4RL-format hdf5, 2 seeds (vmapped) under jit


@pytest.fixture(scope="module")
def tiny_hopper(tmp_path_factory):
    import gymnasium as gym

    path = tmp_path_factory.mktemp("data") / "hopper-medium-v2.hdf5"
    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(0)
    cols = {k: [] for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
    o, _ = env.reset(seed=0)
    t = 0
    for i in range(300):
        a = np.clip(rng.normal(0, 0.5, 3), -1, 1).astype(np.float32)
        o2, r, term, trunc, _ = env.step(a)
        t += 1
        trunc = trunc or t >= 30
        for k, v in zip(cols, (o, a, r, term, trunc and not term)):
            cols[k].append(v)
        o = o2
        if term or trunc:
            o, _ = env.reset(seed=i + 1)
            t = 0
    env.close()
    with h5py.File(path, "w") as f:
        for k, v in cols.items():
            f[k] = np.asarray(v)
    return path


@pytest.mark.parametrize("name", BASELINES)
def test_offbench_run_two_seeds(name, tiny_hopper, tmp_path):
    from offbench.cli import main

    results = tmp_path / "results"
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--algo",
            name,
            "--suite",
            "locomotion",
            "--dataset",
            str(tiny_hopper),
            "--steps",
            "3",
            "--seeds",
            "2",
            "--eval-every",
            "3",
            "--eval-episodes",
            "1",
            "--set",
            "hidden_dims=[16, 16]",
            "--set",
            "batch_size=32",
            "--set",
            "log_every=3",
            "--results",
            str(results),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    run = results / "locomotion" / "hopper-medium-v2" / name  # (records may sit in a variant folder below)
    recs = [json.loads(next(run.rglob(f"seed_{s}.json")).read_text()) for s in (0, 1)]
    for rec in recs:
        assert rec["status"] == "finished" and rec["algo"] == name and rec["step"] == 3
        assert [c["step"] for c in rec["curve"]] == [3]
        assert math.isfinite(rec["final_score"]) and not rec["diverged"]
        assert rec["metrics"] and all(math.isfinite(v) for v in rec["metrics"].values())
    # two seeds trained in one vmapped program, with different results
    assert recs[0]["metrics"] != recs[1]["metrics"]
    assert recs[0]["data"]["obs_normalized"] is (name in ("td3bc", "awac", "cql"))  # TD3+BC; CORL's AWAC / CQL
