"""On-device evaluation with MJX: the policy and the physics in one jitted loop over the episode's steps
(``lax.while_loop``: a ``lax.scan`` that stops when every episode has ended), vmapped over seeds x episodes.

Tasks (:data:`offbench.evaluation.mjx_tasks.SUPPORTED`): Gymnasium's v5 Hopper, HalfCheetah and Walker2d, and
Gymnasium-Robotics' ``AntMaze_*-v4`` under D4RL's goal-reaching evaluation (:mod:`offbench.evaluation.mjx_antmaze`),
each rebuilt from the host's Gymnasium environment itself (the same factory the host backends use), so that
nothing is copied by hand:

* the model is the environment's own ``MjModel`` (``env.unwrapped.model``: Gymnasium's XML), put on the
  device with ``mjx.put_model``; one environment step is ``frame_skip`` ``mjx.step`` calls with
  ``ctrl = action``, as ``MujocoEnv._step_mujoco_simulation``;
* observations, rewards and termination are those of ``hopper_v5.py`` / ``half_cheetah_v5.py`` /
  ``walker2d_v5.py`` (``_get_obs``, ``_get_rew``, ``is_healthy``), with the weights and ranges read from the
  environment instance (``_forward_reward_weight``, ``_ctrl_cost_weight``, ``_healthy_reward``,
  ``_healthy_z_range``, ...);
* start states are the host environment's: episode ``j`` of seed ``s`` is reset on the host with
  ``eval_reset_seed(s, j)`` (the host backends' reset seed) and its ``qpos``/``qvel`` (AntMaze: and its goal)
  are copied, so both backends start every episode from the same state; episodes last the environment's
  ``max_episode_steps``.

MJX computes in float32 (MuJoCo in float64) and its constraint solver is MJX's, so single trajectories drift
apart after some steps; the fidelity check compares mean returns over many episodes
(``benchmarks/eval_fidelity.py``, ``tests/test_mjx.py``). Kitchen, Adroit and the point mazes stay on the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io

import jax
import jax.numpy as jnp
import numpy as np

from offbench.envs import make_env
from offbench.errors import OffbenchError
from offbench.evaluation.episodes import EvalResult, eval_reset_seed
from offbench.evaluation.mjx_antmaze import antmaze_physics, is_antmaze_env
from offbench.evaluation.mjx_tasks import SUPPORTED


def _mjx():
    """``mujoco.mjx``, imported without the lines its optional Warp backend prints when Warp is absent."""
    with contextlib.redirect_stdout(io.StringIO()):
        from mujoco import mjx
    return mjx


@dataclasses.dataclass(frozen=True)
class Physics:
    """What one locomotion task's step needs, read from its Gymnasium environment."""

    env_id: str
    frame_skip: int
    dt: float
    horizon: int
    forward_weight: float
    ctrl_weight: float
    healthy_reward: float  # 0 for HalfCheetah (no termination)
    z_range: tuple | None  # healthy z range (Hopper, Walker2d)
    angle_range: tuple | None
    state_range: tuple | None  # Hopper: every state_vector()[2:] entry
    clip_qvel: float | None  # Hopper/Walker2d clip qvel to +-10 in the observation
    goal_dim: int = 0  # no goal

    def observe(self, qpos, qvel, goal):
        return observation(self, qpos, qvel)

    def outcome(self, qpos_before, qpos, qvel, action, goal):
        """(reward, terminated, success) after one step: v5's ``step``."""
        x_vel = (qpos[0] - qpos_before[0]) / self.dt
        ok = healthy(self, qpos, qvel)
        reward = self.forward_weight * x_vel + self.healthy_reward * ok - self.ctrl_weight * jnp.sum(jnp.square(action))
        return reward, ~ok, jnp.asarray(False)

    @staticmethod
    def goal_of(env) -> np.ndarray:
        return np.zeros(0)


def physics_of(env, obs_keys=None):
    """The task's :class:`Physics` (locomotion) or :class:`~offbench.evaluation.mjx_antmaze.AntMazePhysics`,
    read from the host environment (with its wrappers: AntMaze's goal radius is the wrapper's)."""
    u = env.unwrapped
    name = env.spec.id
    if name not in SUPPORTED:
        raise OffbenchError(f"the mjx backend does not support {name!r} (supported: {', '.join(SUPPORTED)})")
    if is_antmaze_env(env):
        return antmaze_physics(env, obs_keys)
    locomotor = not name.startswith("HalfCheetah")
    if not u._exclude_current_positions_from_observation:
        raise OffbenchError(f"{name}: the mjx backend expects x excluded from observations (Gymnasium's default)")
    if locomotor and not u._terminate_when_unhealthy:
        raise OffbenchError(f"{name}: the mjx backend expects terminate_when_unhealthy (Gymnasium's default)")
    return Physics(
        name,
        int(u.frame_skip),
        float(u.dt),
        int(env.spec.max_episode_steps or 1000),
        float(u._forward_reward_weight),
        float(u._ctrl_cost_weight),
        float(u._healthy_reward) if locomotor else 0.0,
        tuple(u._healthy_z_range) if locomotor else None,
        tuple(u._healthy_angle_range) if locomotor else None,
        tuple(u._healthy_state_range) if name.startswith("Hopper") else None,
        10.0 if locomotor else None,
    )


def observation(ph: Physics, qpos, qvel):
    v = jnp.clip(qvel, -ph.clip_qvel, ph.clip_qvel) if ph.clip_qvel else qvel
    return jnp.concatenate([qpos[1:], v])


def healthy(ph: Physics, qpos, qvel):
    if ph.z_range is None:
        return jnp.asarray(True)
    z, angle = qpos[1], qpos[2]
    ok = (ph.z_range[0] < z) & (z < ph.z_range[1]) & (ph.angle_range[0] < angle) & (angle < ph.angle_range[1])
    if ph.state_range is not None:
        state = jnp.concatenate([qpos, qvel])[2:]
        ok = ok & jnp.all((ph.state_range[0] < state) & (state < ph.state_range[1]))
    return ok


def make_env_step(ph, model):
    """(data, action, goal) -> (data, obs, reward, terminated, success) for one environment step on the device."""
    mjx = _mjx()

    def step(data, action, goal):
        qpos_before = data.qpos
        data = data.replace(ctrl=action)
        data = jax.lax.fori_loop(0, ph.frame_skip, lambda _, d: mjx.step(model, d), data)
        reward, term, success = ph.outcome(qpos_before, data.qpos, data.qvel, action, goal)
        return data, ph.observe(data.qpos, data.qvel, goal), reward, term, success

    return step


def make_rollout(ph, mj_model, agent_act, adapter_mean=None, adapter_std=None, horizon: int | None = None):
    """``rollout(states, qpos0, qvel0, goal, horizon=None) -> returns, lengths, successes [n_seeds, E], final qpos
    [n_seeds, E, nq]`` (inputs ``[n_seeds, E, ...]``): one compiled loop over the episode's steps
    (``lax.while_loop``, a ``scan`` that stops once every episode has ended), vmapped over seeds; the policy acts
    on all E episodes of a seed at once, the physics is vmapped over them. ``horizon`` (default: the task's) is
    a traced argument: one compilation serves every horizon."""
    mjx = _mjx()

    model = mjx.put_model(mj_model)
    env_step = jax.vmap(make_env_step(ph, model))
    key = jax.random.PRNGKey(0)  # deterministic actions: the key is unused (as make_act_fn)
    T = int(horizon or ph.horizon)
    mean = None if adapter_mean is None else jnp.asarray(adapter_mean, jnp.float32)
    std = None if adapter_std is None else jnp.asarray(adapter_std, jnp.float32)

    def adapt(obs):
        return obs if mean is None else (obs - mean) / std

    def one_seed(state, qpos0, qvel0, goal, T):
        data0 = jax.vmap(lambda q, v: mjx.make_data(model).replace(qpos=q, qvel=v))(qpos0, qvel0)
        obs0 = jax.vmap(ph.observe)(qpos0, qvel0, goal)
        E = qpos0.shape[0]

        def body(carry):
            t, data, obs, done, ret, length, success = carry
            action = agent_act(state, adapt(obs).astype(jnp.float32), key, True)
            new, obs2, r, term, hit = env_step(data, action, goal)
            keep = lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
            data = jax.tree_util.tree_map(keep, data, new)
            ret = ret + jnp.where(done, 0.0, r)
            length = length + (~done).astype(jnp.int32)
            success = success | (hit & ~done)
            return t + 1, data, jnp.where(done[:, None], obs, obs2), done | term, ret, length, success

        def running(carry):  # the loop stops when every episode has ended (or at the horizon)
            return (carry[0] < T) & ~jnp.all(carry[3])

        zeros = jnp.zeros(E, bool)
        init = (jnp.int32(0), data0, obs0, zeros, jnp.zeros(E, jnp.float32), jnp.zeros(E, jnp.int32), zeros)
        _, data, _, _, ret, length, success = jax.lax.while_loop(running, body, init)
        return ret, length, success, data.qpos

    compiled = jax.jit(jax.vmap(one_seed, in_axes=(0, 0, 0, 0, None)))

    def rollout(states, qpos0, qvel0, goal, horizon: int | None = None):
        return compiled(states, qpos0, qvel0, goal, jnp.int32(horizon or T))

    return rollout


def start_states(env, seeds: list[int], episodes: int, ph=None):
    """qpos/qvel/goal [n_seeds, E, ...] of the host environment reset with the evaluation's reset seeds (the goal
    is empty for tasks without one)."""
    u = env.unwrapped
    ph = ph or physics_of(env)
    qpos = np.zeros((len(seeds), episodes, u.model.nq), np.float32)
    qvel = np.zeros((len(seeds), episodes, u.model.nv), np.float32)
    goal = np.zeros((len(seeds), episodes, ph.goal_dim), np.float32)
    for i, s in enumerate(seeds):
        for j in range(episodes):
            env.reset(seed=eval_reset_seed(s, j))
            qpos[i, j], qvel[i, j], goal[i, j] = u.data.qpos, u.data.qvel, ph.goal_of(env)
    return qpos, qvel, goal


class MjxEvaluator:
    backend = "mjx"
    workers = 0

    def __init__(
        self,
        env_id: str,
        obs_adapter,
        agent_act,
        seeds: list[int],
        episodes: int,
        horizon: int | None = None,
        env_factory=None,
    ):
        """``env_factory``: the host backends' environment factory (:func:`offbench.evaluation.episodes.
        env_factory_for`), whose environment gives the model, the physics and the start states; default
        ``make_env(env_id)``."""
        self.seeds = [int(s) for s in seeds]
        self.episodes = int(episodes)
        self.env = env_factory() if env_factory is not None else make_env(env_id)
        keys = getattr(obs_adapter, "obs_keys", None)
        if keys and not is_antmaze_env(self.env):
            raise OffbenchError(f"{env_id}: the mjx backend takes flat observations")
        self.physics = physics_of(self.env, keys)
        mean = getattr(obs_adapter, "mean", None)
        std = getattr(obs_adapter, "std", None)
        self.rollout = make_rollout(self.physics, self.env.unwrapped.model, agent_act, mean, std, horizon)
        self._starts = None
        self.progress = None  # optional progress(episodes done, episodes in all): one jitted call, said at its end
        self.final_qpos = None  # [n_seeds, E, nq] at each episode's end, of the last call (fidelity checks)

    def __call__(self, states) -> EvalResult:
        n, E = len(self.seeds), self.episodes
        res = EvalResult.empty(n, E)
        if E == 0:
            return res
        if self._starts is None:  # the same start states at every evaluation of the run
            self._starts = tuple(jnp.asarray(x) for x in start_states(self.env, self.seeds, E, self.physics))
        ret, length, success, self.final_qpos = self.rollout(states, *self._starts)
        res.returns[:] = np.asarray(ret, np.float64)
        res.lengths[:] = np.asarray(length)
        res.successes[:] = np.asarray(success)
        if self.progress is not None:
            self.progress(n * E, n * E)
        return res

    def close(self):
        if self.env is not None:
            self.env.close()
            self.env = None
