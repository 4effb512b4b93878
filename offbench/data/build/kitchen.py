"""Kitchen datasets rebuilt with the scripted demonstrator (:mod:`offbench.data.build.kitchen_demo`).

D4RL's kitchen datasets are human teleoperation data that cannot be downloaded here, so these are
"rebuilt (scripted)": every episode is the demonstrator running a sequence of subtask primitives in
``FrankaKitchen-v1`` with variety like human data (randomised start posture, pauses between subtasks,
Gaussian action noise, randomised grasp points). D4RL's composition:

* ``kitchen-complete-v0``: demonstrations of the four target tasks in order (microwave, kettle, light
  switch, slide cabinet); only episodes that complete all four are kept.
* ``kitchen-partial-v0``: target microwave, kettle, bottom burner, light switch; a mix where only some
  episodes (about a quarter) perform the whole target sequence, the others other sequences of subtasks
  (some target tasks among them).
* ``kitchen-mixed-v0``: same target; sequences of other subtasks and orders, none completing the whole
  target set (episodes that happen to complete it are dropped).

Rewards are D4RL's: the number of target tasks completed so far at that step. An episode terminates when
all target tasks are complete (as the evaluation env does) and is truncated at the step limit otherwise.
Reference returns are D4RL's (0 and 4 tasks); evaluation runs ``FrankaKitchen-v1`` with the target task
set and the 280-step limit (the Minari eval-env spec stored with the data).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from offbench.data.build.recipes import register_recipe

LABEL = "rebuilt (scripted)"
EPISODE_STEPS = 280          # FrankaKitchen-v1's (and D4RL's) limit, for data and evaluation
TARGETS = {"complete": ("microwave", "kettle", "light switch", "slide cabinet"),
           "partial": ("microwave", "kettle", "bottom burner", "light switch"),
           "mixed": ("microwave", "kettle", "bottom burner", "light switch")}
SIZES = {"complete": 3680, "partial": 136950, "mixed": 136950}   # D4RL's transition counts
# Subtasks of the undirected (partial / mixed) episodes: all seven (measured table in docs/kitchen.md).
POOL = ("microwave", "kettle", "bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet")
PARTIAL_TARGET_FRACTION = 0.25
ACTION_NOISE = 0.1           # std of Gaussian noise on the demonstrator's actions, before clipping to [-1, 1]
START_NOISE = 0.08           # start posture: uniform +-0.08 rad on each arm joint
PAUSE_MAX = 4                # 0..4 idle steps before each subtask
VERSION = "kitchen-demo/1"


def _env(targets, terminate=True):
    from offbench.data.build.kitchen_demo import make_env

    return make_env(list(targets), max_episode_steps=EPISODE_STEPS, terminate_on_tasks_completed=terminate)


def _random_order(rng, targets, kind: str) -> list[str]:
    """A subtask sequence for one episode of ``kind``."""
    if kind == "complete":
        return list(targets)
    if kind == "partial" and rng.random() < PARTIAL_TARGET_FRACTION:
        return list(targets)
    while True:
        n = int(rng.integers(2, 5))
        order = [str(t) for t in rng.choice(POOL, size=n, replace=False)]
        if set(targets) <= set(order):   # would (try to) solve the whole target set: not undirected data
            continue
        return order


def episode(kind: str, seed: int, rng: np.random.Generator, env=None, order=None) -> dict:
    """One recorded episode of dataset ``kind`` (complete | partial | mixed)."""
    from offbench.data.build.kitchen_demo import run_tasks

    targets = TARGETS[kind]
    env = env if env is not None else _env(targets)
    order = list(order) if order is not None else _random_order(rng, targets, kind)
    out = run_tasks(env, order, seed, targets=targets, action_noise=ACTION_NOISE, start_noise=START_NOISE,
                    pause_max=PAUSE_MAX, record=True, rng=rng, max_steps=EPISODE_STEPS)
    T = len(out["actions"])
    term = np.zeros(T, bool)
    trunc = np.zeros(T, bool)
    done_all = np.flatnonzero(out["counts"] >= len(targets))
    if len(done_all):       # the eval env terminates when every target task is complete
        T = int(done_all[0]) + 1
        term = np.zeros(T, bool)
        term[-1] = True
        trunc = np.zeros(T, bool)
    else:
        trunc[-1] = True
    obs = out["observations"][:T + 1]
    goals = {t: _goal(t) for t in targets}
    # the env's dict observation: 'observation' (59) plus per-task achieved/desired goals (targets only)
    achieved = {t: out["achieved_goal"][t][:T + 1] for t in targets}
    return {
        "observations": {"observation": obs, "achieved_goal": achieved,
                         "desired_goal": {t: np.repeat(goals[t][None], T + 1, axis=0) for t in targets}},
        "actions": out["actions"][:T], "rewards": out["counts"][:T].astype(np.float64),
        "terminations": term, "truncations": trunc,
        "order": order, "completed": [t for t in out["completed"]], "n_targets": int(out["counts"][T - 1]),
    }


def _goal(task):
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS

    return np.asarray(OBS_ELEMENT_GOALS[task], np.float64)


def collect(kind: str, size: int, seed: int = 0, progress: bool = False) -> tuple[list[dict], dict]:
    """Episodes of ``kind`` until ``size`` transitions (the last episode cut, as D4RL cut its buffers)."""
    targets = TARGETS[kind]
    env = _env(targets)
    rng = np.random.default_rng([int(seed), list(SIZES).index(kind)])
    eps, n, k, dropped, t0 = [], 0, 0, 0, time.time()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=size, desc=f"kitchen-{kind}-v0", unit="step")
    while n < size:
        ep = episode(kind, (int(seed) * 1_000_003 + k) % (2 ** 31 - 1), rng, env)
        k += 1
        full = ep["n_targets"] == len(targets)
        if (kind == "complete" and not full) or (kind == "mixed" and full):
            dropped += 1
            if dropped > 50 + 2 * len(eps):
                from offbench.errors import OffbenchError
                raise OffbenchError(f"the kitchen demonstrator failed on {dropped} episodes of {kind}; "
                                    f"run scripts/measure_kitchen.py to see which subtask breaks")
            continue
        take = min(len(ep["actions"]), size - n)
        if take < len(ep["actions"]):
            ep = _cut(ep, take)
        eps.append(ep)
        n += take
        if bar is not None:
            bar.update(take)
    if bar is not None:
        bar.close()
    env.close()
    dt = time.time() - t0
    stats = {"episodes": len(eps), "dropped_episodes": dropped, "transitions": n, "seconds": round(dt, 1),
             "episodes_all_targets": int(sum(e["n_targets"] == len(targets) for e in eps)),
             "mean_targets_completed": round(float(np.mean([e["n_targets"] for e in eps])), 3),
             "orders": _order_counts(eps)}
    return eps, stats


def _cut(ep: dict, take: int) -> dict:
    def cut_obs(o):
        return {k: cut_obs(v) for k, v in o.items()} if isinstance(o, dict) else o[:take + 1]
    out = dict(ep)
    out["observations"] = cut_obs(ep["observations"])
    for key in ("actions", "rewards", "terminations", "truncations"):
        out[key] = ep[key][:take]
    out["terminations"] = out["terminations"].copy()
    out["truncations"] = out["truncations"].copy()
    if not out["terminations"][-1]:
        out["truncations"][-1] = True
    out["n_targets"] = int(out["rewards"][-1])
    return out


def _order_counts(eps) -> dict:
    counts: dict = {}
    for e in eps:
        key = " > ".join(e["order"])
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:20])


def build(kind: str, size=None, seed: int = 0, behavior_dir=None, progress: bool = False) -> str:
    """Write the Minari dataset ``rebuilt/kitchen-<kind>-v0`` and return its id."""
    from offbench.data.build.common import resolve_size
    from offbench.data.build.writer import write_minari

    name = f"kitchen-{kind}-v0"
    n = resolve_size(size, SIZES[kind])
    eps, stats = collect(kind, n, seed, progress)
    targets = TARGETS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = _env(targets)
    provenance = {
        "label": LABEL, "recipe": name, "demonstrator": VERSION,
        "composition": {"complete": "the four target tasks in order, successful episodes only",
                        "partial": f"{PARTIAL_TARGET_FRACTION:.0%} target sequences, the rest other subtask "
                                   "sequences", "mixed": "other subtask sequences, none completing all targets"}[kind],
        "targets": list(targets), "subtask_pool": list(POOL), "seed": int(seed),
        "action_noise_std": ACTION_NOISE, "start_posture_noise_rad": START_NOISE, "pause_steps_max": PAUSE_MAX,
        "episode_steps": EPISODE_STEPS, "reward": "number of target tasks completed so far (D4RL)",
        "collection": stats,
    }
    dataset_id = f"rebuilt/{name}"
    clean = [{k: v for k, v in e.items() if k not in ("order", "completed", "n_targets")} for e in eps]
    write_minari(dataset_id, clean, env, env, ref_min_score=0.0, ref_max_score=4.0,
                 description=f"{name} rebuilt (scripted): a scripted IK demonstrator in FrankaKitchen-v1 instead of "
                             f"D4RL's human teleoperation; targets {', '.join(targets)}",
                 provenance=provenance, algorithm_name="offbench-scripted-kitchen-demonstrator")
    env.close()
    return dataset_id


def _register():
    for kind in TARGETS:
        register_recipe(f"kitchen-{kind}-v0", "kitchen",
                        lambda size=None, seed=0, behavior_dir=None, progress=False, _k=kind:
                        build(_k, size, seed, behavior_dir, progress),
                        SIZES[kind], label=LABEL,
                        description=f"kitchen-{kind}-v0 rebuilt (scripted): IK demonstrator in FrankaKitchen-v1, "
                                    f"{SIZES[kind]} transitions (D4RL's size)")


_register()
