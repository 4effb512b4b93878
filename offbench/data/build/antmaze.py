"""AntMaze datasets rebuilt with D4RL's recipe and the steered Ant expert (:mod:`.ant_controller`).

D4RL's recipe (``scripts/generation/generate_ant_maze_datasets.py``): a goal-reaching Ant is driven by a
waypoint planner toward a goal; every action gets N(0, 0.2) noise and is clipped; episodes are 1000 steps;
at each timeout a new goal is drawn and the Ant carries on from where it is. Goals and starts:

* ``umaze``: start cell (1, 1), goal cell (3, 1); with a single goal, each timeout restarts at (1, 1);
* ``*-diverse``: random start and random goal over all free cells;
* ``*-play``: random start over the free cells, goals from D4RL's hand-picked cells;

(positions get the environment's uniform +-1 m noise inside their cell). A flipped Ant cannot get up:
a flip ends the episode (a truncation, not a terminal) and the next one starts afresh; flips are counted
in the metadata. What the environment returns is stored (Minari's dict observation: ``observation``,
``achieved_goal``, ``desired_goal``), rewards are the environment's sparse reward (1 within 0.45 m of
the goal), and the evaluation environment is D4RL's: fixed start to fixed goal (see ``suites._antmaze``).
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from offbench.data.build import ant_controller as ac
from offbench.data.build.recipes import register_recipe
from offbench.errors import OffbenchError

EPISODE_STEPS = 1000
ACTION_NOISE = 0.2
DEFAULT_SIZE = 1_000_000
MAZE_SCALING = 4.0

# D4RL's hand-picked goal cells of the *-play datasets (row, col)
PLAY_GOALS = {"medium": [(2, 6), (5, 1), (6, 5)],
              "large": [(1, 6), (3, 5), (3, 10), (5, 2), (7, 4), (7, 6), (7, 9)]}
DATASETS = {"umaze": ("umaze", "fixed"), "umaze-diverse": ("umaze", "diverse"),
            "medium-play": ("medium", "play"), "medium-diverse": ("medium", "diverse"),
            "large-play": ("large", "play"), "large-diverse": ("large", "diverse")}


def task_for(name: str):
    from offbench.data.suites import get_suite
    return get_suite("antmaze").task(name)


def maze_layout(name: str):
    """(plain map with 0/1 cells, start cell, evaluation goal cell) of an antmaze dataset name."""
    mm = task_for(name).env_kwargs["maze_map"]
    start = next((i, j) for i, row in enumerate(mm) for j, c in enumerate(row) if c == "r")
    goal = next((i, j) for i, row in enumerate(mm) for j, c in enumerate(row) if c == "g")
    plain = [[0 if isinstance(c, str) else int(c) for c in row] for row in mm]
    return plain, start, goal


def data_map(plain, kind: str, start, goal, maze: str):
    """The maze map stored in the dataset's (collection) env spec: where starts and goals were drawn."""
    m = [list(r) for r in plain]
    if kind == "fixed":
        m[start[0]][start[1]], m[goal[0]][goal[1]] = "r", "g"
    elif kind == "play":
        for r, c in PLAY_GOALS[maze]:
            m[r][c] = "g"
    return m  # diverse: no marks = every free cell is a start and a goal


class Collector:
    """Runs the steered Ant in one AntMaze environment following one dataset's recipe."""

    def __init__(self, name: str, policy: ac.PinnedPolicy, seed: int = 0, noise: float = ACTION_NOISE,
                 episode_steps: int = EPISODE_STEPS):
        import gymnasium as gym

        from offbench import envs

        if name.startswith("antmaze-"):
            name = name[len("antmaze-"):].removesuffix("-v2")
        if name not in DATASETS:
            raise OffbenchError(f"unknown AntMaze dataset {name!r}; known: {', '.join(DATASETS)}")
        self.name = name
        self.maze, self.kind = DATASETS[name]
        self.d4rl_name = f"antmaze-{name}-v2"
        self.task = task_for(self.d4rl_name)
        self.plain, self.start, self.eval_goal = maze_layout(self.d4rl_name)
        self.free = ac.MazeGrid(self.plain, MAZE_SCALING).free_cells()
        self.goals = PLAY_GOALS[self.maze] if self.kind == "play" else self.free
        self.noise, self.episode_steps = float(noise), int(episode_steps)
        self.rng = np.random.default_rng(seed)
        self.seed = int(seed)
        envs._register_all()
        kwargs = dict(self.task.env_kwargs)
        kwargs["maze_map"] = data_map(self.plain, self.kind, self.start, self.eval_goal, self.maze)
        self.env = gym.make(self.task.env_id, **kwargs, max_episode_steps=episode_steps)
        self.data_spec = self.env.spec
        self.eval_spec = gym.make(self.task.env_id, **self.task.env_kwargs,
                                  max_episode_steps=self.task.max_episode_steps).spec
        self.u = self.env.unwrapped
        self.controller = ac.SteeredAnt(policy, self.plain, MAZE_SCALING)
        self.stats = {"episodes": 0, "flips": 0, "goals": 0, "goals_reached": 0, "steps": 0}
        self._obs = None
        self._resets = 0

    # goal / start choice ------------------------------------------------------------------------------
    def _pick_goal(self, exclude=None):
        if self.kind == "fixed":
            return self.eval_goal
        while True:
            g = tuple(self.goals[self.rng.integers(len(self.goals))])
            if g != exclude or len(self.goals) == 1:
                return g

    def _reset(self):
        if self.kind == "fixed":
            start = self.start
        else:
            start = tuple(self.free[self.rng.integers(len(self.free))])
        goal = self._pick_goal(exclude=start)
        obs, _ = self.env.reset(seed=self.seed * 100_003 + self._resets,
                                options={"reset_cell": np.array(start), "goal_cell": np.array(goal)})
        self._resets += 1
        self.controller.reset()
        return obs

    def _new_goal(self, obs):
        cell = self.controller.grid.cell_of(obs["achieved_goal"])
        goal = self.u.maze.cell_rowcol_to_xy(np.array(self._pick_goal(exclude=cell)))
        self.u.goal = self.u.add_xy_position_noise(goal)
        self.u.update_target_site_pos()
        return {**obs, "desired_goal": self.u.goal.copy()}

    # one episode --------------------------------------------------------------------------------------
    def episode(self, max_steps: int | None = None) -> dict:
        """One episode of at most ``episode_steps`` steps (fewer when the Ant flips, or ``max_steps`` when
        the dataset is full: the last episode is cut short, a truncation like a timeout)."""
        if self._obs is None or self.kind == "fixed":
            obs = self._reset()
        else:
            obs = self._new_goal(self._obs)        # D4RL: a new goal at each timeout, the Ant carries on
        data = self.u.ant_env.data
        O = {k: [np.asarray(v)] for k, v in obs.items()}
        A, R = [], []
        reached = False
        flipped = False
        for _ in range(min(self.episode_steps, max_steps or self.episode_steps)):
            a = self.controller.act(data, self.u.goal)
            a = np.clip(a + self.rng.normal(0.0, self.noise, a.shape), -1.0, 1.0).astype(np.float32)
            obs, r, term, _, info = self.u.step(a)
            for k, v in obs.items():
                O[k].append(np.asarray(v))
            A.append(a)
            R.append(float(r))
            reached |= bool(info.get("success", False))
            if ac.is_flipped(data):
                flipped = True
                break
        T = len(A)
        self.stats["episodes"] += 1
        self.stats["steps"] += T
        self.stats["flips"] += int(flipped)
        self.stats["goals"] += 1
        self.stats["goals_reached"] += int(reached)
        self._obs = None if flipped else obs
        trunc = np.zeros(T, bool)
        trunc[-1] = True
        return {"observations": {k: np.stack(v) for k, v in O.items()}, "actions": np.stack(A),
                "rewards": np.asarray(R), "terminations": np.zeros(T, bool), "truncations": trunc,
                "flipped": flipped, "reached": reached}

    def close(self):
        self.env.close()


def collect(name: str, size: int, policy: ac.PinnedPolicy, seed: int = 0, progress: bool = False,
            episode_steps: int = EPISODE_STEPS):
    """``size`` transitions of dataset ``name`` as a list of episodes, with the collection statistics."""
    col = Collector(name, policy, seed=seed, episode_steps=episode_steps)
    episodes, n = [], 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=size, desc=f"build {col.d4rl_name}", unit="step")
    t0 = time.time()
    while n < size:
        ep = col.episode(max_steps=size - n)     # the last episode is cut to the requested size
        episodes.append(ep)
        n += len(ep["actions"])
        if bar is not None:
            bar.update(len(ep["actions"]))
    if bar is not None:
        bar.close()
    stats = dict(col.stats, seconds=round(time.time() - t0, 1))
    stats["steps_per_second"] = round(stats["steps"] / max(stats["seconds"], 1e-9), 1)
    col.close()
    return episodes, stats, col


def build(name: str, size: int | None, seed: int, behavior_dir: Path, progress: bool = False) -> str:
    """Write the Minari dataset ``rebuilt/antmaze-<name>-v2`` and return its id."""
    from offbench.data.build.common import resolve_size
    from offbench.data.build.writer import write_minari

    size = resolve_size(size, DEFAULT_SIZE)
    policy_path = Path(behavior_dir) / ac.POLICY_FILE
    policy = ac.load_expert(behavior_dir)
    episodes, stats, col = collect(name, size, policy, seed=seed, progress=progress)
    flips = int(sum(ep["flipped"] for ep in episodes))
    provenance = {
        "recipe": f"D4RL antmaze ({col.kind}): steered Ant expert, {EPISODE_STEPS}-step episodes, "
                  f"N(0, {ACTION_NOISE}) action noise then clip, new goal at each timeout",
        "policy": str(ac.POLICY_FILE), "policy_sha256": hashlib.sha256(policy_path.read_bytes()).hexdigest()[:16],
        "seed": int(seed), "transitions": size, "episodes": len(episodes), "flips": flips,
        "flips_per_1000_steps": round(1000.0 * flips / size, 3),
        "goals_reached_fraction": round(float(np.mean([ep["reached"] for ep in episodes])), 4),
        "start_cell": list(col.start) if col.kind == "fixed" else "random free cell",
        "goal_cells": [list(col.eval_goal)] if col.kind == "fixed" else
        ([list(g) for g in PLAY_GOALS[col.maze]] if col.kind == "play" else "random free cell"),
        "eval": {"start_cell": list(col.start), "goal_cell": list(col.eval_goal)},
        "collection": stats,
    }
    dataset_id = col.task.rebuilt_id
    clean = [{k: v for k, v in ep.items() if k not in ("flipped", "reached")} for ep in episodes]
    write_minari(dataset_id, clean, col.data_spec, col.eval_spec, ref_min_score=0.0, ref_max_score=1.0,
                 description=f"{col.d4rl_name} rebuilt locally with a steered Ant expert (D4RL recipe); "
                             f"scores are success rates from the fixed start {col.start} to goal {col.eval_goal}",
                 provenance=provenance, algorithm_name="offbench-steered-ant-expert")
    return dataset_id


def _register():
    for short in DATASETS:
        name = f"antmaze-{short}-v2"
        register_recipe(name, "antmaze",
                        lambda size, seed, behavior_dir, progress=False, _s=short: build(_s, size, seed,
                                                                                          behavior_dir, progress),
                        DEFAULT_SIZE,
                        description=f"{name}: D4RL's AntMaze recipe with the steered Ant expert "
                                    f"(policies/ant-expert.npz), 1M transitions",
                        label="rebuilt")


_register()
