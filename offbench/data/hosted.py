"""The task a hosted (Minari) maze dataset poses, read from the data itself.

Minari's D4RL ports were collected in Gymnasium-Robotics' mazes (minari-dataset-generation-scripts
``scripts/antmaze/create_antmaze_dataset.py``, ``scripts/pointmaze/create_pointmaze_dataset.py``):

* ``D4RL/antmaze/umaze-v1`` was collected in a map with the start cell (3, 1) and the goal cell (1, 1)
  (``maze_map`` G at row 1, R at row 3), while its ``eval_env_spec`` carries ``EVAL_ENV_MAPS["umaze"]``, a
  mirrored maze with other walls (start (1, 3), goal (3, 3); Minari issues #301 and #304);
* the other AntMaze sets and every PointMaze set draw a new goal at every reset (``reset_target`` / the
  default maps without a "g" cell), so their rewards belong to a goal per episode (Minari issue #265),
  while D4RL relabels its data to the one evaluation goal (D4RL ``scripts/generation/relabel_maze2d_rewards.py``
  and ``relabel_antmaze_rewards.py``: sparse reward 1 within 0.5 of the goal).

:func:`maze_task` reads the maze from the dataset's ``env_spec``, the start and goal from the episodes' first
``achieved_goal`` and from ``desired_goal``: a start or goal cell shared by >= 90% of the data is the data's;
otherwise the suite's (D4RL's) cell is used and the rewards are relabelled to it (:func:`relabel`).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np

from offbench import envs
from offbench.data.tasks import MAZE_SCALING, Task, maze_cell_xy

DOMINANT = 0.9  # share of the data in one cell that makes it the data's fixed start / goal
RELABEL_RADIUS = 0.5  # D4RL relabel_maze2d_rewards.py / relabel_antmaze_rewards.py: ||xy - goal|| <= 0.5


@dataclasses.dataclass(frozen=True)
class MazeTask:
    maze_map: list  # rows of 1 (wall) / 0 / "r" (fixed start, if any) / "g" (goal)
    start_cell: tuple | None  # None: a random free cell at every reset (D4RL maze2d)
    goal_cell: tuple
    goal_xy: tuple  # the goal cell's centre
    relabel: bool  # the data's rewards belong to other goals: relabel them to goal_xy
    note: str  # what differs from the suite's map or from the dataset's eval_env_spec, and why


def spec_kwargs(spec_json) -> dict:
    """The ``kwargs`` of a Minari env spec (JSON text or dict); {} when there is none."""
    if not spec_json:
        return {}
    d = json.loads(spec_json) if isinstance(spec_json, str) else dict(spec_json)
    return dict(d.get("kwargs") or {})


def walls(maze_map) -> list:
    return [[1 if c in (1, "1") else 0 for c in row] for row in maze_map]


def cell_of(maze_map, xy, scaling: float) -> tuple[int, int]:
    """The (row, col) holding world point ``xy``, inverse of Gymnasium-Robotics' ``Maze.cell_rowcol_to_xy``."""
    rows, cols = len(maze_map), len(maze_map[0])
    return int(np.floor(rows / 2 - xy[1] / scaling)), int(np.floor(xy[0] / scaling + cols / 2))


def _marked(maze_map, mark) -> tuple | None:
    return next(((i, j) for i, row in enumerate(maze_map) for j, c in enumerate(row) if c == mark), None)


def _dominant(maze_map, points, scaling) -> tuple[tuple, float]:
    cells = Counter(cell_of(maze_map, p, scaling) for p in np.asarray(points))
    cell, n = cells.most_common(1)[0]
    return cell, n / max(1, len(points))


def maze_task(task: Task, goals: dict, meta: dict) -> MazeTask:
    """The evaluation task of hosted maze data: the data's maze, its start and goal where the data has one."""
    data_kw, eval_kw = spec_kwargs(meta.get("env_spec")), spec_kwargs(meta.get("eval_env_spec"))
    scaling = float(data_kw.get("maze_size_scaling") or (MAZE_SCALING if task.env_id.startswith("AntMaze") else 1.0))
    ours = task.env_kwargs["maze_map"]
    maze = walls(data_kw.get("maze_map") or ours)  # no maze_map kwarg: the env's default map, the suite's walls
    notes = []
    if walls(ours) != maze:
        notes.append(f"the data's maze differs from offbench's map of {task.name}; evaluating in the data's maze")
    if eval_kw.get("maze_map") and walls(eval_kw["maze_map"]) != maze:
        notes.append(
            "the dataset's eval_env_spec has a maze with other walls than the data's (Minari issues #301/#304): "
            "not used"
        )
    start, start_share = _dominant(maze, goals["start"], scaling)
    goal, goal_share = _dominant(maze, goals["desired"], scaling)
    relabel = goal_share < DOMINANT
    if relabel:
        goal = _marked(ours, "g")
        notes.append(
            f"the data's rewards are for a new goal each episode (at most {goal_share:.0%} of steps share a goal "
            f"cell): relabelled to the evaluation goal cell {goal}, reward 1 within {RELABEL_RADIUS} m (D4RL "
            "relabel_maze2d_rewards.py / relabel_antmaze_rewards.py)"
        )
    if start_share < DOMINANT:
        start = _marked(ours, "r")  # D4RL's fixed start (AntMaze), or None: a random start (maze2d)
    elif not relabel and (start, goal) != (_marked(ours, "r"), _marked(ours, "g")):
        notes.append(
            f"evaluating from the data's start cell {start} to its goal cell {goal} (offbench's map of "
            f"{task.name}: start {_marked(ours, 'r')}, goal {_marked(ours, 'g')})"
        )
    out = [list(row) for row in maze]
    if start is not None:
        out[start[0]][start[1]] = "r"
    out[goal[0]][goal[1]] = "g"
    xy = maze_cell_xy(out, goal, scaling)
    return MazeTask(out, start, goal, xy, relabel, "; ".join(notes))


def relabel(rewards: np.ndarray, achieved: np.ndarray, goal_xy, radius: float = RELABEL_RADIUS) -> np.ndarray:
    """Sparse rewards for one goal: 1 where the step's resulting position is within ``radius`` of ``goal_xy``."""
    d = np.linalg.norm(np.asarray(achieved, np.float64)[:, :2] - np.asarray(goal_xy, np.float64), axis=-1)
    return (d <= radius).astype(np.asarray(rewards).dtype)


def spec_note(spec_json, env_id: str, kwargs: dict, max_steps) -> str:
    """A note when the dataset's ``eval_env_spec`` (else ``env_spec``, Minari's fallback) names another environment
    than the one evaluated in (its id, episode length or any of its kwargs differ); "" when it agrees or is absent."""
    if not spec_json:
        return ""
    d = json.loads(spec_json) if isinstance(spec_json, str) else dict(spec_json)
    ours = {**envs.registered_kwargs(env_id), **kwargs}  # the kwargs the evaluation env is built with
    theirs = {**envs.registered_kwargs(d.get("id")), **(d.get("kwargs") or {})}
    diff = [f"{k} {theirs.get(k)!r}" for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    if d.get("id") != env_id:
        diff.insert(0, f"id {d.get('id')}")
    if max_steps and d.get("max_episode_steps") not in (None, max_steps):
        diff.append(f"max_episode_steps {d.get('max_episode_steps')}")
    if not diff:
        return ""
    return f"the dataset's env spec differs ({'; '.join(diff)}): evaluating in the suite's {env_id}, as published"
