"""Rolling out the scripted Kitchen demonstrator (:mod:`offbench.recipes.kitchen_demo`) in
``FrankaKitchen-v1``: the environment it is measured in, and episodes of a list of subtasks."""

from __future__ import annotations

import warnings

import numpy as np

from offbench.recipes.kitchen_demo import ARM, DLS_DAMPING, DT, SUBTASKS, Demonstrator  # noqa: F401


def make_env(tasks, max_episode_steps=280, **kw):
    import gymnasium as gym
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make("FrankaKitchen-v1", tasks_to_complete=list(tasks), max_episode_steps=max_episode_steps, **kw)


def push(demo, v) -> np.ndarray:
    """The arm action that adds the end-effector velocity ``v`` (m/s) to what ``demo`` (a
    :class:`Demonstrator`) commands: the damped least squares and servo map of :meth:`Demonstrator.action`
    without its bias term (a push, not a pose), scaled by the last action's ``push_gain`` (none while the fingers
    hold, fading within ``kitchen_demo.PUSH_FADE`` of the target). Call it right after ``demo.action`` at the
    same state: it reuses the Jacobian that call computed."""
    jac = demo.jacp[:, :ARM]
    dq = jac.T @ np.linalg.solve(jac @ jac.T + DLS_DAMPING**2 * np.eye(3), np.asarray(v, float))
    return demo.servo(demo.push_gain * dq) / (2 * DT)


def run_tasks(
    env,
    order,
    seed: int,
    *,
    targets=None,
    action_noise: float = 0.0,
    max_steps: int | None = None,
    rng=None,
    start_noise: float = 0.0,
    pause_max: int = 0,
    record: bool = False,
    speed: float = 1.0,
    style=None,
    disturb_sigma: float = 0.0,
    disturb_tau: float = 10.0,
):
    """Run the primitives of ``order`` in sequence in ``env`` (a FrankaKitchen-v1 env) from ``reset(seed)``.

    Returns a dict: ``completed`` (subtasks of ``order`` whose goal was reached, by the env's 0.3 rule,
    in order of completion), ``steps``, and with ``record`` the episode arrays (observations T+1, actions,
    env rewards, per-step completed-target counts, terminations, truncations). ``style`` (a
    :class:`~offbench.recipes.kitchen_demo.Style`) is the demo's persistent variation (default: none).

    ``disturb_sigma`` > 0 adds a disturbance to the arm's *executed* actions that the recorded action does not
    hold (DART, Laskey et al. 2017, "Noise injection for robust imitation learning"): a push of the end
    effector, an Ornstein-Uhlenbeck velocity (m/s per axis: stationary std ``disturb_sigma``, correlation time
    ``disturb_tau`` steps) mapped to the arm's joints (:func:`push`), so the hand drifts off
    the demonstrator's path and the data records the demonstrator's corrections from there.
    Recording the executed action instead would cancel the correction in the data's mean (the disturbance that
    pushed the arm away is what the state reveals). Drawn from ``rng`` only when on, so 0 gives the same demos.
    """
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import BONUS_THRESH, OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    rng = rng if rng is not None else np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    u = env.unwrapped
    if start_noise > 0:  # randomised start posture
        qpos, qvel = u.data.qpos.copy(), u.data.qvel.copy()
        qpos[:ARM] += rng.uniform(-start_noise, start_noise, ARM)
        u.robot_env.set_state(qpos, qvel)
        obs = u._get_obs(u.robot_env._get_obs())
    demo = Demonstrator(env, rng, speed=speed, style=style)
    max_steps = max_steps or 10_000
    targets = list(targets) if targets is not None else list(order)

    def done(task):
        return np.linalg.norm(u.data.qpos[OBS_ELEMENT_INDICES[task]] - OBS_ELEMENT_GOALS[task]) < BONUS_THRESH

    completed, completed_at, ever = [], [], set()
    obs_l, act_l, rew_l, cnt_l, term_l, trunc_l = [obs["observation"].copy()], [], [], [], [], []
    ach_l = [{k: np.array(v, copy=True) for k, v in obs["achieved_goal"].items()}]
    steps, term, trunc = 0, False, False

    def idle(n):
        for _ in range(n):
            yield demo.action(demo.ee()[0], None, 1.0)

    plan = []
    for t in order:
        if pause_max:
            plan.append(("pause", idle(int(rng.integers(0, pause_max + 1)))))
        plan.append((t, demo.primitive(t)))
    spans, xi = [], np.zeros(3)
    c = 1.0 / disturb_tau
    for name, gen in plan:
        spans.append([name, steps, None])
        for a in gen:
            if action_noise > 0:
                a = np.clip(a + rng.normal(0.0, action_noise, 9), -1.0, 1.0)
            executed = a
            if disturb_sigma > 0:
                xi = (1 - c) * xi + disturb_sigma * np.sqrt(2 * c - c * c) * rng.normal(0.0, 1.0, 3)
                executed = a.copy()
                executed[:ARM] = np.clip(a[:ARM] + push(demo, xi), -1.0, 1.0)
            obs, r, term, trunc, info = env.step(executed)
            steps += 1
            for t in SUBTASKS:
                if t not in ever and (t in order or t in targets) and done(t):
                    ever.add(t)
                    completed.append(t)
                    completed_at.append(steps)
            if record:
                obs_l.append(obs["observation"].copy())
                ach_l.append({k: np.array(v, copy=True) for k, v in obs["achieved_goal"].items()})
                act_l.append(np.asarray(a, np.float32))
                rew_l.append(float(r))
                cnt_l.append(float(sum(t in ever for t in targets)))
                term_l.append(bool(term))
                trunc_l.append(bool(trunc))
            if term or trunc or steps >= max_steps:
                break
        spans[-1][2] = steps
        if term or trunc or steps >= max_steps:
            break
    out = {"completed": completed, "completed_at": completed_at, "steps": steps, "spans": spans}
    if record:
        out.update(
            observations=np.asarray(obs_l),
            achieved_goal={k: np.asarray([a[k] for a in ach_l]) for k in ach_l[0]},
            actions=np.asarray(act_l),
            env_rewards=np.asarray(rew_l),
            counts=np.asarray(cnt_l),
            terminations=np.asarray(term_l),
            truncations=np.asarray(trunc_l),
        )
    return out
