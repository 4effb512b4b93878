"""The MJX evaluation backend against the host (MuJoCo C) backend: same policy, same start states.

Small on purpose (one compile of Hopper and one of AntMaze on the CPU, short episodes); the 100-episode,
full-length check of every task is ``benchmarks/eval_fidelity.py``."""

import os

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

from offbench.data.suites import get_suite  # noqa: E402
from offbench.data.tasks import ANTMAZE_GOAL_RADIUS  # noqa: E402
from offbench.envs import EnvFactory, ObsAdapter, make_env  # noqa: E402
from offbench.errors import OffbenchError  # noqa: E402
from offbench.evaluation import mjx_tasks  # noqa: E402
from offbench.evaluation.episodes import eval_reset_seed  # noqa: E402
from offbench.evaluation.evaluator import Evaluator, choose_backend, make_act_fn  # noqa: E402
from offbench.evaluation.mjx import MjxEvaluator, physics_of, start_states  # noqa: E402


def test_physics_is_read_from_the_gymnasium_environment():
    hopper = physics_of(make_env("Hopper-v5"))
    assert (hopper.frame_skip, hopper.dt, hopper.horizon) == (4, 0.008, 1000)
    assert hopper.z_range == (0.7, float("inf")) and hopper.angle_range == (-0.2, 0.2) and hopper.clip_qvel == 10
    cheetah = physics_of(make_env("HalfCheetah-v5"))
    assert cheetah.ctrl_weight == 0.1 and cheetah.z_range is None and cheetah.healthy_reward == 0.0
    with pytest.raises(OffbenchError, match="does not support"):
        physics_of(make_env("Walker2d-v4"))
    with pytest.raises(OffbenchError, match="goal-reaching evaluation"):  # AntMaze without D4RL's goal wrapper
        physics_of(make_env("AntMaze_UMaze-v4"))


def test_mjx_starts_where_the_host_starts():
    qpos, qvel, _ = start_states(make_env("Hopper-v5"), [3, 4], 2)
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


# -- AntMaze ------------------------------------------------------------------------------------------------

UMAZE = get_suite("antmaze").task("antmaze-umaze-v2")
UMAZE_FACTORY = EnvFactory(UMAZE.env_id, UMAZE.env_kwargs, UMAZE.max_episode_steps, None, ANTMAZE_GOAL_RADIUS)


def test_antmaze_physics_and_starts_are_the_host_environment_s():
    env = UMAZE_FACTORY()
    ph = physics_of(env, UMAZE.obs_keys)
    assert (ph.frame_skip, ph.dt, ph.horizon, ph.goal_radius) == (5, 0.05, 700, 0.5)
    qpos, qvel, goal = start_states(env, [0, 7], 3, ph)
    host = UMAZE_FACTORY()
    adapter = ObsAdapter(UMAZE.obs_keys)
    for i, s in enumerate([0, 7]):
        for j in range(3):
            obs, _ = host.reset(seed=eval_reset_seed(s, j))  # the host backends' episode j of seed s
            np.testing.assert_allclose(ph.observe(qpos[i, j], qvel[i, j], goal[i, j]), adapter(obs), atol=1e-6)
            np.testing.assert_allclose(goal[i, j], obs["desired_goal"], atol=1e-6)
    assert len({tuple(g) for g in goal.reshape(-1, 2).round(4)}) == 6  # the goal noise differs per episode
    # the model is the in-memory MjModel: MJX takes its wall boxes, torso sphere, leg capsules and floor
    from offbench.evaluation.mjx import _mjx

    assert _mjx().put_model(env.unwrapped.model).ngeom == env.unwrapped.model.ngeom


def test_antmaze_backend_selection():
    assert mjx_tasks.supported("AntMaze_UMaze-v4") and mjx_tasks.supported("AntMaze_Large-v4")
    assert choose_backend("mjx", "AntMaze_Medium-v4") == "mjx"
    assert choose_backend("auto", "AntMaze_UMaze-v4") == "host"  # only on request until its fidelity is measured
    assert choose_backend("auto", "Hopper-v5") == ("mjx" if jax.default_backend() == "gpu" else "host")
    mjx_tasks.check_env_kwargs(UMAZE.env_id, UMAZE.env_kwargs)  # the maze and the goal rules: ported
    with pytest.raises(OffbenchError, match="use --eval-backend host"):
        mjx_tasks.check_env_kwargs(UMAZE.env_id, {**UMAZE.env_kwargs, "reward_type": "dense"})
    with pytest.raises(OffbenchError, match="use --eval-backend host"):
        mjx_tasks.check_env_kwargs("Hopper-v5", {"reset_noise_scale": 0.1})


class GoalAt(gym.Wrapper):
    """The host's AntMaze with the goal moved, after each reset, to the start plus a per-reset-seed offset (both
    backends read the goal from the environment, so both get it)."""

    def __init__(self, env, offsets: dict):
        super().__init__(env)
        self.offsets = offsets

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.env.unwrapped.goal = obs["achieved_goal"] + self.offsets[seed]
        return dict(obs, desired_goal=self.env.unwrapped.goal.copy()), info


@pytest.mark.skipif(
    not os.environ.get("OFFBENCH_SLOW_TESTS"),
    reason="compiles MJX's AntMaze step on the CPU (5-17 min on 2 cores); set OFFBENCH_SLOW_TESTS=1 to run it",
)
def test_antmaze_mjx_agrees_with_the_host():
    """Positions over the first steps, and the goal-reaching evaluation (reward 1, the episode ends, success)."""
    seeds, E = [0, 1], 4
    # per episode: goal 0.3 m away (inside the 0.5 m radius: reached at the first step) or 30 m (never)
    offsets = {eval_reset_seed(s, j): np.array([0.3 if j % 2 == 0 else 30.0, 0.0]) for s in seeds for j in range(E)}
    w = jax.random.normal(jax.random.PRNGKey(3), (len(seeds), 29, 8)) * 0.1

    def act(state, obs, key, deterministic=True):
        return jnp.tanh(obs @ state)

    def factory():  # 20-step episodes
        return GoalAt(EnvFactory(UMAZE.env_id, UMAZE.env_kwargs, 20, None, ANTMAZE_GOAL_RADIUS)(), offsets)

    adapter = ObsAdapter(UMAZE.obs_keys)
    mjx = MjxEvaluator(UMAZE.env_id, adapter, act, seeds, E, env_factory=factory)
    assert mjx.physics.horizon == 20
    b = mjx(w)
    a = Evaluator(factory, adapter, make_act_fn(act), seeds, E, E)(w)
    np.testing.assert_array_equal(a.successes, [[True, False] * 2] * 2)
    np.testing.assert_array_equal(b.successes, a.successes)
    np.testing.assert_array_equal(b.lengths, a.lengths)  # 1 where reached, the horizon elsewhere
    np.testing.assert_array_equal(b.returns, a.returns)  # sparse reward 1 at the goal
    # positions: the host stepped by hand with the same policy for 3 steps (before the feet's friction with the
    # floor sets in; MJX orients the friction pyramid of a capsule-plane contact differently, docs/speed.md)
    starts = tuple(jnp.asarray(x) for x in start_states(factory(), seeds, E, mjx.physics))
    *_, qpos = mjx.rollout(w, *starts, horizon=3)
    for i, s in enumerate(seeds):
        for j in range(1, E, 2):
            env = factory()
            obs, _ = env.reset(seed=eval_reset_seed(s, j))
            for _ in range(3):
                obs = env.step(np.asarray(act(w[i], jnp.asarray(adapter(obs)), None)))[0]
            np.testing.assert_allclose(qpos[i, j], env.unwrapped.data.qpos, atol=1e-3)
