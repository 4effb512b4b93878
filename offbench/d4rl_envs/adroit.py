"""D4RL's Adroit tasks (``door/hammer/pen/relocate-*-v1``): Gymnasium-Robotics' ``AdroitHand*-v1`` (the same
models and actuation) with D4RL's reward, written here from D4RL's mj_envs ports
(Farama-Foundation/D4RL d4rl/hand_manipulation_suite/{door,hammer,pen,relocate}_v0.py, commit 89141a6).

gymnasium-robotics 1.4.2 adds ``+0.1 * ||palm - target||`` where D4RL subtracts it (its adroit_door.py:297,
adroit_hammer.py:308, adroit_relocate.py:297), so its returns are not on the scale of D4RL's reference returns.
Pen's reward is D4RL's already; D4RL's pen also ends the episode when the pen drops below 0.075 m
(pen_v0.py:84-87), which Gymnasium-Robotics does not: the wrapper ends it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ADD_BONUS_REWARDS = True  # door_v0.py:9, hammer_v0.py:10, pen_v0.py:10, relocate_v0.py:9: the bonuses are on


def _site(env, attr: str) -> np.ndarray:
    return env.data.site_xpos[getattr(env, attr)].ravel()


def door_reward(env) -> tuple[float, bool]:
    """door_v0.py:47-67."""
    handle, palm = _site(env, "handle_site_id"), _site(env, "grasp_site_id")
    door = float(env.data.qpos[env.door_hinge_addrs])
    r = -0.1 * np.linalg.norm(palm - handle)  # :52
    r += -0.1 * (door - 1.57) * (door - 1.57)  # :54
    r += -1e-5 * np.sum(env.data.qvel**2)  # :56
    r += 2.0 * (door > 0.2) + 8.0 * (door > 1.0) + 10.0 * (door > 1.35)  # :60-65
    return float(r), door >= 1.35  # :67


def hammer_reward(env) -> tuple[float, bool]:
    """hammer_v0.py:50-76."""
    obj = env.data.xpos[env.obj_body_id].ravel()
    palm, tool = _site(env, "S_grasp_site_id"), _site(env, "tool_site_id")
    target, goal = _site(env, "target_obj_site_id"), _site(env, "goal_site_id")
    nail = float(np.linalg.norm(target - goal))
    r = -0.1 * np.linalg.norm(palm - obj)  # :57
    r -= np.linalg.norm(tool - target)  # :59
    r -= 10 * nail  # :61
    r -= 1e-2 * np.linalg.norm(env.data.qvel.ravel())  # :63
    r += 2.0 * (obj[2] > 0.04 and tool[2] > 0.04)  # :67-68
    r += 25.0 * (nail < 0.020) + 75.0 * (nail < 0.010)  # :71-74
    return float(r), nail < 0.010  # :76


def relocate_reward(env) -> tuple[float, bool]:
    """relocate_v0.py:44-60."""
    obj = env.data.xpos[env.obj_body_id].ravel()
    palm, target = _site(env, "S_grasp_site_id"), _site(env, "target_obj_site_id")
    d = float(np.linalg.norm(obj - target))
    r = -0.1 * np.linalg.norm(palm - obj)  # :48
    if obj[2] > 0.04:  # :49-52
        r += 1.0 - 0.5 * np.linalg.norm(palm - target) - 0.5 * d
    r += 10.0 * (d < 0.1) + 20.0 * (d < 0.05)  # :55-58
    return float(r), d < 0.1  # :60


def pen_reward(env) -> tuple[float, bool]:
    """pen_v0.py:64-89 (the drop ends the episode: see D4RLAdroit.step)."""
    obj = env.data.xpos[env.obj_body_id].ravel()
    desired = _site(env, "eps_ball_site_id")
    obj_orien = (_site(env, "obj_t_site_id") - _site(env, "obj_b_site_id")) / env.pen_length
    tar_orien = (_site(env, "tar_t_site_id") - _site(env, "tar_b_site_id")) / env.tar_length
    dist = float(np.linalg.norm(obj - desired))
    sim = float(np.dot(obj_orien, tar_orien))
    r = -dist + sim  # :70-74
    r += 10.0 * (dist < 0.075 and sim > 0.9) + 50.0 * (dist < 0.075 and sim > 0.95)  # :78-81
    r -= 5.0 * (obj[2] < 0.075)  # :85-86
    return float(r), dist < 0.075 and sim > 0.95  # :89


REWARDS = {"door": door_reward, "hammer": hammer_reward, "pen": pen_reward, "relocate": relocate_reward}
# d4rl/hand_manipulation_suite/__init__.py:11: MAX_STEPS of the -v1 registrations
MAX_EPISODE_STEPS = {"hammer": 200, "relocate": 200, "door": 200, "pen": 100}
GYMNASIUM_IDS = {
    "door": "AdroitHandDoor-v1",
    "hammer": "AdroitHandHammer-v1",
    "pen": "AdroitHandPen-v1",
    "relocate": "AdroitHandRelocate-v1",
}


class D4RLAdroit(gym.Wrapper):
    """Gymnasium-Robotics' Adroit task with D4RL's reward (``info["d4rl_reward"]``: the same number,
    ``info["gymnasium_reward"]``: the library's) and D4RL's end of a pen episode."""

    def __init__(self, env, task: str):
        super().__init__(env)
        self.task = task
        self._reward = REWARDS[task]

    def step(self, action):
        obs, gym_reward, term, trunc, info = self.env.step(action)
        u = self.env.unwrapped
        reward, success = self._reward(u)
        if self.task == "pen" and u.data.xpos[u.obj_body_id][2] < 0.075:  # pen_v0.py:85-87
            term = True
        return obs, reward, bool(term), trunc, dict(info, success=success, gymnasium_reward=float(gym_reward))


def make(task: str, **kwargs):
    """Registered entry point of ``D4RL-AdroitHand<Task>-v1``."""
    import gymnasium_robotics  # noqa: F401  (registers AdroitHand*-v1)

    gym.register_envs(gymnasium_robotics)
    base = gym.make(GYMNASIUM_IDS[task], disable_env_checker=True, **kwargs).unwrapped  # time limit: D4RL's
    return D4RLAdroit(base, task)
