"""The task families: datasets (D4RL names as papers use them, Minari ids, hdf5 URLs), evaluation
environments, reference returns for normalised scores, evaluation episodes and reward transforms.

Reference returns are D4RL's (``d4rl/infos.py``: REF_MIN_SCORE / REF_MAX_SCORE). A dataset that carries
its own ``ref_min_score``/``ref_max_score`` in its metadata (Minari datasets, rebuilt datasets) is
normalised with those instead: scores always use the reference returns of the data actually used.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from offbench.errors import OffbenchError

D4RL_GYM_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2/{file}-v2.hdf5"
REBUILT_NAMESPACE = "rebuilt"


@dataclasses.dataclass(frozen=True)
class Task:
    name: str  # D4RL name used in papers, e.g. "hopper-medium-v2"
    env_id: str  # Gymnasium evaluation environment
    ref_min_score: float  # random-policy return (D4RL)
    ref_max_score: float  # expert return (D4RL)
    minari_id: str | None = None  # Minari dataset id of the same data, if published
    url: str | None = None  # D4RL hdf5 download
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    max_episode_steps: int | None = None
    obs_keys: tuple | None = None  # for dict observations: keys concatenated in this order
    rebuilt_env_id: str | None = None  # evaluation environment of data rebuilt here, when not env_id
    # D4RL's own task (offbench/d4rl_envs, registered as D4RL-*): evaluates an original D4RL hdf5 file
    d4rl_env_id: str | None = None
    d4rl_env_kwargs: dict = dataclasses.field(default_factory=dict)

    def eval_env(self, kind: str, data_format: str | None = None) -> tuple[str, dict, str]:
        """(env id, env kwargs, env family) evaluating data of ``kind`` (original / file / rebuilt) stored in
        ``data_format`` (the loader's ``metadata["source"]``: ``d4rl-hdf5`` for D4RL's files, else Minari).
        D4RL's hdf5 files are evaluated in D4RL's own task when one is registered (family ``d4rl``);
        Minari-hosted and rebuilt data in the Gymnasium / Gymnasium-Robotics env they were collected in."""
        if data_format == "d4rl-hdf5" and self.d4rl_env_id:
            return self.d4rl_env_id, dict(self.d4rl_env_kwargs), "d4rl"
        env_id = self.rebuilt_env_id if kind == "rebuilt" and self.rebuilt_env_id else self.env_id
        return env_id, dict(self.env_kwargs), env_family(env_id)

    def env_for(self, kind: str) -> str:
        """The evaluation environment id for Minari-format data of ``kind`` (original / file / rebuilt)."""
        return self.eval_env(kind)[0]

    @property
    def rebuilt_id(self) -> str:
        return f"{REBUILT_NAMESPACE}/{self.name}"


def env_family(env_id: str | None) -> str:
    """Which library's environment ``env_id`` is: ``d4rl`` (offbench's ports of D4RL's tasks, ``D4RL-*``),
    ``gymnasium-robotics`` (mazes, kitchen, Adroit) or ``gymnasium`` (MuJoCo locomotion)."""
    env_id = str(env_id or "")
    if env_id.startswith("D4RL-"):
        return "d4rl"
    if env_id.startswith(("AntMaze", "PointMaze", "FrankaKitchen", "AdroitHand")):
        return "gymnasium-robotics"
    return "gymnasium"


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple
    reward_transform: str = "none"  # none | locomotion (x 1000 / return spread) | antmaze (r - 1)
    score: str = "return"  # return: D4RL-normalised return; success: success rate x 100
    eval_episodes: int = 10
    description: str = ""
    eval_every: int = 5000  # gradient steps between offline evaluations (see EVALUATION below)
    online_eval_every: int = 5000  # environment steps between evaluations when fine-tuning

    def eval_schedule(self, finetuning: bool) -> int:
        """Steps between evaluations: the reference's offline or fine-tuning interval."""
        return self.online_eval_every if finetuning else self.eval_every

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if name in (t.name, t.minari_id, t.rebuilt_id):
                return t
        raise OffbenchError(
            f"suite {self.name!r} has no dataset {name!r}; its datasets: {', '.join(t.name for t in self.tasks)}"
        )


def _locomotion() -> tuple:
    # Evaluation environment per data kind (issue 12 item 9): D4RL's -v2 data was collected with the v3
    # models (mujoco-py). Walker2d-v5 changed the feet's friction (gymnasium/envs/mujoco/walker2d_v5.py
    # changelog: v2-v4 have left foot 1.9, right foot 0.9; v5 sets both to 1.9), so original walker2d data is
    # evaluated in Walker2d-v4 (the v3 model on the new bindings); data rebuilt here in Walker2d-v5 in v5.
    refs = {
        "hopper": ("Hopper-v5", None, -20.272305, 3234.3),
        "halfcheetah": ("HalfCheetah-v5", None, -280.178953, 12135.0),
        "walker2d": ("Walker2d-v4", "Walker2d-v5", 1.629008, 4592.3),
    }
    tasks = []
    for env, (env_id, rebuilt_env, lo, hi) in refs.items():
        for kind in ("random", "medium", "medium-replay", "medium-expert", "expert"):
            file = f"{env}_{kind.replace('-', '_')}"
            tasks.append(
                Task(f"{env}-{kind}-v2", env_id, lo, hi, url=D4RL_GYM_URL.format(file=file), rebuilt_env_id=rebuilt_env)
            )
    return tuple(tasks)


# AntMaze's goal radius (D4RL d4rl/locomotion/goal_reaching_env.py: sparse reward and the evaluation's `done`
# when ||xy - goal|| <= 0.5; scripts/generation/relabel_antmaze_rewards.py relabels the data with the same 0.5).
# Gymnasium-Robotics' AntMaze reports info["success"] at 0.45; the evaluator and the rebuilds use this constant.
ANTMAZE_GOAL_RADIUS = 0.5
MAZE_SCALING = 4.0  # D4RL maze_size_scaling (= Gymnasium-Robotics' AntMaze default)


def maze_cell_xy(maze_map, cell, scaling: float = MAZE_SCALING) -> tuple[float, float]:
    """The world (x, y) of a cell's centre, as Gymnasium-Robotics' ``Maze.cell_rowcol_to_xy``."""
    rows, cols = len(maze_map), len(maze_map[0])
    r, c = cell
    return ((c + 0.5) * scaling - cols / 2 * scaling, rows / 2 * scaling - (r + 0.5) * scaling)


def eval_goal_cell(task: Task) -> tuple[int, int]:
    """The evaluation goal cell ("g" of the task's map) of an AntMaze / maze2d / pointmaze task."""
    mm = task.env_kwargs["maze_map"]
    return next((i, j) for i, row in enumerate(mm) for j, c in enumerate(row) if c == "g")


def eval_goal_xy(task: Task) -> tuple[float, float]:
    """The fixed evaluation goal the rebuilt AntMaze data is relabelled against: the centre of the "g" cell.
    D4RL relabelled against one draw of its goal noise (cell + U[0, 1.5]^2 m); the evaluation environment
    draws a goal around the same centre (Gymnasium-Robotics: +-1 m) at every reset, as D4RL's -v2 does."""
    return maze_cell_xy(task.env_kwargs["maze_map"], eval_goal_cell(task))


def _antmaze() -> tuple:
    # Evaluation as D4RL's: from the fixed start cell "r" to the fixed goal cell "g" (rows, "#" = wall),
    # sparse reward, no goal resets. The rebuilt datasets (offbench/data/build/antmaze.py) use these maps too.
    maps = {
        "umaze": ("#####", "#r..#", "###.#", "#g..#", "#####"),
        "medium": ("########", "#r.##..#", "#..#...#", "##...###", "#..#...#", "#.#..#.#", "#...#.g#", "########"),
        "large": (
            "############",
            "#r...#.....#",
            "#.##.#.#.#.#",
            "#......#...#",
            "#.####.###.#",
            "#..#.#.....#",
            "##.#.#.#.###",
            "#..#...#.g.#",
            "############",
        ),
    }
    cell = {"#": 1, ".": 0, "r": "r", "g": "g"}
    mazes = {
        "umaze": ("AntMaze_UMaze-v4", 700),
        "umaze-diverse": ("AntMaze_UMaze-v4", 700),
        "medium-play": ("AntMaze_Medium-v4", 1000),
        "medium-diverse": ("AntMaze_Medium-v4", 1000),
        "large-play": ("AntMaze_Large-v4", 1000),
        "large-diverse": ("AntMaze_Large-v4", 1000),
    }
    return tuple(
        Task(
            f"antmaze-{k}-v2",
            env_id,
            0.0,
            1.0,
            minari_id=f"D4RL/antmaze/{k}-v1",
            env_kwargs={
                "maze_map": [[cell[ch] for ch in row] for row in maps[k.split("-")[0]]],
                "continuing_task": True,
                "reset_target": False,
            },
            max_episode_steps=steps,
            obs_keys=("achieved_goal", "observation"),
        )
        for k, (env_id, steps) in mazes.items()
    )


def _kitchen() -> tuple:
    # D4RL d4rl/kitchen/__init__.py: complete and partial are KitchenMicrowaveKettleLightSliderV0, mixed is
    # KitchenMicrowaveKettleBottomBurnerLightV0 (TASK_ELEMENTS in d4rl/kitchen/kitchen_envs.py)
    complete = ["microwave", "kettle", "light switch", "slide cabinet"]
    mixed = ["microwave", "kettle", "bottom burner", "light switch"]
    return tuple(
        Task(
            f"kitchen-{k}-v0",
            "FrankaKitchen-v1",
            0.0,
            4.0,
            minari_id=f"D4RL/kitchen/{k}-v2",
            env_kwargs={"tasks_to_complete": goals},
            max_episode_steps=280,
            obs_keys=("observation",),
        )
        for k, goals in (("complete", complete), ("partial", complete), ("mixed", mixed))
    )


def _adroit() -> tuple:
    refs = {
        "pen": ("AdroitHandPen-v1", 96.262799, 3076.8331, 100),
        "door": ("AdroitHandDoor-v1", -56.512833, 2880.5693, 200),
        "hammer": ("AdroitHandHammer-v1", -274.856578, 12794.134825, 200),
        "relocate": ("AdroitHandRelocate-v1", -6.425911, 4233.877797, 200),
    }
    return tuple(
        Task(f"{env}-{kind}-v1", env_id, lo, hi, minari_id=f"D4RL/{env}/{kind}-v2", max_episode_steps=steps)
        for env, (env_id, lo, hi, steps) in refs.items()
        for kind in ("human", "cloned", "expert")
    )


# EVALUATION schedules (episodes per evaluation, interval), each from one reference:
# * locomotion, kitchen, adroit: IQL's code (ikostrikov/implicit_q_learning train_offline.py flags
#   eval_episodes=10, eval_interval=5000; its README runs kitchen/adroit with these defaults); adroit
#   fine-tuning: CORL configs/finetune/iql/*/cloned_v1.yaml (n_episodes 10, eval_freq 5000).
# * antmaze: IQL's README commands for train_offline.py and train_finetune.py (--eval_episodes=100
#   --eval_interval=100000). CORL evaluates 100 episodes every 5000 steps offline (configs/offline/iql/
#   antmaze/*.yaml) and every 50000 when fine-tuning; pass --eval-every 5000 for CORL's curve resolution.
# * maze2d: CORL configs/offline/iql/maze2d/*.yaml (n_episodes 100, eval_freq 5000); pointmaze (offbench's
#   own stitching sets) follows it.
SUITES: dict[str, Suite] = {
    "locomotion": Suite(
        "locomotion",
        _locomotion(),
        reward_transform="locomotion",
        score="return",
        eval_episodes=10,
        description="MuJoCo Hopper/HalfCheetah/Walker2d (D4RL -v2)",
    ),
    "antmaze": Suite(
        "antmaze",
        _antmaze(),
        reward_transform="antmaze",
        score="success",
        eval_episodes=100,
        eval_every=100_000,
        online_eval_every=100_000,
        description="Ant navigation in mazes, sparse reward (D4RL -v2 / Minari D4RL/antmaze)",
    ),
    "kitchen": Suite(
        "kitchen",
        _kitchen(),
        reward_transform="none",
        score="return",
        eval_episodes=10,
        description="FrankaKitchen multi-task manipulation (D4RL -v0 / Minari D4RL/kitchen)",
    ),
    "adroit": Suite(
        "adroit",
        _adroit(),
        reward_transform="none",
        score="return",
        eval_episodes=10,
        description="Dexterous hand manipulation (D4RL -v1 / Minari D4RL/<task>)",
    ),
}


# maze2d (D4RL) and offbench's pointmaze stitching sets, in Gymnasium-Robotics PointMaze-v3. The evaluation
# environment has the fixed target ("g") cell, and for the stitching sets a fixed start ("r")
# (offbench/data/build/maze2d.py); reference
# returns of maze2d are D4RL's (infos.py) for original data, the dataset's own for rebuilt data.
_POINTMAZES = {  # maze: (env id, horizon, reset cell, goal cell, D4RL ref min, ref max)
    "umaze": ("PointMaze_UMaze-v3", 300, (3, 1), (1, 1), 23.85, 161.86),
    "medium": ("PointMaze_Medium-v3", 600, (1, 1), (6, 6), 13.13, 277.39),
    "large": ("PointMaze_Large-v3", 800, (1, 1), (7, 9), 6.7, 273.99),
}
_MAZE_GRIDS = {  # Gymnasium-Robotics maps.U_MAZE / MEDIUM_MAZE / LARGE_MAZE (1 = wall)
    "umaze": ["11111", "10001", "11101", "10001", "11111"],
    "medium": ["11111111", "10011001", "10010001", "11000111", "10010001", "10100101", "10001001", "11111111"],
    "large": [
        "111111111111",
        "100001000001",
        "101101010101",
        "100000010001",
        "101111011101",
        "100101000001",
        "110101010111",
        "100100010001",
        "111111111111",
    ],
}


def _pointmaze_kwargs(maze: str, fixed_start: bool = True) -> dict:
    grid = [[int(ch) for ch in row] for row in _MAZE_GRIDS[maze]]
    _, _, (rr, rc), (gr, gc), _, _ = _POINTMAZES[maze]
    grid[gr][gc] = "g"
    if fixed_start:
        grid[rr][rc] = "r"
    return {"maze_map": grid, "continuing_task": True, "reset_target": False}


def _maze2d() -> tuple:
    # D4RL maze2d: the 4-D observation (position, velocity; the goal is fixed and not observed, as in D4RL's
    # hdf5 files), evaluation from a random start (d4rl/pointmaze/maze_model.py reset_model: a random free
    # cell; no "r" cell in the map) to the fixed goal cell
    return tuple(
        Task(
            f"maze2d-{m}-v1",
            env_id,
            lo,
            hi,
            minari_id=f"D4RL/pointmaze/{m}-v2",
            env_kwargs=_pointmaze_kwargs(m, fixed_start=False),
            max_episode_steps=steps,
            obs_keys=("observation",),
        )
        for m, (env_id, steps, _r, _g, lo, hi) in _POINTMAZES.items()
    )


def _pointmaze() -> tuple:
    return tuple(
        Task(
            f"pointmaze-{m}-{kind}-v0",
            env_id,
            0.0,
            1.0,
            env_kwargs=_pointmaze_kwargs(m),
            max_episode_steps=steps,
            obs_keys=("observation",),
        )
        for m, (env_id, steps, *_rest) in _POINTMAZES.items()
        for kind in ("play", "diverse")
    )


SUITES["maze2d"] = Suite(
    "maze2d",
    _maze2d(),
    reward_transform="none",
    score="return",
    eval_episodes=100,
    description="Point-mass mazes, D4RL maze2d (sparse; PointMaze-v3 with D4RL's fixed goal)",
)
SUITES["pointmaze"] = Suite(
    "pointmaze",
    _pointmaze(),
    reward_transform="antmaze",
    score="success",
    eval_episodes=100,
    description="Point-mass stitching sets (offbench's play/diverse, built locally; not AntMaze): success rate",
)


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise OffbenchError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]


def data_dir() -> Path:
    """Where D4RL hdf5 files live (``$OFFBENCH_DATA_DIR``, default ``~/.offbench/d4rl``)."""
    return Path(os.environ.get("OFFBENCH_DATA_DIR", Path.home() / ".offbench" / "d4rl")).expanduser()


def hdf5_path(task: Task) -> Path:
    return data_dir() / f"{task.name}.hdf5"
