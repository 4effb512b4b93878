"""IQL's pieces against independent computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from offbench import registry
from offbench.training.kit.losses import awr_weights, expectile_loss
from offbench.training.kit.networks import gaussian_log_prob


def expectile_numeric(values, tau):
    """The tau-expectile of ``values`` by direct numerical minimisation of the asymmetric square loss."""
    values = np.asarray(values, float)

    def loss(m):
        d = values - m
        return np.sum(np.where(d > 0, tau, 1 - tau) * d**2)

    return minimize_scalar(loss, bounds=(values.min(), values.max()), method="bounded", options={"xatol": 1e-10}).x


def fit_expectile(values, tau, steps=3000, lr=0.05):
    """Gradient descent on our expectile loss (what IQL's value update does)."""
    values = jnp.asarray(values, jnp.float32)
    grad = jax.grad(lambda m: expectile_loss(values - m, tau).mean())
    return float(jax.jit(lambda: jax.lax.fori_loop(0, steps, lambda _, m: m - lr * grad(m), jnp.float32(0.0)))())


@pytest.mark.parametrize("tau", [0.5, 0.7, 0.9, 0.99])
def test_expectile_loss_matches_numerical_solution(tau):
    vals = [3.0, 5.0, 8.0]
    assert fit_expectile(vals, tau) == pytest.approx(expectile_numeric(vals, tau), abs=1e-3)


def test_expectile_half_is_mean_and_higher_tau_moves_to_max():
    vals = [3.0, 5.0, 8.0]
    assert fit_expectile(vals, 0.5) == pytest.approx(16.0 / 3.0, abs=1e-3)
    ests = [fit_expectile(vals, t) for t in (0.5, 0.7, 0.9, 0.99)]
    assert all(a < b for a, b in zip(ests, ests[1:]))
    assert 7.5 < ests[-1] < 8.0


def test_awr_weights_and_clipping():
    adv = jnp.array([-2.0, 0.0, 0.1, 1.0, 10.0])
    w = np.asarray(awr_weights(adv, 3.0, 100.0))
    expected = np.minimum(np.exp(3.0 * np.array([-2.0, 0.0, 0.1, 1.0, 10.0])), 100.0)
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert w[-1] == 100.0 and w[-2] == pytest.approx(np.exp(3.0), rel=1e-6)


def _iql(**overrides):
    algo = registry.get("iql")
    cfg = {**algo.default_config, "hidden_dims": [16, 16], **overrides}
    spec = registry.Spec(obs_dim=4, act_dim=2, total_steps=100)
    return algo.make(cfg, spec), cfg


def _batch(seed=0, n=32, terminals=None):
    rng = np.random.default_rng(seed)
    b = {
        "observations": rng.normal(size=(n, 4)),
        "actions": rng.uniform(-0.9, 0.9, (n, 2)),
        "rewards": rng.normal(size=n),
        "next_observations": rng.normal(size=(n, 4)),
        "terminals": (rng.uniform(size=n) < 0.3) if terminals is None else terminals,
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in b.items()}


def test_q_target_uses_value_of_next_state_and_no_policy_action():
    agent, cfg = _iql(value_lr=0.0)  # V unchanged by the step, so the target is computable here
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch()
    _, metrics = agent.update(state, batch, jax.random.PRNGKey(1))

    from offbench.training.kit.networks import ValueNet, critic_ensemble

    v_next = ValueNet((16, 16)).apply(state["value"].params, batch["next_observations"])
    target = batch["rewards"] + cfg["discount"] * (1 - batch["terminals"]) * v_next
    q = critic_ensemble((16, 16)).apply(state["critic"].params, batch["observations"], batch["actions"])
    expected = float(((q - target) ** 2).sum(0).mean())
    assert float(metrics["critic_loss"]) == pytest.approx(expected, rel=1e-5)

    # the critic update does not depend on the policy at all
    other = agent.init(jax.random.PRNGKey(7))
    swapped = dict(state, actor=other["actor"])
    s1, _ = agent.update(state, batch, jax.random.PRNGKey(1))
    s2, _ = agent.update(swapped, batch, jax.random.PRNGKey(1))
    for a, b in zip(jax.tree_util.tree_leaves(s1["critic"].params), jax.tree_util.tree_leaves(s2["critic"].params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_terminal_transitions_do_not_bootstrap():
    agent, cfg = _iql(value_lr=0.0)
    state = agent.init(jax.random.PRNGKey(0))
    b1 = _batch(terminals=np.ones(32))
    b2 = dict(b1, next_observations=b1["next_observations"] + 100.0)  # V(s') changes a lot
    _, m1 = agent.update(state, b1, jax.random.PRNGKey(1))
    _, m2 = agent.update(state, b2, jax.random.PRNGKey(1))
    assert float(m1["critic_loss"]) == pytest.approx(float(m2["critic_loss"]), rel=1e-6)


def test_actor_loss_is_weighted_log_likelihood_of_dataset_actions():
    agent, cfg = _iql()
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch()
    new_state, metrics = agent.update(state, batch, jax.random.PRNGKey(1))
    from offbench.training.kit.networks import GaussianActor, ValueNet, critic_ensemble

    tq = critic_ensemble((16, 16)).apply(state["target_critic"], batch["observations"], batch["actions"]).min(0)
    v = ValueNet((16, 16)).apply(new_state["value"].params, batch["observations"])
    w = jnp.minimum(jnp.exp(cfg["beta"] * (tq - v)), 100.0)
    mean, log_std = GaussianActor(2, (16, 16)).apply(state["actor"].params, batch["observations"])
    expected = -float((w * gaussian_log_prob(batch["actions"], mean, log_std)).mean())
    assert float(metrics["actor_loss"]) == pytest.approx(expected, rel=1e-4)


def test_policy_is_gaussian_with_tanh_mean_not_squashed():
    agent, _ = _iql()
    state = agent.init(jax.random.PRNGKey(0))
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(64, 4)) * 50, jnp.float32)
    det = agent.act(state, obs, jax.random.PRNGKey(0), True)
    assert np.all(np.abs(np.asarray(det)) <= 1.0)
    # the log-std is one parameter vector, not a function of the state
    log_std = state["actor"].params["params"]["log_std"]
    assert log_std.shape == (2,)
    # log-likelihood of an action at the mean is the plain Gaussian density (no tanh Jacobian)
    from offbench.training.kit.networks import GaussianActor

    mean, ls = GaussianActor(2, (16, 16)).apply(state["actor"].params, obs)
    lp = gaussian_log_prob(mean, mean, ls)
    np.testing.assert_allclose(np.asarray(lp), -0.5 * np.log(2 * np.pi) * 2 - np.asarray(ls).sum(-1), rtol=1e-5)


def test_target_critic_polyak():
    agent, cfg = _iql()
    state = agent.init(jax.random.PRNGKey(0))
    new, _ = agent.update(state, _batch(), jax.random.PRNGKey(1))
    for t0, c1, t1 in zip(
        jax.tree_util.tree_leaves(state["target_critic"]),
        jax.tree_util.tree_leaves(new["critic"].params),
        jax.tree_util.tree_leaves(new["target_critic"]),
    ):
        np.testing.assert_allclose(
            np.asarray(t1), 0.995 * np.asarray(t0) + 0.005 * np.asarray(c1), rtol=1e-5, atol=1e-7
        )


def test_suite_hyperparameters_from_the_paper():
    from offbench.config import resolve

    d = registry.get("iql").default_config
    loco = resolve(d, "iql", "locomotion")
    ant = resolve(d, "iql", "antmaze")
    kit = resolve(d, "iql", "kitchen")
    adr = resolve(d, "iql", "adroit")
    assert (loco["expectile"], loco["beta"], loco["dropout_rate"]) == (0.7, 3.0, 0.0)
    assert (ant["expectile"], ant["beta"]) == (0.9, 10.0)
    assert (kit["expectile"], kit["beta"], kit["dropout_rate"]) == (0.7, 0.5, 0.1)
    assert (adr["expectile"], adr["beta"], adr["dropout_rate"]) == (0.7, 0.5, 0.1)
    assert loco["actor_lr"] == 3e-4 and loco["batch_size"] == 256 and loco["tau"] == 0.005
