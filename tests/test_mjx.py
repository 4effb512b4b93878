"""The MJX evaluation backend against the host (MuJoCo C) backend: same policy, same start states.

Small on purpose (one compile of Hopper on the CPU, short episodes); the 100-episode, full-length check of
every task is ``benchmarks/eval_fidelity.py``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

from offbench.envs import EnvFactory, ObsAdapter, make_env  # noqa: E402
from offbench.errors import OffbenchError  # noqa: E402
from offbench.evaluation.episodes import eval_reset_seed  # noqa: E402
from offbench.evaluation.evaluator import Evaluator, make_act_fn  # noqa: E402
from offbench.evaluation.mjx import MjxEvaluator, physics_of, start_states  # noqa: E402


def test_physics_is_read_from_the_gymnasium_environment():
    hopper = physics_of(make_env("Hopper-v5"))
    assert (hopper.frame_skip, hopper.dt, hopper.horizon) == (4, 0.008, 1000)
    assert hopper.z_range == (0.7, float("inf")) and hopper.angle_range == (-0.2, 0.2) and hopper.clip_qvel == 10
    cheetah = physics_of(make_env("HalfCheetah-v5"))
    assert cheetah.ctrl_weight == 0.1 and cheetah.z_range is None and cheetah.healthy_reward == 0.0
    with pytest.raises(OffbenchError, match="does not support"):
        physics_of(make_env("AntMaze_UMaze-v4"))


def test_mjx_starts_where_the_host_starts():
    qpos, qvel = start_states(make_env("Hopper-v5"), [3, 4], 2)
    obs, _ = make_env("Hopper-v5").reset(seed=eval_reset_seed(4, 1))  # the host backends' episode 1 of seed 4
    np.testing.assert_allclose(np.concatenate([qpos[1, 1, 1:], qvel[1, 1]]), obs, rtol=1e-6, atol=1e-7)
    assert not np.allclose(qpos[0, 0], qpos[1, 0])


def test_mjx_returns_match_the_host_on_hopper():
    seeds, episodes, horizon = [0, 1], 4, 60
    w = jax.random.normal(jax.random.PRNGKey(1), (len(seeds), 11, 3)) * 0.3

    def act(state, obs, key, deterministic=True):
        return jnp.tanh(obs @ state)

    host = Evaluator(EnvFactory("Hopper-v5", {}, horizon), ObsAdapter(), make_act_fn(act), seeds, episodes, episodes)
    a = host(w)
    mjx = MjxEvaluator("Hopper-v5", ObsAdapter(), act, seeds, episodes, horizon=horizon)
    b = mjx(w)
    assert mjx.backend == "mjx"
    # both episode endings happen (falls before the horizon in some), and MJX ends them at the same steps
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(b.returns, a.returns, rtol=0.02)
    assert abs(b.returns.mean() - a.returns.mean()) <= 0.02 * abs(a.returns.mean())
    assert len(set(a.returns.ravel().round(4))) == a.returns.size
