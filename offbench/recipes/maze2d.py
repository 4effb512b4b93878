"""Point-mass maze recipes in ``PointMaze_{UMaze,Medium,Large}-v3`` (Gymnasium-Robotics); no files needed.

maze2d (``maze2d-{umaze,medium,large}-v1``, D4RL's ``scripts/generation/generate_maze2d_datasets.py`` then
``relabel_maze2d_rewards.py``): **one continuous trajectory** -- the environment is reset once and never
again. A planner over the maze grid (shortest paths by breadth-first search) gives the next cell centre as
a waypoint, a PD controller drives to it (``a = 10 (waypoint - pos) - 1 * vel``, clipped, Gaussian action
noise of std 0.5, clipped again); a new target (a random free cell, +-0.1) is drawn when the controller
has solved the current one (within 0.1 of it, moving less than 0.1 per step) or after the evaluation
horizon (300 / 600 / 800 steps), D4RL's ``done``. D4RL's sizes (1M / 2M / 4M transitions). The commanded
target is kept only in the stored ``desired_goal`` (D4RL's ``infos/goal``): the maze2d suite's observation
is the 4-D ``observation`` (position, velocity), and rewards are relabelled to the fixed evaluation goal
(1 within the radius of the "g" cell's centre). Stored as segments of that trajectory, one per target
(a truncation at each target change: the next segment starts where the last one ended; no terminals).
Evaluation as D4RL's: a random start cell (the map has no "r" cell), the fixed goal cell.

The pointmaze stitching sets, built with this planner/controller, are in ``pointmaze.py``.

Reference returns (maze2d): uniform-random actions and the noise-free planner/controller in the
evaluation environment (fixed start and goal), seeded.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from offbench.recipes import common, references, writer
from offbench.recipes.recipes import register_recipe

MAZES = {  # name: (env id, horizon, D4RL size, reset cell, goal cell)
    "umaze": ("PointMaze_UMaze-v3", 300, 1_000_000, (3, 1), (1, 1)),
    "medium": ("PointMaze_Medium-v3", 600, 2_000_000, (1, 1), (6, 6)),
    "large": ("PointMaze_Large-v3", 800, 4_000_000, (1, 1), (7, 9)),
}
P_GAIN, D_GAIN, ACTION_NOISE = 10.0, -1.0, 0.5
# PointMaze's reward radius (Gymnasium-Robotics point_maze.py: sparse reward 1 within 0.45 of the goal); the
# data is relabelled with the evaluation environment's own rule (D4RL: 0.5 in maze_model.py and in its relabel)
GOAL_RADIUS = 0.45
SOLVE_THRESH = 0.1  # D4RL waypoint_controller.py: solve_thresh and vel_thresh
TARGET_NOISE = 0.1  # D4RL maze_model.set_target: the cell + U(-0.1, 0.1)
MAZE2D_VERSION = 2  # 2: one continuous trajectory, fixed-goal relabel, 4-D observation, random eval start


def base_map(maze: str) -> list:
    from gymnasium_robotics.envs.maze import maps

    return [list(r) for r in {"umaze": maps.U_MAZE, "medium": maps.MEDIUM_MAZE, "large": maps.LARGE_MAZE}[maze]]


def eval_map(maze: str, fixed_start: bool = True) -> list:
    """The maze with the fixed target (``g``) cell and, for the stitching sets, the fixed start (``r``);
    maze2d evaluates from a random start, as D4RL's ``MazeEnv.reset_model`` (no ``r``: Gymnasium-Robotics
    then starts at a random free cell)."""
    m = base_map(maze)
    _, _, _, (rr, rc), (gr, gc) = MAZES[maze]
    m[gr][gc] = "g"
    if fixed_start:
        m[rr][rc] = "r"
    return m


def eval_kwargs(maze: str, fixed_start: bool = True) -> dict:
    return {"maze_map": eval_map(maze, fixed_start), "continuing_task": True, "reset_target": False}


def eval_spec(maze: str, fixed_start: bool = True):
    import dataclasses

    import gymnasium as gym

    from offbench.envs import _register_all

    env_id, horizon, *_ = MAZES[maze]
    _register_all()
    spec = gym.spec(env_id)
    return dataclasses.replace(
        spec, kwargs={**spec.kwargs, **eval_kwargs(maze, fixed_start)}, max_episode_steps=horizon
    )


def _factory(maze: str, kwargs: dict, horizon: int):
    from offbench.envs import make_env

    env_id = MAZES[maze][0]
    return lambda: make_env(env_id, kwargs, horizon)


class Planner:
    """Shortest paths on the maze grid: the next cell towards a goal cell (BFS from the goal, cached)."""

    def __init__(self, maze_map):
        self.free = {(r, c) for r, row in enumerate(maze_map) for c, v in enumerate(row) if v != 1}
        self._dist: dict = {}

    def distances(self, goal: tuple) -> dict:
        if goal not in self._dist:
            d = {goal: 0}
            q = deque([goal])
            while q:
                r, c = q.popleft()
                for nb in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                    if nb in self.free and nb not in d:
                        d[nb] = d[(r, c)] + 1
                        q.append(nb)
            self._dist[goal] = d
        return self._dist[goal]

    def next_cell(self, cell: tuple, goal: tuple) -> tuple:
        d = self.distances(goal)
        if cell not in d or cell == goal:
            return goal
        r, c = cell
        return min(((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)), key=lambda nb: d.get(nb, 10**9))


class WaypointController(common.Behavior):
    """D4RL's maze2d behaviour: BFS waypoint + PD control (+ Gaussian action noise)."""

    def __init__(self, maze_map, noise: float = ACTION_NOISE):
        self.planner = Planner(maze_map)
        self.noise = noise
        self.mazes: dict = {}

    def start(self, slot, obs, env):
        self.mazes[slot] = env.unwrapped.maze

    def target(self, slot) -> np.ndarray | None:  # goal the controller drives to (default: the env's)
        return None

    def act(self, obs_list, rng):
        out = np.zeros((len(obs_list), 2))
        for i, o in enumerate(obs_list):
            slot = self.live[i] if len(self.live) == len(obs_list) else i
            maze = self.mazes[slot]
            pos, vel = o["observation"][:2], o["observation"][2:4]
            goal = self.target(slot)
            goal = np.asarray(o["desired_goal"]) if goal is None else goal
            cell = tuple(int(v) for v in maze.cell_xy_to_rowcol(pos))
            gcell = tuple(int(v) for v in maze.cell_xy_to_rowcol(goal))
            nxt = self.planner.next_cell(cell, gcell)
            wp = goal if nxt == gcell else maze.cell_rowcol_to_xy(np.array(nxt))
            out[i] = P_GAIN * (wp - pos) + D_GAIN * vel
        if self.noise:
            out = out + self.noise * rng.standard_normal(out.shape)
        return out


def refs_for(maze: str, n: int) -> dict:
    env_id, horizon, *_ = MAZES[maze]
    return references.reference_returns(
        {"env_id": env_id, "maze": maze, "horizon": horizon, "kwargs": "eval-random-start"},
        _factory(maze, eval_kwargs(maze, fixed_start=False), horizon),
        WaypointController(eval_map(maze), noise=0.0),
        "planner + PD controller, no noise",
        n,
    )


def continuous_trajectory(maze: str, size: int, seed: int, progress: bool = False) -> tuple[list[dict], dict]:
    """D4RL's maze2d collection: ``size`` steps of one trajectory, cut into one segment per target."""
    env_id, horizon, *_ = MAZES[maze]
    env = _factory(maze, {"maze_map": base_map(maze), "continuing_task": True, "reset_target": False}, horizon)()
    u = env.unwrapped
    rng = np.random.default_rng(seed)
    free = [(r, c) for r, row in enumerate(base_map(maze)) for c, v in enumerate(row) if v != 1]
    ctrl = WaypointController(base_map(maze))
    ctrl.live = [0]

    def new_target():
        u.goal = u.maze.cell_rowcol_to_xy(np.array(free[rng.integers(len(free))])) + rng.uniform(
            -TARGET_NOISE, TARGET_NOISE, 2
        )
        u.update_target_site_pos()
        return {**obs, "desired_goal": u.goal.copy()}

    obs, _ = env.reset(seed=common.reset_seed(seed, 0))
    ctrl.start(0, obs, env)
    obs = new_target()
    bar = common._bar(progress, size, f"maze2d-{maze}-v1")
    segs, seg, ts, prev, n_solved = [], None, 0, obs["achieved_goal"].copy(), 0
    with common.one_blas_thread():
        for i in range(size):
            if seg is None:
                seg = {"obs": [common._copy_obs(obs)], "act": []}
            a = np.clip(ctrl.act([obs], rng), -1.0, 1.0)[0]  # act() adds the N(0, 0.5) noise
            obs, *_ = u.step(a.astype(np.float32))
            seg["obs"].append(common._copy_obs(obs)), seg["act"].append(a.astype(np.float32))
            ts += 1
            pos = obs["achieved_goal"]
            solved = np.linalg.norm(pos - u.goal) < SOLVE_THRESH and np.linalg.norm(pos - prev) < SOLVE_THRESH
            prev = pos.copy()
            n_solved += int(solved)
            if solved or ts >= horizon or i == size - 1:
                segs.append(seg)
                seg, ts = None, 0
                obs = new_target()
                if bar is not None:
                    bar.update(len(segs[-1]["act"]))
    if bar is not None:
        bar.close()
    env.close()
    return segs, {"segments": len(segs), "targets_solved": n_solved}


def relabel_segments(segs: list[dict], goal_xy) -> list[dict]:
    """Segments as Minari episodes, rewarded for the fixed evaluation goal (next position within the radius)."""
    eps = []
    for s in segs:
        obs = common._stack_obs(s["obs"])
        rew = (np.linalg.norm(obs["achieved_goal"][1:] - goal_xy, axis=-1) <= GOAL_RADIUS).astype(np.float64)
        T = len(s["act"])
        trunc = np.zeros(T, bool)
        trunc[-1] = True
        eps.append(
            {
                "observations": obs,
                "actions": np.stack(s["act"]),
                "rewards": rew,
                "terminations": np.zeros(T, bool),
                "truncations": trunc,
                "return": float(rew.sum()),
                "complete": True,
            }
        )
    return eps


def build_maze2d(maze: str, size, seed: int, progress: bool = False) -> str:
    env_id, horizon, d4rl_size, _start, goal_cell = MAZES[maze]
    name = f"maze2d-{maze}-v1"
    n = common.resolve_size(size, d4rl_size)
    refs = refs_for(maze, n)
    segs, traj = continuous_trajectory(maze, n, seed, progress)
    env = _factory(maze, eval_kwargs(maze, fixed_start=False), horizon)()
    goal_xy = env.unwrapped.maze.cell_rowcol_to_xy(np.array(goal_cell))
    env.close()
    eps = relabel_segments(segs, goal_xy)
    rewarded = float(sum(e["rewards"].sum() for e in eps)) / n
    prov = {
        "seed": seed,
        "size": n,
        "env_id": env_id,
        "horizon": horizon,
        "recipe_version": MAZE2D_VERSION,
        "trajectory": "one continuous trajectory (no reset), one stored segment per target",
        **traj,
        "eval_goal_cell": list(goal_cell),
        "eval_start": "random free cell",
        "reward": f"sparse, 1 within {GOAL_RADIUS} of the evaluation goal (relabelled)",
        "rewarded_step_fraction": round(rewarded, 5),
        "behaviour": {
            "planner": "BFS over the maze grid, next cell centre as waypoint",
            "controller": f"a = {P_GAIN} (waypoint - pos) + {D_GAIN} vel",
            "action_noise_std": ACTION_NOISE,
            "targets": f"a random free cell +-{TARGET_NOISE} when solved or after {horizon} steps",
            **common.episode_stats(eps),
        },
    }
    return writer.write(
        name,
        eps,
        env_id,
        eval_spec(maze, fixed_start=False),
        refs,
        prov,
        f"{name} rebuilt locally with D4RL's maze2d recipe in {env_id}; not D4RL's data",
    )


def _register():
    for maze, (env_id, _horizon, size, *_r) in MAZES.items():
        register_recipe(
            f"maze2d-{maze}-v1",
            "maze2d",
            (
                lambda m: (
                    lambda size=None, seed=0, behavior_dir=None, progress=False: build_maze2d(m, size, seed, progress)
                )
            )(maze),
            size,
            description=f"D4RL maze2d recipe in {env_id} (planner + PD controller)",
            version=MAZE2D_VERSION,
        )


_register()
