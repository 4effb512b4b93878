"""D4RL's AntMaze evaluation task (``antmaze-*-v2``) as a Gymnasium environment on modern MuJoCo.

Transcribed from Farama-Foundation/D4RL (commit 89141a6), written here:
* the robot, its actuation and timing: :mod:`offbench.d4rl_envs.ant_model` (ant.xml), and D4RL's
  ``NormalizedBoxEnv`` (locomotion/wrappers.py:155-159): an action in [-1, 1] is mapped linearly onto the
  motors' [-30, 30] and clipped;
* the observation: ``qpos[:15]`` and ``qvel[:14]`` (ant.py:92-96, ``expose_all_qpos=True`` for AntMazeEnv,
  ant.py:169), no goal appended (``eval=True``, goal_reaching_env.py:31-35): the 29-d vector of the datasets;
* the reset: ``qpos = qpos0 + U(-0.1, 0.1)``, ``qvel = N(0, 0.1^2)`` (ant.py:120-133), from the start cell at
  (0, 0) (``non_zero_reset=False`` in every antmaze-*-v2 registration, locomotion/__init__.py:332);
* the goal, drawn again at every reset (``v2_resets``, ant.py:186-202): the goal cell's corner in D4RL's frame
  plus U(0, 1) m plus U(0, 0.5) m per axis, floored at 0 (maze_env.py:236-258);
* the reward and the end: 1 within 0.5 m of the goal, else 0, and the episode ends there
  (goal_reaching_env.py:41-47, ``reward_type='sparse'``, ``eval=True``); ``info["success"]`` says so.

Deliberate differences: D4RL draws the goal noise from NumPy's global generator (maze_env.py:232, 253); here
everything comes from the environment's own ``np_random`` so that a reset seed fixes the goal too.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np

import offbench.d4rl_envs.ant_model as ant_model
from offbench.d4rl_envs.mazes import MAZES, maze_map

GOAL_RADIUS = 0.5  # goal_reaching_env.py:42, 46


def goal_cell(mm) -> tuple[int, int]:
    return next((i, j) for i, row in enumerate(mm) for j, c in enumerate(row) if c == "g")


class D4RLAntMazeEnv(gym.Env):
    """D4RL's ``antmaze-<maze>-v2`` evaluation environment (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, maze: str = "umaze", render_mode=None):
        if maze not in MAZES:
            raise ValueError(f"unknown maze {maze!r}; known: {', '.join(MAZES)}")
        self.maze = maze
        self.maze_map = maze_map(maze)
        self.model = mujoco.MjModel.from_xml_string(ant_model.antmaze_xml(self.maze_map))
        self.data = mujoco.MjData(self.model)
        self.init_qpos = self.model.qpos0.copy()
        self.init_qvel = np.zeros(self.model.nv)
        self.dt = ant_model.TIMESTEP * ant_model.FRAME_SKIP
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (29,), np.float64)
        self.target_goal = np.asarray(ant_model.cell_xy(self.maze_map, goal_cell(self.maze_map)), np.float64)

    # -- state ---------------------------------------------------------------------------------------------
    def obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:15], self.data.qvel[:14]]).astype(np.float64)

    def set_state(self, qpos, qvel) -> None:
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        self.data.act[:] = 0
        mujoco.mj_forward(self.model, self.data)

    def set_obs(self, obs) -> None:
        """Set the state from a 29-d observation: it is the ant's whole state (the maze has no joints)."""
        obs = np.asarray(obs, np.float64)
        self.set_state(obs[:15], obs[15:29])

    def sample_goal(self) -> np.ndarray:
        """maze_env.py:236-258: the goal cell in D4RL's frame, + U(0, 0.25 scaling) (:231-233), + U(0, 0.5) *
        0.25 * scaling (:253-254), each axis floored at 0 (:256)."""
        s = ant_model.MAZE_SCALING
        x, y = ant_model.cell_xy(self.maze_map, goal_cell(self.maze_map))
        x += self.np_random.uniform(0, 0.25 * s) + self.np_random.uniform(0, 0.5) * 0.25 * s
        y += self.np_random.uniform(0, 0.25 * s) + self.np_random.uniform(0, 0.5) * 0.25 * s
        return np.array([max(x, 0.0), max(y, 0.0)])

    # -- Gymnasium API -------------------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target_goal = self.sample_goal()
        mujoco.mj_resetData(self.model, self.data)
        qpos = self.init_qpos + self.np_random.uniform(-0.1, 0.1, self.model.nq)
        qvel = self.init_qvel + self.np_random.standard_normal(self.model.nv) * 0.1
        self.set_state(qpos, qvel)
        return self.obs(), {"goal": self.target_goal.copy()}

    def step(self, action):
        a = np.asarray(action, np.float64)
        lo, hi = -ant_model.CTRL_LIMIT, ant_model.CTRL_LIMIT
        self.data.ctrl[:] = np.clip(lo + (a + 1.0) * 0.5 * (hi - lo), lo, hi)
        mujoco.mj_step(self.model, self.data, nstep=ant_model.FRAME_SKIP)
        dist = float(np.linalg.norm(self.data.qpos[:2] - self.target_goal))
        hit = dist <= GOAL_RADIUS
        return self.obs(), float(hit), hit, False, {"success": hit, "goal_distance": dist}
