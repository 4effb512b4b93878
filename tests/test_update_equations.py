"""One update of every algorithm, from hand-set weights and a fixed batch, against the reference's equations
written out here (issue 28: "a test per algorithm that pins one update ... to values derived from the reference's
equations").

Each reference below is an independent transcription of the cited paper / code into plain jax.numpy, with its own
forward passes (read from the parameter arrays by layer name) and its own losses; none of the algorithm's losses,
networks or helpers is called. The algorithm's optimisers are swapped for plain SGD (lr ``LR``) in the test, so
``(old - new) / LR`` is the gradient the algorithm applied and is compared with ``jax.grad`` of the reference loss;
the reported losses are compared with the reference values. Where an algorithm samples, the test draws the same
random numbers from the same key (the algorithm's key plumbing is reproduced, nothing else).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from update_reference import (
    ACT,
    LR,
    OBS,
    B,
    assert_polyak,
    assert_sgd_step,
    close,
    fixed_batch,
    gaussian,
    hand_set,
    head,
    make_agent,
    normal_logpdf,
    params,
    twin_q,
    value,
    weighted_nll,
)

from offbench import registry

# ------------------------------------------------------------------------------------------------
# IQL -- Kostrikov et al. 2022, eqs. 5-7; update order of ikostrikov/implicit_q_learning learner.py
# (value, then actor with the new V, then critic with the new V, then the target)


def test_iql_update_equations():
    agent, cfg = make_agent("iql", expectile=0.7, beta=3.0, discount=0.9, tau=0.1)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    b = fixed_batch()
    s1, m = agent.update(s0, b, jax.random.PRNGKey(1))
    obs, act, nobs = b["observations"], b["actions"], b["next_observations"]

    tq = twin_q(s0["target_critic"], obs, act).min(0)

    def value_loss(p):  # eq. 5: L_2^tau(u) = |tau - 1(u < 0)| u^2, u = Q_target - V
        u = tq - value(p, obs)
        return (jnp.abs(0.7 - (u < 0)) * u**2).mean()

    v_loss, g_v = jax.value_and_grad(value_loss)(params(s0, "value"))
    v_new = jax.tree_util.tree_map(lambda p, g: p - LR * g, params(s0, "value"), g_v)
    w = jnp.minimum(jnp.exp(3.0 * (tq - value(v_new, obs))), 100.0)  # eq. 7, clipped at 100 (code)
    a_loss, g_a = jax.value_and_grad(lambda p: weighted_nll(p, obs, act, w))(params(s0, "actor"))
    y = b["rewards"] + 0.9 * (1 - b["terminals"]) * value(v_new, nobs)  # eq. 6
    q_loss, g_q = jax.value_and_grad(lambda p: ((twin_q(p, obs, act) - y) ** 2).mean(-1).sum())(params(s0, "critic"))

    close(m["value_loss"], v_loss), close(m["actor_loss"], a_loss), close(m["critic_loss"], q_loss)
    assert_sgd_step(params(s0, "value"), params(s1, "value"), g_v)
    assert_sgd_step(params(s0, "actor"), params(s1, "actor"), g_a)
    assert_sgd_step(params(s0, "critic"), params(s1, "critic"), g_q)
    assert_polyak(s0["target_critic"], params(s1, "critic"), s1["target_critic"], 0.1)


# ------------------------------------------------------------------------------------------------
# BC and 10%BC -- maximum likelihood of the dataset actions under IQL's Gaussian (IQL paper's BC);
# 10%BC keeps Decision Transformer's best episodes (kzl/decision-transformer gym/experiment.py pct_traj)


def test_bc_update_equations():
    agent, _ = make_agent("bc", cosine_decay=False)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    b = fixed_batch()
    s1, m = agent.update(s0, b, jax.random.PRNGKey(1))
    loss, g = jax.value_and_grad(lambda p: weighted_nll(p, b["observations"], b["actions"], 1.0))(params(s0, "actor"))
    close(m["actor_loss"], loss)
    assert_sgd_step(params(s0, "actor"), params(s1, "actor"), g)


def dt_percent_bc_rows(returns, lengths, pct):
    """DT gym/experiment.py: sort trajectories by return, keep from the best while the kept timesteps stay
    within pct * all timesteps (the best one always)."""
    order = np.argsort(returns)
    budget = max(int(pct * sum(lengths)), 1)
    kept, total = [order[-1]], lengths[order[-1]]
    for i in order[-2::-1]:
        if total + lengths[i] > budget:
            break
        kept.append(i)
        total += lengths[i]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return sorted(int(r) for i in kept for r in range(starts[i], starts[i] + lengths[i]))


def test_filtered_bc_update_equations():
    algo = registry.get("filtered_bc")
    lengths, returns = [5, 2, 3, 6, 4], [1.0, 9.0, 7.0, 3.0, 8.0]
    rewards = np.concatenate([np.full(n, r / n) for n, r in zip(lengths, returns)])
    ends = np.concatenate([np.arange(n) == n - 1 for n in lengths])
    n = len(rewards)
    rng = np.random.default_rng(3)
    data = {
        "observations": rng.normal(size=(n, OBS)).astype(np.float32),
        "actions": rng.uniform(-0.9, 0.9, (n, ACT)).astype(np.float32),
        "rewards": rewards,
        "episode_ends": ends,
    }
    agent, cfg = make_agent("filtered_bc", cosine_decay=False, fraction=0.3)
    kept = algo.preprocess(data, cfg)
    rows = dt_percent_bc_rows(np.array(returns), lengths, 0.3)  # budget 6: episode 1 (2 steps), then 4 (4 steps)
    assert rows == [5, 6, 16, 17, 18, 19]
    np.testing.assert_array_equal(kept["actions"], data["actions"][rows])
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    obs, act = jnp.asarray(kept["observations"]), jnp.asarray(kept["actions"])
    s1, m = agent.update(s0, {"observations": obs, "actions": act}, jax.random.PRNGKey(1))
    loss, g = jax.value_and_grad(lambda p: weighted_nll(p, obs, act, 1.0))(params(s0, "actor"))
    close(m["actor_loss"], loss)
    assert_sgd_step(params(s0, "actor"), params(s1, "actor"), g)


# ------------------------------------------------------------------------------------------------
# AWR -- Peng et al. 2019, eqs. 8-9 (value regression onto the return, exp(A / temperature) weights clipped at
# 20); advantage standardised with ADV_EPS 1e-5 (xbpeng/awr learning/awr_agent.py _calc_adv, _calc_adv_weights)


@pytest.mark.parametrize("fixed_std", [None, 0.2])
def test_awr_update_equations(fixed_std):
    agent, _ = make_agent("awr", fixed_std=fixed_std)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    b = fixed_batch()
    rng = np.random.default_rng(4)
    b["returns"] = jnp.asarray(rng.normal(size=B), jnp.float32)
    b["bootstrap_obs"] = jnp.asarray(rng.normal(size=(B, OBS)), jnp.float32)
    b["bootstrap_discount"] = jnp.asarray([0.5, 0.0, 0.9, 0.0, 0.3, 0.0], jnp.float32)
    s1, m = agent.update(s0, b, jax.random.PRNGKey(1))
    obs, act = b["observations"], b["actions"]
    v0 = params(s0, "value")
    y = b["returns"] + b["bootstrap_discount"] * value(v0, b["bootstrap_obs"])  # TD(lambda = 1) with V(s_T)
    v_loss, g_v = jax.value_and_grad(lambda p: ((y - value(p, obs)) ** 2).mean())(v0)
    adv = y - value(v0, obs)
    adv = (adv - adv.mean()) / (jnp.sqrt(((adv - adv.mean()) ** 2).mean()) + 1e-5)
    w = jnp.minimum(jnp.exp(adv / 1.0), 20.0)

    def actor_loss(p):
        mean, log_std = gaussian(p, obs)
        if fixed_std is not None:  # AWR: log-std the constant log(0.2), not trained
            log_std = jnp.full_like(mean, math.log(fixed_std))
        return -(w * normal_logpdf(act, mean, jnp.broadcast_to(log_std, mean.shape))).mean()

    a_loss, g_a = jax.value_and_grad(actor_loss)(params(s0, "actor"))
    close(m["value_loss"], v_loss), close(m["actor_loss"], a_loss), close(m["weight"], w.mean())
    assert_sgd_step(v0, params(s1, "value"), g_v)
    assert_sgd_step(params(s0, "actor"), params(s1, "actor"), g_a)
    if fixed_std is not None:
        np.testing.assert_array_equal(
            params(s1, "actor")["params"]["log_std"], params(s0, "actor")["params"]["log_std"]
        )


# ------------------------------------------------------------------------------------------------
# AWAC -- CORL algorithms/offline/awac.py (AdvantageWeightedActorCritic._critic_loss, _actor_loss, update):
# critic first (next action a rsample of pi, clamped to [-1, 1]), then the actor with the *updated* critics


def test_awac_update_equations():
    agent, _ = make_agent("awac", discount=0.9, tau=0.1, awac_lambda=0.5)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    b = fixed_batch()
    key = jax.random.PRNGKey(1)
    s1, m = agent.update(s0, b, key)
    obs, act, nobs = b["observations"], b["actions"], b["next_observations"]
    k_next, k_pi = jax.random.split(key)  # the same draws as the algorithm
    a0 = params(s0, "actor")

    def rsample(s, k, shape):
        mean, log_std = gaussian(a0, s, tanh_mean=False, lo=-20.0)
        return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(k, shape), -1.0, 1.0)

    y = b["rewards"] + 0.9 * (1 - b["terminals"]) * twin_q(
        s0["target_critic"], nobs, rsample(nobs, k_next, (B, ACT))
    ).min(0)
    q_loss, g_q = jax.value_and_grad(lambda p: ((twin_q(p, obs, act) - y) ** 2).mean(-1).sum())(params(s0, "critic"))
    c1 = jax.tree_util.tree_map(lambda p, g: p - LR * g, params(s0, "critic"), g_q)
    pi = rsample(obs, k_pi, (1, B, ACT))[0]
    adv = twin_q(c1, obs, act).min(0) - twin_q(c1, obs, pi).min(0)
    w = jnp.minimum(jnp.exp(adv / 0.5), 100.0)
    a_loss, g_a = jax.value_and_grad(lambda p: weighted_nll(p, obs, act, w, tanh_mean=False, lo=-20.0))(a0)
    close(m["critic_loss"], q_loss), close(m["actor_loss"], a_loss), close(m["adv"], adv.mean())
    assert_sgd_step(params(s0, "critic"), params(s1, "critic"), g_q)
    assert_sgd_step(a0, params(s1, "actor"), g_a)
    assert_polyak(s0["target_critic"], params(s1, "critic"), s1["target_critic"], 0.1)
    # CORL Actor.act in eval mode: the policy's mean, not clipped
    big = {
        "params": {
            **a0["params"],
            "Dense_0": {"kernel": a0["params"]["Dense_0"]["kernel"] * 50, "bias": 0 * a0["params"]["Dense_0"]["bias"]},
        }
    }
    s_big = {**s1, "actor": s1["actor"].replace(params=big)}
    a_eval = agent.act(s_big, obs, jax.random.PRNGKey(2), True)
    np.testing.assert_allclose(a_eval, gaussian(big, obs, tanh_mean=False)[0], rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(a_eval).max()) > 1.0


# ------------------------------------------------------------------------------------------------
# One-step RL -- Brandfonbrener et al. 2021 (exp-weighted one step over a SARSA evaluation of the behaviour
# policy), in the construction docs/algorithms.md states: V(s) regressed on Q_target(s, a_D); the SARSA target
# uses the data's next action, V(s') where the episode has none; weights exp(beta * A) clipped at 100


def test_onestep_update_equations():
    agent, _ = make_agent("onestep", discount=0.9, tau=0.1, beta=2.0, cosine_decay=False)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    b = fixed_batch()
    rng = np.random.default_rng(5)
    b["next_actions"] = jnp.asarray(rng.uniform(-0.9, 0.9, (B, ACT)), jnp.float32)
    b["has_next_action"] = jnp.asarray([1, 0, 1, 1, 0, 1], jnp.float32)
    s1, m = agent.update(s0, b, jax.random.PRNGKey(1))
    obs, act, nobs = b["observations"], b["actions"], b["next_observations"]
    q_data = twin_q(s0["target_critic"], obs, act).min(0)
    v_loss, g_v = jax.value_and_grad(lambda p: ((q_data - value(p, obs)) ** 2).mean())(params(s0, "value"))
    v1 = jax.tree_util.tree_map(lambda p, g: p - LR * g, params(s0, "value"), g_v)
    boot = jnp.where(
        b["has_next_action"] > 0, twin_q(s0["target_critic"], nobs, b["next_actions"]).min(0), value(v1, nobs)
    )
    y = b["rewards"] + 0.9 * (1 - b["terminals"]) * boot
    q_loss, g_q = jax.value_and_grad(lambda p: ((twin_q(p, obs, act) - y) ** 2).mean(-1).sum())(params(s0, "critic"))
    w = jnp.minimum(jnp.exp(2.0 * (q_data - value(v1, obs))), 100.0)
    a_loss, g_a = jax.value_and_grad(lambda p: weighted_nll(p, obs, act, w))(params(s0, "actor"))
    close(m["value_loss"], v_loss), close(m["critic_loss"], q_loss), close(m["actor_loss"], a_loss)
    assert_sgd_step(params(s0, "value"), params(s1, "value"), g_v)
    assert_sgd_step(params(s0, "critic"), params(s1, "critic"), g_q)
    assert_sgd_step(params(s0, "actor"), params(s1, "actor"), g_a)
    assert_polyak(s0["target_critic"], params(s1, "critic"), s1["target_critic"], 0.1)


# ------------------------------------------------------------------------------------------------
# TD3+BC -- sfujim/TD3_BC TD3_BC.py train(): target policy smoothing, twin-critic MSE every iteration; on every
# policy_freq-th iteration the actor loss -lambda * mean Q1(s, pi(s)) + MSE(pi(s), a), lambda = alpha / mean|Q1|
# (detached), then both targets by Polyak. pi(s) = tanh(l3(...)) (max_action 1).


def test_td3bc_update_equations():
    agent, _ = make_agent("td3bc", discount=0.9, tau=0.1, alpha=2.5, policy_freq=2)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    b = fixed_batch()
    obs, act, nobs = b["observations"], b["actions"], b["next_observations"]

    def pi(p, s):
        return jnp.tanh(head(p, s))

    def critic_step(s, key):
        eps = jnp.clip(0.2 * jax.random.normal(key, (B, ACT)), -0.5, 0.5)  # the algorithm's draw
        a2 = jnp.clip(pi(s["target_actor"], nobs) + eps, -1.0, 1.0)
        y = b["rewards"] + 0.9 * (1 - b["terminals"]) * twin_q(s["target_critic"], nobs, a2).min(0)
        return jax.value_and_grad(lambda p: ((twin_q(p, obs, act) - y) ** 2).mean(-1).sum())(params(s, "critic"))

    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    s1, m1 = agent.update(s0, b, k1)  # iteration 1: critic only
    q_loss1, g_q1 = critic_step(s0, k1)
    close(m1["critic_loss"], q_loss1)
    assert_sgd_step(params(s0, "critic"), params(s1, "critic"), g_q1)
    for k in ("actor", "target_actor", "target_critic"):
        for x, y in zip(jax.tree_util.tree_leaves(params(s0, k)), jax.tree_util.tree_leaves(params(s1, k))):
            np.testing.assert_array_equal(x, y)

    s2, m2 = agent.update(s1, b, k2)  # iteration 2: critic, then the actor with the updated critic, then targets
    q_loss2, g_q2 = critic_step(s1, k2)
    c2 = jax.tree_util.tree_map(lambda p, g: p - LR * g, params(s1, "critic"), g_q2)

    def actor_loss(p):
        a = pi(p, obs)
        q1 = twin_q(c2, obs, a)[0]
        lam = 2.5 / jax.lax.stop_gradient(jnp.abs(q1).mean())
        return -lam * q1.mean() + ((a - act) ** 2).mean()

    a_loss, g_a = jax.value_and_grad(actor_loss)(params(s1, "actor"))
    close(m2["critic_loss"], q_loss2), close(m2["actor_loss"], a_loss)
    assert_sgd_step(params(s1, "critic"), params(s2, "critic"), g_q2)
    assert_sgd_step(params(s1, "actor"), params(s2, "actor"), g_a)
    assert_polyak(s1["target_critic"], params(s2, "critic"), s2["target_critic"], 0.1)
    assert_polyak(s1["target_actor"], params(s2, "actor"), s2["target_actor"], 0.1)


# ------------------------------------------------------------------------------------------------
# CQL -- CORL algorithms/offline/cql.py ContinuousCQL.train / _policy_loss / _q_loss and TanhGaussianPolicy:
# log_std = clip(m * raw + o, -20, 2) with learnable m, o; a = tanh(u); log pi(a) = log N(u) - sum log(1 - tanh^2 u);
# alpha loss -log_alpha * (log pi + target_entropy); policy loss alpha * log pi - min Q(s, a~) with the old critics;
# Q loss: MSE to r + gamma (1 - d) min Q_target(s', a'), + cql_alpha * mean(temp * logsumexp(...) / temp - Q(s, a))
# over 10 uniform (- log 0.5^|A|), 10 pi(.|s') and 10 pi(.|s) actions (importance weights), all with the old actor


def cql_policy(p, s):
    out = head(p, s)
    mean, raw = out[..., :ACT], out[..., ACT:]
    pp = p["params"]
    return mean, jnp.clip(pp["log_std_multiplier"] * raw + pp["log_std_offset"], -20.0, 2.0)


def cql_sample(p, s, eps):
    mean, log_std = cql_policy(p, s)
    u = mean + jnp.exp(log_std) * eps
    log_det = jnp.sum(math.log(4.0) - 2.0 * jnp.logaddexp(u, -u), -1)  # log(1 - tanh(u)^2) = log sech^2 u
    return jnp.tanh(u), normal_logpdf(u, mean, log_std) - log_det


def test_cql_update_equations():
    n = 3
    agent, _ = make_agent("cql", discount=0.9, tau=0.1, cql_alpha=2.0, cql_n_actions=n)
    s0 = hand_set(agent.init(jax.random.PRNGKey(0)))
    s0["actor"] = s0["actor"].replace(
        params={"params": {**s0["actor"].params["params"], "log_std_multiplier": 0.8, "log_std_offset": -0.7}}
    )
    s0["log_alpha"] = s0["log_alpha"].replace(params=jnp.asarray(-0.3))
    b = fixed_batch()
    key = jax.random.PRNGKey(1)
    s1, m = agent.update(s0, b, key)
    obs, act, nobs = b["observations"], b["actions"], b["next_observations"]
    k_pi, k_next, k_rand, k_cs, k_cn = jax.random.split(key, 5)  # the algorithm's draws
    a0, c0, log_alpha = params(s0, "actor"), params(s0, "critic"), params(s0, "log_alpha")
    alpha = jnp.exp(log_alpha)
    eps_pi = jax.random.normal(k_pi, (B, ACT))

    def policy_loss(p):
        a_new, logp = cql_sample(p, obs, eps_pi)
        return (alpha * logp - twin_q(c0, obs, a_new).min(0)).mean(), logp

    (p_loss, logp), g_a = jax.value_and_grad(policy_loss, has_aux=True)(a0)
    al_loss, g_alpha = jax.value_and_grad(lambda la: -(la * (logp + (-ACT))).mean())(log_alpha)

    a_next, _ = cql_sample(a0, nobs, jax.random.normal(k_next, (B, ACT)))
    y = b["rewards"] + 0.9 * (1 - b["terminals"]) * twin_q(s0["target_critic"], nobs, a_next).min(0)
    rand = jax.random.uniform(k_rand, (n, B, ACT), minval=-1.0, maxval=1.0)
    cur, lp_cur = cql_sample(a0, jnp.broadcast_to(obs, (n, B, OBS)), jax.random.normal(k_cs, (n, B, ACT)))
    nxt, lp_nxt = cql_sample(a0, jnp.broadcast_to(nobs, (n, B, OBS)), jax.random.normal(k_cn, (n, B, ACT)))

    def q_loss(p):
        q = twin_q(p, obs, act)
        cat = jnp.concatenate(
            [twin_q(p, obs, rand) - ACT * math.log(0.5), twin_q(p, obs, nxt) - lp_nxt, twin_q(p, obs, cur) - lp_cur], 1
        )  # (2, 3n, B)
        ood = jnp.log(jnp.exp(cat).sum(1))  # cql_temp 1
        return (((q - y) ** 2).mean(-1) + 2.0 * (ood - q).mean(-1)).sum()

    c_loss, g_q = jax.value_and_grad(q_loss)(c0)
    close(m["actor_loss"], p_loss), close(m["alpha_loss"], al_loss), close(m["critic_loss"], c_loss)
    assert_sgd_step(a0, params(s1, "actor"), g_a)  # includes m and o: CORL trains them with the policy
    assert float(jnp.abs(g_a["params"]["log_std_offset"])) > 1e-4
    assert_sgd_step(log_alpha, params(s1, "log_alpha"), g_alpha)
    assert_sgd_step(c0, params(s1, "critic"), g_q)
    assert_polyak(s0["target_critic"], params(s1, "critic"), s1["target_critic"], 0.1)
    # the deterministic action: tanh(mean) (ReparameterizedTanhGaussian, deterministic=True)
    np.testing.assert_allclose(
        agent.act(s1, obs, key, True), jnp.tanh(cql_policy(params(s1, "actor"), obs)[0]), rtol=1e-5
    )
