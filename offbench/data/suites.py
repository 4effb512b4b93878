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
    name: str                      # D4RL name used in papers, e.g. "hopper-medium-v2"
    env_id: str                    # Gymnasium evaluation environment
    ref_min_score: float           # random-policy return (D4RL)
    ref_max_score: float           # expert return (D4RL)
    minari_id: str | None = None   # Minari dataset id of the same data, if published
    url: str | None = None         # D4RL hdf5 download
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    max_episode_steps: int | None = None
    obs_keys: tuple | None = None  # for dict observations: keys concatenated in this order

    @property
    def rebuilt_id(self) -> str:
        return f"{REBUILT_NAMESPACE}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple
    reward_transform: str = "none"   # none | locomotion (x 1000 / return spread) | antmaze (r - 1)
    score: str = "return"            # return: D4RL-normalised return; success: success rate x 100
    eval_episodes: int = 10
    description: str = ""

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if name in (t.name, t.minari_id, t.rebuilt_id):
                return t
        raise OffbenchError(f"suite {self.name!r} has no dataset {name!r}; its datasets: "
                            f"{', '.join(t.name for t in self.tasks)}")


def _locomotion() -> tuple:
    refs = {"hopper": ("Hopper-v5", -20.272305, 3234.3), "halfcheetah": ("HalfCheetah-v5", -280.178953, 12135.0),
            "walker2d": ("Walker2d-v5", 1.629008, 4592.3)}
    tasks = []
    for env, (env_id, lo, hi) in refs.items():
        for kind in ("random", "medium", "medium-replay", "medium-expert", "expert"):
            file = f"{env}_{kind.replace('-', '_')}"
            tasks.append(Task(f"{env}-{kind}-v2", env_id, lo, hi, url=D4RL_GYM_URL.format(file=file)))
    return tuple(tasks)


def _antmaze() -> tuple:
    # Evaluation as D4RL's: from the fixed start cell "r" to the fixed goal cell "g" (rows, "#" = wall),
    # sparse reward, no goal resets. The rebuilt datasets (offbench/build/antmaze.py) use these maps too.
    maps = {"umaze": ("#####", "#r..#", "###.#", "#g..#", "#####"),
            "medium": ("########", "#r.##..#", "#..#...#", "##...###", "#..#...#", "#.#..#.#", "#...#.g#",
                       "########"),
            "large": ("############", "#r...#.....#", "#.##.#.#.#.#", "#......#...#", "#.####.###.#",
                      "#..#.#.....#", "##.#.#.#.###", "#..#...#.g.#", "############")}
    cell = {"#": 1, ".": 0, "r": "r", "g": "g"}
    mazes = {"umaze": ("AntMaze_UMaze-v4", 700), "umaze-diverse": ("AntMaze_UMaze-v4", 700),
             "medium-play": ("AntMaze_Medium-v4", 1000), "medium-diverse": ("AntMaze_Medium-v4", 1000),
             "large-play": ("AntMaze_Large-v4", 1000), "large-diverse": ("AntMaze_Large-v4", 1000)}
    return tuple(Task(f"antmaze-{k}-v2", env_id, 0.0, 1.0, minari_id=f"D4RL/antmaze/{k}-v1",
                      env_kwargs={"maze_map": [[cell[ch] for ch in row] for row in maps[k.split("-")[0]]],
                                  "continuing_task": True, "reset_target": False},
                      max_episode_steps=steps, obs_keys=("achieved_goal", "observation"))
                 for k, (env_id, steps) in mazes.items())


def _kitchen() -> tuple:
    complete = ["microwave", "kettle", "light switch", "slide cabinet"]
    partial = ["microwave", "kettle", "bottom burner", "light switch"]
    return tuple(Task(f"kitchen-{k}-v0", "FrankaKitchen-v1", 0.0, 4.0, minari_id=f"D4RL/kitchen/{k}-v2",
                      env_kwargs={"tasks_to_complete": goals}, max_episode_steps=280, obs_keys=("observation",))
                 for k, goals in (("complete", complete), ("partial", partial), ("mixed", partial)))


def _adroit() -> tuple:
    refs = {"pen": ("AdroitHandPen-v1", 96.262799, 3076.8331, 100),
            "door": ("AdroitHandDoor-v1", -56.512833, 2880.5693, 200),
            "hammer": ("AdroitHandHammer-v1", -274.856578, 12794.134825, 200),
            "relocate": ("AdroitHandRelocate-v1", -6.425911, 4233.877797, 200)}
    return tuple(Task(f"{env}-{kind}-v1", env_id, lo, hi, minari_id=f"D4RL/{env}/{kind}-v2", max_episode_steps=steps)
                 for env, (env_id, lo, hi, steps) in refs.items() for kind in ("human", "cloned", "expert"))


SUITES: dict[str, Suite] = {
    "locomotion": Suite("locomotion", _locomotion(), reward_transform="locomotion", score="return",
                        eval_episodes=10, description="MuJoCo Hopper/HalfCheetah/Walker2d (D4RL -v2)"),
    "antmaze": Suite("antmaze", _antmaze(), reward_transform="antmaze", score="success", eval_episodes=100,
                     description="Ant navigation in mazes, sparse reward (D4RL -v2 / Minari D4RL/antmaze)"),
    "kitchen": Suite("kitchen", _kitchen(), reward_transform="none", score="return", eval_episodes=10,
                     description="FrankaKitchen multi-task manipulation (D4RL -v0 / Minari D4RL/kitchen)"),
    "adroit": Suite("adroit", _adroit(), reward_transform="none", score="return", eval_episodes=10,
                    description="Dexterous hand manipulation (D4RL -v1 / Minari D4RL/<task>)"),
}


# maze2d (D4RL) and offbench's pointmaze stitching sets, in Gymnasium-Robotics PointMaze-v3. The evaluation
# environment has D4RL's fixed start ("r") and target ("g") cells (offbench/build/maze2d.py); reference
# returns of maze2d are D4RL's (infos.py) for original data, the dataset's own for rebuilt data.
_POINTMAZES = {  # maze: (env id, horizon, reset cell, goal cell, D4RL ref min, ref max)
    "umaze": ("PointMaze_UMaze-v3", 300, (3, 1), (1, 1), 23.85, 161.86),
    "medium": ("PointMaze_Medium-v3", 600, (1, 1), (6, 6), 13.13, 277.39),
    "large": ("PointMaze_Large-v3", 800, (1, 1), (7, 9), 6.7, 273.99),
}
_MAZE_GRIDS = {  # Gymnasium-Robotics maps.U_MAZE / MEDIUM_MAZE / LARGE_MAZE (1 = wall)
    "umaze": ["11111", "10001", "11101", "10001", "11111"],
    "medium": ["11111111", "10011001", "10010001", "11000111", "10010001", "10100101", "10001001", "11111111"],
    "large": ["111111111111", "100001000001", "101101010101", "100000010001", "101111011101", "100101000001",
              "110101010111", "100100010001", "111111111111"],
}


def _pointmaze_kwargs(maze: str) -> dict:
    grid = [[int(ch) for ch in row] for row in _MAZE_GRIDS[maze]]
    _, _, (rr, rc), (gr, gc), _, _ = _POINTMAZES[maze]
    grid[rr][rc], grid[gr][gc] = "r", "g"
    return {"maze_map": grid, "continuing_task": True, "reset_target": False}


def _maze2d() -> tuple:
    # D4RL's maze2d hdf5 files store 4-D observations without the goal; the Minari version keeps it
    return tuple(Task(f"maze2d-{m}-v1", env_id, lo, hi, minari_id=f"D4RL/pointmaze/{m}-v2", env_kwargs=_pointmaze_kwargs(m), max_episode_steps=steps,
                      obs_keys=("observation", "desired_goal"))
                 for m, (env_id, steps, _r, _g, lo, hi) in _POINTMAZES.items())


def _pointmaze() -> tuple:
    return tuple(Task(f"pointmaze-{m}-{kind}-v0", env_id, 0.0, 1.0, env_kwargs=_pointmaze_kwargs(m),
                      max_episode_steps=steps, obs_keys=("observation",))
                 for m, (env_id, steps, *_rest) in _POINTMAZES.items() for kind in ("play", "diverse"))


SUITES["maze2d"] = Suite("maze2d", _maze2d(), reward_transform="none", score="return", eval_episodes=10,
                         description="Point-mass mazes, D4RL maze2d (sparse; PointMaze-v3 with D4RL's fixed goal)")
SUITES["pointmaze"] = Suite("pointmaze", _pointmaze(), reward_transform="antmaze", score="success",
                            eval_episodes=100, description="Point-mass stitching sets (offbench's play/diverse, "
                            "built locally; not AntMaze): success rate")


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise OffbenchError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]


def data_dir() -> Path:
    """Where D4RL hdf5 files live (``$OFFBENCH_DATA_DIR``, default ``~/.offbench/d4rl``)."""
    return Path(os.environ.get("OFFBENCH_DATA_DIR", Path.home() / ".offbench" / "d4rl")).expanduser()


def hdf5_path(task: Task) -> Path:
    return data_dir() / f"{task.name}.hdf5"
