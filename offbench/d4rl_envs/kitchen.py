"""D4RL's Kitchen tasks (``kitchen-{complete,partial,mixed}-v0``) over Gymnasium-Robotics' FrankaKitchen-v1
(the same kitchen and Franka model, ported to the ``mujoco`` bindings): D4RL's 60-d observation, task completion
and reward, written here from Farama-Foundation/D4RL (commit 89141a6) d4rl/kitchen/kitchen_envs.py and
d4rl/kitchen/adept_envs/franka/{kitchen_multitask_v0.py, robot/franka_robot.py, robot/franka_config.xml}.

* observation (kitchen_multitask_v0.py:118-130): robot qpos (9) + object qpos (21) + the task goal (30), the
  positions with adept's observation noise, ``robot_noise_ratio`` 0.1 (:43) times each joint's
  ``pos_noise_amp`` (franka_config.xml:17-52), uniform in [-1, 1] (franka_robot.py:155-158);
* goal (kitchen_envs.py:46-53): zeros with each task element's goal at its indices;
* reward and completion (kitchen_envs.py:59-87): a remaining element is complete when the observed object
  position is within 0.3 of its goal; the reward is the number completed at this step; completed elements are
  removed; the episode ends when none remain.

The robot's actuation is Gymnasium-Robotics' FrankaRobot, a port of D4RL's ``Robot_VelAct``: actions x 2
(kitchen_multitask_v0.py:73-74, 91), velocity-clipped and integrated from the last noisy robot reading into
position targets (franka_robot.py:259-264); its observation noise is set to D4RL's ratio (0.1).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

# kitchen_envs.py:9-26
OBS_ELEMENT_INDICES = {
    "bottom burner": (11, 12),
    "top burner": (15, 16),
    "light switch": (17, 18),
    "slide cabinet": (19,),
    "hinge cabinet": (20, 21),
    "microwave": (22,),
    "kettle": (23, 24, 25, 26, 27, 28, 29),
}
OBS_ELEMENT_GOALS = {
    "bottom burner": (-0.88, -0.01),
    "top burner": (-0.92, -0.01),
    "light switch": (-0.69, -0.05),
    "slide cabinet": (0.37,),
    "hinge cabinet": (0.0, 1.45),
    "microwave": (-0.75,),
    "kettle": (-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06),
}
BONUS_THRESH = 0.3  # kitchen_envs.py:27
N_ROBOT, N_OBJECT = 9, 21  # kitchen_multitask_v0.py:37-38
ROBOT_NOISE_RATIO = 0.1  # kitchen_multitask_v0.py:43
# franka_config.xml:17-52 pos_noise_amp of qpos0..qpos29 (the robot's 9, then the 21 object dofs)
POS_NOISE_AMP = np.array(
    [0.1] * 9 + [0.005] * 2 + [0.0005] * 6 + [0.005] * 3 + [0.1] * 3 + [0.005] * 3 + [0.1] * 3 + [0.005]
)
# d4rl/kitchen/__init__.py:8, 21, 35 (max_episode_steps=280) and kitchen_envs.py:94-98 (the task elements)
MAX_EPISODE_STEPS = 280
TASKS = {
    "complete": ("microwave", "kettle", "light switch", "slide cabinet"),
    "partial": ("microwave", "kettle", "light switch", "slide cabinet"),
    "mixed": ("microwave", "kettle", "bottom burner", "light switch"),
}


def task_goal(elements) -> np.ndarray:
    goal = np.zeros(N_ROBOT + N_OBJECT)
    for e in elements:
        goal[list(OBS_ELEMENT_INDICES[e])] = OBS_ELEMENT_GOALS[e]
    return goal


class D4RLKitchen(gym.Wrapper):
    """FrankaKitchen-v1 seen and scored as D4RL's KitchenBase (see the module docstring)."""

    def __init__(self, env, elements):
        super().__init__(env)
        self.elements = tuple(elements)
        self.goal = task_goal(self.elements)
        self.observation_space = gym.spaces.Box(-8.0, 8.0, (60,), np.float64)  # kitchen_multitask_v0.py:80-82
        self.remaining: set = set(self.elements)

    def _obs(self) -> np.ndarray:
        u = self.env.unwrapped
        # the robot's noisy reading is the one its next velocity command integrates from, in D4RL
        # (franka_robot.py:259-264, last observation) as in Gymnasium-Robotics (franka_env.py _last_robot_qpos)
        robot = np.asarray(u.robot_env._last_robot_qpos, np.float64).copy()
        obj = np.asarray(u.data.qpos[N_ROBOT : N_ROBOT + N_OBJECT], np.float64).copy()
        obj += ROBOT_NOISE_RATIO * POS_NOISE_AMP[N_ROBOT:] * u.np_random.uniform(-1.0, 1.0, obj.shape)
        return np.concatenate([robot, obj, self.goal])

    def _score(self, obs) -> list:
        done = [
            e
            for e in self.remaining
            if np.linalg.norm(obs[list(OBS_ELEMENT_INDICES[e])] - self.goal[list(OBS_ELEMENT_INDICES[e])])
            < BONUS_THRESH
        ]
        self.remaining -= set(done)
        return done

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        self.remaining = set(self.elements)
        return self._obs(), info

    def step(self, action):
        _, _, _, trunc, info = self.env.step(action)
        obs = self._obs()
        completed = self._score(obs)
        info = dict(info, d4rl_completed=completed, success=not self.remaining)
        return obs, float(len(completed)), not self.remaining, trunc, info


def make(dataset: str, **kwargs):
    """Registered entry point of ``D4RL-Kitchen-<Dataset>-v0``."""
    import gymnasium_robotics  # noqa: F401

    gym.register_envs(gymnasium_robotics)
    kwargs = {"robot_noise_ratio": ROBOT_NOISE_RATIO, **kwargs}  # D4RL's 0.1 (Gymnasium-Robotics' default: 0.01)
    base = gym.make(
        "FrankaKitchen-v1", tasks_to_complete=list(TASKS[dataset]), terminate_on_tasks_completed=False, **kwargs
    ).unwrapped
    return D4RLKitchen(base, TASKS[dataset])
