"""The tasks of the suites: each dataset's D4RL name, Minari id, D4RL hdf5 URL, evaluation environments and
reference returns (D4RL's ``d4rl/infos.py`` REF_MIN_SCORE / REF_MAX_SCORE), and the maze geometry the AntMaze /
maze2d / pointmaze tasks share. :mod:`offbench.data.suites` registers them into suites.
"""

from __future__ import annotations

import dataclasses

from offbench import d4rl_envs
from offbench.d4rl_envs.mazes import MAX_EPISODE_STEPS, maze_map
from offbench.data import maps

D4RL_GYM_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2/{file}-v2.hdf5"
REBUILT_NAMESPACE = "rebuilt"
MAZE2D_GOAL_RADIUS = 0.5  # D4RL d4rl/pointmaze/maze_model.py: sparse reward 1 when ||xy - target|| <= 0.5


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
    # data rebuilt here, when not obs_keys: a key or a (key, columns) pair, each (loaders.flatten_observation)
    rebuilt_obs_keys: tuple | None = None
    rebuilt_env_id: str | None = None  # evaluation environment of data rebuilt here, when not env_id
    # D4RL's own task (offbench/d4rl_envs, registered as D4RL-*): evaluates an original D4RL hdf5 file
    d4rl_env_id: str | None = None
    d4rl_env_kwargs: dict = dataclasses.field(default_factory=dict)
    # Evaluation episodes end within this distance of the goal (AntMaze: ANTMAZE_GOAL_RADIUS, D4RL's evaluation);
    # None: the environment ends them. Applies to env_id / rebuilt_env_id, never to D4RL's own task (it ends them).
    goal_radius: float | None = None
    # Minari's ports of this task (its minari_id, evaluated in Gymnasium-Robotics' PointMaze) are evaluated to D4RL's
    # fixed goal, the map's "g" cell, with this reward radius (maze2d: MAZE2D_GOAL_RADIUS); None: no fixed goal.
    fixed_goal_radius: float | None = None

    def eval_env(self, kind: str, data_format: str | None = None) -> tuple[str, dict, str]:
        """(env id, env kwargs, env family) evaluating data of ``kind`` (original / file / rebuilt) stored in
        ``data_format`` (the loader's ``metadata["source"]``: ``d4rl-hdf5`` for D4RL's files, else Minari).
        D4RL's hdf5 files are evaluated in D4RL's own task when one is registered (family ``d4rl``);
        Minari-hosted and rebuilt data in the Gymnasium / Gymnasium-Robotics env they were collected in."""
        if data_format == "d4rl-hdf5" and self.d4rl_env_id:
            return self.d4rl_env_id, dict(self.d4rl_env_kwargs), "d4rl"
        env_id = self.rebuilt_env_id if kind == "rebuilt" and self.rebuilt_env_id else self.env_id
        return env_id, dict(self.env_kwargs), env_family(env_id)

    def obs_keys_for(self, kind: str) -> tuple | None:
        """The observation keys of data of ``kind`` (original / file / rebuilt)."""
        return self.rebuilt_obs_keys if kind == "rebuilt" and self.rebuilt_obs_keys else self.obs_keys

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


def locomotion_tasks() -> tuple:
    # Evaluation environment per data kind (issue 12 item 9): D4RL's -v2 data was collected with the v3
    # models (mujoco-py). Walker2d-v5 changed the feet's friction (gymnasium/envs/mujoco/walker2d_v5.py
    # changelog: v2-v4 have left foot 1.9, right foot 0.9; v5 sets both to 1.9), so original walker2d data is
    # evaluated in Walker2d-v4 (the v3 model on the new bindings); data rebuilt here in Walker2d-v5 in v5.
    # D4RL's own hdf5 files: D4RL-<Env>-v2 (offbench/d4rl_envs: Gymnasium's v4 = gym's v3 models, for all three).
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
                Task(
                    f"{env}-{kind}-v2",
                    env_id,
                    lo,
                    hi,
                    url=D4RL_GYM_URL.format(file=file),
                    rebuilt_env_id=rebuilt_env,
                    d4rl_env_id=d4rl_envs.LOCOMOTION_IDS[env][0],
                )
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


def antmaze_tasks() -> tuple:
    # Evaluation as D4RL's: from the fixed start cell "r" to the fixed goal cell "g" of D4RL's *_TEST maps
    # (offbench/d4rl_envs/mazes.py; 1 = wall), sparse reward, no goal resets, D4RL's time limits. The rebuilt
    # datasets (offbench/recipes/antmaze.py) use these maps too.
    env_ids = {"umaze": "AntMaze_UMaze-v4", "medium": "AntMaze_Medium-v4", "large": "AntMaze_Large-v4"}
    kinds = ("umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse")
    return tuple(
        Task(
            f"antmaze-{k}-v2",
            env_ids[k.split("-")[0]],
            0.0,
            1.0,
            minari_id=f"D4RL/antmaze/{k}-v1",
            env_kwargs={"maze_map": maze_map(k.split("-")[0]), "continuing_task": True, "reset_target": False},
            max_episode_steps=MAX_EPISODE_STEPS[k.split("-")[0]],
            obs_keys=("achieved_goal", "observation"),
            # D4RL's hdf5 files: D4RL's own antmaze-*-v2 task (offbench/d4rl_envs/antmaze.py: its ant, frame, goal)
            d4rl_env_id=d4rl_envs.ANTMAZE_IDS[k.split("-")[0]],
            goal_radius=ANTMAZE_GOAL_RADIUS,
        )
        for k in kinds
    )


# What the rebuilt Kitchen data shows a policy: D4RL's observation (d4rl/kitchen/adept_envs/franka/
# kitchen_multitask_v0.py:118-130, offbench/d4rl_envs/kitchen.py), the robot's 9 and the objects' 21 joint positions,
# taken from FrankaKitchen-v1's 59-d "observation" (robot qpos 0:9, robot qvel 9:18, object qpos 18:39, object qvel
# 39:59; gymnasium_robotics franka_kitchen kitchen_env.py _get_obs). D4RL observes no velocity: the IQL paper's BC
# (65 / 38 / 51.5) was measured without one, and with the joint velocities, which carry the last action, BC copies
# the last action and stalls short of the handles (docs/kitchen.md "Session 10 of wave 3"). D4RL's goal part is
# constant within a dataset and is left out. Minari's hosted D4RL/kitchen data keeps its own 59-d observation.
KITCHEN_POSITIONS = tuple(range(0, 9)) + tuple(range(18, 39))


def kitchen_tasks() -> tuple:
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
            rebuilt_obs_keys=(("observation", KITCHEN_POSITIONS),),  # D4RL's positions, no velocities (above)
            d4rl_env_id=d4rl_envs.KITCHEN_IDS[k],  # D4RL's 60-d observation and scoring (offbench/d4rl_envs)
        )
        for k, goals in (("complete", complete), ("partial", complete), ("mixed", mixed))
    )


def adroit_tasks() -> tuple:
    refs = {
        "pen": ("AdroitHandPen-v1", 96.262799, 3076.8331, 100),
        "door": ("AdroitHandDoor-v1", -56.512833, 2880.5693, 200),
        "hammer": ("AdroitHandHammer-v1", -274.856578, 12794.134825, 200),
        "relocate": ("AdroitHandRelocate-v1", -6.425911, 4233.877797, 200),
    }
    return tuple(
        Task(
            f"{env}-{kind}-v1",
            env_id,
            lo,
            hi,
            minari_id=f"D4RL/{env}/{kind}-v2",
            max_episode_steps=steps,
            d4rl_env_id=d4rl_envs.ADROIT_IDS[env],  # D4RL's (mj_envs') rewards (offbench/d4rl_envs/adroit.py)
        )
        for env, (env_id, lo, hi, steps) in refs.items()
        for kind in ("human", "cloned", "expert")
    )


# maze2d (D4RL) and offbench's pointmaze stitching sets, in Gymnasium-Robotics PointMaze-v3 (tables: data/maps.py).
# The evaluation env has the fixed target ("g") cell, and for the stitching sets a fixed start ("r")
# (offbench/recipes/maze2d.py); maze2d's reference returns: D4RL's (infos.py), else the dataset's own.
def _pointmaze_kwargs(maze: str, fixed_start: bool = True) -> dict:
    grid = [[int(ch) for ch in row] for row in maps.MAZE_GRIDS[maze]]
    _, _, (rr, rc), (gr, gc), _, _ = maps.POINTMAZES[maze]
    grid[gr][gc] = "g"
    if fixed_start:
        grid[rr][rc] = "r"
    return {"maze_map": grid, "continuing_task": True, "reset_target": False}


def maze2d_tasks() -> tuple:
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
            fixed_goal_radius=MAZE2D_GOAL_RADIUS,
        )
        for m, (env_id, steps, _r, _g, lo, hi) in maps.POINTMAZES.items()
    )


def pointmaze_tasks() -> tuple:
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
        for m, (env_id, steps, *_rest) in maps.POINTMAZES.items()
        for kind in ("play", "diverse")
    )


FROM_SPEC = "dataset-spec"  # Task.env_id of a task evaluated in its dataset's own eval_env_spec / env_spec


def mujoco_tasks() -> tuple:  # reference returns NaN: the dataset's metadata gives them (sources._refs)
    return tuple(
        Task(
            f"mujoco-{e.lower()}-{lv}-v0",
            FROM_SPEC,
            float("nan"),
            float("nan"),
            minari_id=f"mujoco/{e.lower()}/{lv}-v0",
        )
        for e, levels in maps.MINARI_MUJOCO.items()
        for lv in levels
    )
