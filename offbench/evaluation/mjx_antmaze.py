"""AntMaze on the MJX evaluation backend: what one step of Gymnasium-Robotics' ``AntMaze_*-v4`` under
D4RL's goal-reaching evaluation computes, read from the host environment instance.

* the model is the environment's in-memory ``MjModel`` (``env.unwrapped.model``, the property that returns
  ``ant_env.model``: Gymnasium's ``ant.xml`` with the maze's wall boxes added), never its temporary XML file.
  ``mjx.put_model`` takes it as it is: the walls are boxes with ``contype = conaffinity = 1``, the Ant's
  torso sphere and leg capsules have ``conaffinity = 0`` (no self-contacts), the floor is a plane; MJX has
  every pair this leaves (plane-sphere, plane-capsule, sphere-box, capsule-box), and the walls and floor
  belong to the world body, so they never collide with each other. The integrator (RK4, 0.01 s) and the
  contact parameters come with the model;
* one environment step is ``ant_env.frame_skip`` (5) ``mjx.step`` calls with ``ctrl = action`` (MuJoCo and
  MJX both clamp ``ctrl`` to the actuators' ``ctrlrange``, [-1, 1]), as ``MujocoEnv.do_simulation``;
* the observation is ``AntEnv._get_obs`` with x/y kept (``achieved_goal = qpos[:2]``,
  ``observation = [qpos[2:], qvel]``) and ``desired_goal`` = the episode's goal, flattened in the dataset's
  ``obs_keys`` order as :class:`offbench.envs.ObsAdapter` flattens the host's dict (sorted keys if none);
* the goal of each episode is the host environment's goal after its reset with the same reset seed (the map's
  "g" cell plus Gymnasium-Robotics' position noise), copied with the start state;
* reward, termination and success are :func:`offbench.envs.goal_reached` (D4RL's evaluation): reward 1 and
  the episode ends when ``||qpos[:2] - goal|| <= radius`` (the wrapper's radius, 0.5 m, the suite's
  ``ANTMAZE_GOAL_RADIUS``) after a step; otherwise it runs to the time limit. ``AntEnv``'s own
  ``terminated`` (unhealthy z) is ignored by ``AntMazeEnv.step``, as here; Gymnasium-Robotics' 0.45 m
  ``continuing_task``/``reset_target`` rules never act before a 0.5 m hit.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from offbench.errors import OffbenchError

OBS_PARTS = ("achieved_goal", "desired_goal", "observation")


def is_antmaze_env(env) -> bool:
    return hasattr(env.unwrapped, "ant_env") and hasattr(env.unwrapped, "maze")


def goal_radius_of(env) -> float | None:
    """The radius of the :func:`offbench.envs.goal_reached` wrapper around ``env`` (None when unwrapped)."""
    try:
        return float(env.get_wrapper_attr("goal_radius"))  # Gymnasium's own search through the wrappers
    except AttributeError:
        return None


@dataclasses.dataclass(frozen=True)
class AntMazePhysics:
    env_id: str
    frame_skip: int
    dt: float
    horizon: int
    goal_radius: float
    obs_keys: tuple  # the flat observation's parts, in order
    goal_dim: int = 2

    def observe(self, qpos, qvel, goal):
        parts = {"achieved_goal": qpos[:2], "desired_goal": goal, "observation": jnp.concatenate([qpos[2:], qvel])}
        return jnp.concatenate([parts[k] for k in self.obs_keys])

    def outcome(self, qpos_before, qpos, qvel, action, goal):
        """(reward, terminated, success) after one step: D4RL's goal-reaching evaluation."""
        hit = jnp.linalg.norm(qpos[:2] - goal) <= self.goal_radius
        return hit.astype(jnp.float32), hit, hit

    @staticmethod
    def goal_of(env) -> np.ndarray:
        return np.asarray(env.unwrapped.goal, np.float64)


def antmaze_physics(env, obs_keys) -> AntMazePhysics:
    u = env.unwrapped
    ant = u.ant_env
    name = env.spec.id
    radius = goal_radius_of(env)
    if radius is None:
        raise OffbenchError(f"{name}: the mjx backend runs AntMaze with D4RL's goal-reaching evaluation only")
    if ant._use_contact_forces or ant._exclude_current_positions_from_observation:
        raise OffbenchError(f"{name}: the mjx backend expects AntMaze's own Ant (x/y observed, no contact forces)")
    if not u.continuing_task and radius < 0.45:  # Gymnasium-Robotics would end the episode first (at 0.45 m)
        raise OffbenchError(f"{name}: continuing_task=False with a goal radius under 0.45 is not supported")
    keys = tuple(obs_keys) if obs_keys else OBS_PARTS  # ObsAdapter: sorted keys when the suite names none
    unknown = [k for k in keys if k not in OBS_PARTS]
    if unknown:
        raise OffbenchError(f"{name}: the mjx backend has no observation part {unknown} (it has {OBS_PARTS})")
    steps = env.spec.max_episode_steps
    if not steps:
        raise OffbenchError(f"{name}: the mjx backend needs the environment's time limit")
    return AntMazePhysics(name, int(ant.frame_skip), float(ant.dt), int(steps), radius, keys)
