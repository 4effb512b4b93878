"""Point-mass stitching sets ``pointmaze-{umaze,medium,large}-{play,diverse}-v0`` in ``PointMaze_*-v3``
(offbench's own, in the spirit of D4RL's AntMaze play/diverse sets, *not* AntMaze data): maze2d's BFS planner and
PD controller (``maze2d.py``) navigate to many intermediate goals
(diverse: any free cell; play: a fixed set of hand-picked cells), **never the evaluation goal cell** (as D4RL's
AntMaze play/diverse goals, which exclude the evaluation goal); the reward is seen where a path to another goal
crosses the evaluation goal cell (the play sets include the dead end behind it where there is one). The *start
region* is the first half of the shortest start -> goal path (cells at most half its length from the start): an
episode that has been in the start region is split where it last left that region before entering the goal cell,
so every rewarded episode starts outside it, and a build is accepted only if none does
(``check_stitching``; the count is in the provenance and the data card). Observations carry the evaluation goal;
rewards are the sparse reward for the evaluation goal (1 within 0.45 of it); no terminals. 1M transitions,
episodes of 1000 steps. umaze's goal is a dead end that no path crosses: its stitching sets carry (almost) no
reward, and no validation tier uses them. Scored by success rate.
"""

from __future__ import annotations

import numpy as np

from offbench.errors import OffbenchError
from offbench.recipes import common, writer
from offbench.recipes.maze2d import (
    ACTION_NOISE,
    GOAL_RADIUS,
    MAZES,
    Planner,
    WaypointController,
    _factory,
    base_map,
    eval_spec,
)
from offbench.recipes.recipes import register_recipe

PLAY_CELLS = {  # hand-picked goal cells of the "play" sets (corridor ends and junctions); never the evaluation
    # goal cell; medium (6, 5) and large (7, 10) are the dead ends behind the evaluation goal, so paths to them cross it
    "umaze": [(1, 3), (3, 3), (2, 3), (3, 2), (1, 2)],
    "medium": [(1, 1), (1, 5), (2, 4), (3, 3), (4, 1), (5, 4), (6, 1), (4, 6), (2, 6), (6, 5)],
    "large": [
        (1, 1),
        (1, 4),
        (1, 6),
        (1, 10),
        (3, 1),
        (3, 5),
        (3, 9),
        (5, 2),
        (5, 8),
        (7, 1),
        (7, 5),
        (3, 10),
        (7, 10),
    ],
}
STITCH_SIZE, STITCH_EPISODE = 1_000_000, 1000
# 2: the evaluation goal is never commanded; split on the start region (first half of the start -> goal path), the
# build refused if a rewarded episode starts there (1: the goal cell was a play goal; split after the start cell)
STITCH_VERSION = 2


class SubgoalController(WaypointController):
    """Navigates to goals it draws itself (the stitching sets): from ``cells`` (play) or any free cell
    (diverse); a new one on arrival."""

    def __init__(self, maze_map, cells, seed, noise=ACTION_NOISE):
        super().__init__(maze_map, noise)
        self.cells = [tuple(c) for c in cells]
        self.rng = np.random.default_rng(seed + 17)
        self.goals: dict = {}

    def _draw(self, slot):
        maze = self.mazes[slot]
        cell = self.cells[self.rng.integers(len(self.cells))]
        self.goals[slot] = (
            maze.cell_rowcol_to_xy(np.array(cell)) + self.rng.uniform(-0.25, 0.25, 2) * maze.maze_size_scaling
        )

    def start(self, slot, obs, env):
        super().start(slot, obs, env)
        self._draw(slot)

    def observe(self, slot, obs, env):
        if np.linalg.norm(obs["achieved_goal"] - self.goals[slot]) <= GOAL_RADIUS:
            self._draw(slot)

    def target(self, slot):
        return self.goals[slot]


def start_region(maze: str) -> list[tuple]:
    """The first half of the shortest path from the evaluation start cell to the goal cell (BFS on the grid):
    the cells at most half the path's length from the start."""
    _, _, _, start_cell, goal_cell = MAZES[maze]
    planner = Planner(base_map(maze))
    path = [start_cell]
    while path[-1] != goal_cell:
        path.append(planner.next_cell(path[-1], goal_cell))
    return path[: (len(path) - 1) // 2 + 1]


def _cells(ep: dict, maze_obj) -> list[tuple]:
    return [tuple(int(v) for v in maze_obj.cell_xy_to_rowcol(p)) for p in ep["observations"]["achieved_goal"]]


def split_stitching(ep: dict, maze_obj, region: set, goal_cell: tuple) -> list[dict]:
    """Split an episode that has been in the start ``region`` where it last left the region before it enters the
    goal cell: the piece after the split starts outside the region."""
    cells = _cells(ep, maze_obj)
    pieces, begin, last_in = [], 0, 0 if cells[0] in region else None
    for t in range(1, len(cells)):
        if cells[t] == goal_cell and last_in is not None:
            pieces.append((begin, last_in + 1))  # observations begin..last_in+1 (the first outside the region)
            begin, last_in = last_in + 1, None
        if cells[t] in region:
            last_in = t
    pieces.append((begin, len(cells) - 1))
    out = []
    for a, b in pieces:
        if b <= a:
            continue
        obs = {k: v[a : b + 1] for k, v in ep["observations"].items()}
        trunc = np.zeros(b - a, bool)
        trunc[-1] = True
        rew = ep["rewards"][a:b]
        out.append(
            {
                "observations": obs,
                "actions": ep["actions"][a:b],
                "rewards": rew,
                "terminations": np.zeros(b - a, bool),
                "truncations": trunc,
                "return": float(np.sum(rew)),
                "complete": True,
            }
        )
    return out


def check_stitching(eps: list[dict], maze_obj, region: set, name: str) -> dict:
    """The stitching check: no rewarded episode may start in the start region (else the set needs no stitching);
    raises OffbenchError naming the fix; returns the counts the provenance and the data card show."""
    rewarded = [e for e in eps if e["rewards"].sum() > 0]
    bad = sum(_cells(e, maze_obj)[0] in region for e in rewarded)
    if bad:
        raise OffbenchError(
            f"{name}: {bad} rewarded episodes start in the first half of the start -> goal path, so the set needs no "
            "stitching; this is a bug in the recipe's split (offbench/recipes/maze2d.py), report it"
        )
    return {
        "start_region": [list(c) for c in sorted(region)],
        "episodes": len(eps),
        "rewarded_episodes": len(rewarded),
        "rewarded_episodes_from_start_region": bad,
        "rewarded_step_fraction": round(
            float(sum(e["rewards"].sum() for e in eps)) / sum(len(e["rewards"]) for e in eps), 6
        ),
        "eval_goal_commanded": False,
    }


def build_stitch(maze: str, kind: str, size, seed: int, progress: bool = False) -> str:
    env_id, _, _, start_cell, goal_cell = MAZES[maze]
    name = f"pointmaze-{maze}-{kind}-v0"
    n = common.resolve_size(size, STITCH_SIZE)
    free = [(r, c) for r, row in enumerate(base_map(maze)) for c, v in enumerate(row) if v != 1]
    # the evaluation goal cell is never commanded (D4RL's play goals exclude it): reward comes from paths that cross it
    cells = [c for c in (PLAY_CELLS[maze] if kind == "play" else free) if c != goal_cell]
    assert set(cells) <= set(free), f"play cells of {maze} must be free cells"
    kwargs = {"maze_map": base_map(maze), "continuing_task": True, "reset_target": False}
    factory = _factory(maze, kwargs, STITCH_EPISODE)
    ctrl = SubgoalController(base_map(maze), cells, seed)
    raw = common.collect(factory, ctrl, n, seed, progress=progress, desc=name)
    env = factory()
    maze_obj = env.unwrapped.maze
    goal_xy = maze_obj.cell_rowcol_to_xy(np.array(goal_cell))
    env.close()
    region = set(start_region(maze))
    eps = []
    for ep in raw:
        obs = ep["observations"]
        reached = np.linalg.norm(obs["achieved_goal"][1:] - goal_xy, axis=-1) <= GOAL_RADIUS
        obs["desired_goal"] = np.broadcast_to(goal_xy, obs["desired_goal"].shape).copy()
        ep = {**ep, "rewards": reached.astype(np.float64), "terminations": np.zeros(len(reached), bool)}
        eps += split_stitching(ep, maze_obj, region, goal_cell)
    check = check_stitching(eps, maze_obj, region, name)
    refs = {"ref_min_score": 0.0, "ref_max_score": 1.0, "note": "scored by success rate"}
    prov = {
        "seed": seed,
        "size": n,
        "env_id": env_id,
        "kind": kind,
        "recipe_version": STITCH_VERSION,
        "episode_steps": STITCH_EPISODE,
        "eval_start_cell": list(start_cell),
        "eval_goal_cell": list(goal_cell),
        "stitching_check": check,
        "behaviour": {
            "controller": "BFS waypoints + PD control, action noise std 0.5",
            "intermediate_goals": [list(c) for c in cells] if kind == "play" else "any free cell but the goal cell",
            "split": "where an episode last left the start region (first half of the start -> goal path) before "
            "entering the goal cell",
            "reward": "sparse, 1 within 0.45 of the evaluation goal",
            **common.episode_stats(eps),
        },
        "label": "offbench pointmaze stitching set (not AntMaze, not D4RL)",
    }
    return writer.write(
        name,
        eps,
        env_id,
        eval_spec(maze),
        refs,
        prov,
        f"{name}: offbench's point-mass stitching set ({kind}) in {env_id}, built locally",
    )


def _register():
    for maze, (env_id, *_r) in MAZES.items():
        for kind in ("play", "diverse"):
            register_recipe(
                f"pointmaze-{maze}-{kind}-v0",
                "pointmaze",
                (
                    lambda m, k: (
                        lambda size=None, seed=0, behavior_dir=None, progress=False: build_stitch(
                            m, k, size, seed, progress
                        )
                    )
                )(maze, kind),
                STITCH_SIZE,
                description=f"point-mass stitching set ({kind}) in {env_id}",
                label="rebuilt (scripted)",
                version=STITCH_VERSION,
            )


_register()
