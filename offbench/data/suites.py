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

from offbench.config import use_suite_layer
from offbench.data import tasks as _t
from offbench.data.tasks import Task
from offbench.errors import OffbenchError


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
    report_rank: int = 100  # the report's suite order (ties: by name); the paper's four suites first
    build_rate: int = 1000  # rebuild speed, transitions per CPU-second on one core (the announced estimate only)
    trajectory_episodes: bool = False  # data card: a terminal marks the goal, episodes split at timeouts only
    task_count_reward: bool = False  # data card: reward = target tasks done so far; success = all of them done
    config_layer: str | None = None  # the suite whose section of an algorithm's YAML applies where it has none

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


# EVALUATION schedules (episodes per evaluation, interval), each from one reference:
# * locomotion, kitchen, adroit: IQL's code (ikostrikov/implicit_q_learning train_offline.py flags
#   eval_episodes=10, eval_interval=5000; its README runs kitchen/adroit with these defaults); adroit
#   fine-tuning: CORL configs/finetune/iql/*/cloned_v1.yaml (n_episodes 10, eval_freq 5000).
# * antmaze: IQL's README commands for train_offline.py and train_finetune.py (--eval_episodes=100
#   --eval_interval=100000). CORL evaluates 100 episodes every 5000 steps offline (configs/offline/iql/
#   antmaze/*.yaml) and every 50000 when fine-tuning; pass --eval-every 5000 for CORL's curve resolution.
# * maze2d: CORL configs/offline/iql/maze2d/*.yaml (n_episodes 100, eval_freq 5000); pointmaze (offbench's
#   own stitching sets) follows it.
# BUILD RATES (build_rate, for the announced estimate only), measured transitions per CPU-second on one core:
# locomotion (hopper) docs/data.md "Speed"; antmaze docs/antmaze.md; kitchen docs/kitchen.md; adroit from its
# ~1.2 ms step (docs/data.md); maze2d / pointmaze: 20,000 transitions in 2.6 s here (planner + PD).
# REPORT ORDER (report_rank): the IQL paper's four suites first, in its order (Tables 1-3); the others by name.
# A suite is added here and nowhere else (plus, optionally, its layers in configs/<algo>.yaml): see register().
SUITES: dict[str, Suite] = {
    "locomotion": Suite(
        "locomotion",
        _t.locomotion_tasks(),
        reward_transform="locomotion",
        score="return",
        eval_episodes=10,
        description="MuJoCo Hopper/HalfCheetah/Walker2d (D4RL -v2)",
        report_rank=0,
        build_rate=8400,
    ),
    "antmaze": Suite(
        "antmaze",
        _t.antmaze_tasks(),
        reward_transform="antmaze",
        score="success",
        eval_episodes=100,
        eval_every=100_000,
        online_eval_every=100_000,
        description="Ant navigation in mazes, sparse reward (D4RL -v2 / Minari D4RL/antmaze)",
        report_rank=1,
        build_rate=2200,
        trajectory_episodes=True,
    ),
    "kitchen": Suite(
        "kitchen",
        _t.kitchen_tasks(),
        reward_transform="none",
        score="return",
        eval_episodes=10,
        description="FrankaKitchen multi-task manipulation (D4RL -v0 / Minari D4RL/kitchen)",
        report_rank=2,
        build_rate=440,
        task_count_reward=True,
    ),
    "adroit": Suite(
        "adroit",
        _t.adroit_tasks(),
        reward_transform="none",
        score="return",
        eval_episodes=10,
        description="Dexterous hand manipulation (D4RL -v1 / Minari D4RL/<task>)",
        report_rank=3,
        build_rate=800,
    ),
}


SUITES["maze2d"] = Suite(
    "maze2d",
    _t.maze2d_tasks(),
    reward_transform="none",
    score="return",
    eval_episodes=100,
    description="Point-mass mazes, D4RL maze2d (sparse; PointMaze-v3 with D4RL's fixed goal)",
    build_rate=7700,
    trajectory_episodes=True,
)
SUITES["pointmaze"] = Suite(
    "pointmaze",
    _t.pointmaze_tasks(),
    reward_transform="antmaze",
    score="success",
    eval_episodes=100,
    description="Point-mass stitching sets (offbench's play/diverse, built locally; not AntMaze): success rate",
    build_rate=7700,
    trajectory_episodes=True,
)


# Minari's MuJoCo datasets (Gymnasium v5 locomotion) have no published settings: an algorithm YAML without a
# ``mujoco`` section applies its ``locomotion`` one (config_layer).
SUITES["mujoco"] = Suite(
    "mujoco",
    _t.mujoco_tasks(),
    reward_transform="locomotion",
    description="Minari's MuJoCo datasets (mujoco/<env>/<level>-v0)",
    config_layer="locomotion",
)
for _s in SUITES.values():  # each suite's config layer, as register() records it
    use_suite_layer(_s.name, _s.config_layer)

# A Minari dataset no suite names runs in a suite of its own, ``minari:<id, "/" as "__">``: its own env spec
# and reference returns, never pooled with another dataset's cells.
OWN_SUITE_PREFIX = "minari:"


def own_suite(dataset_id: str) -> Suite:
    """The suite of one Minari dataset no suite names: raw rewards, D4RL-normalised return, 10 episodes."""
    name = OWN_SUITE_PREFIX + dataset_id.replace("/", "__")
    return Suite(name, (), description=f"Minari dataset {dataset_id} (its own env spec and reference returns)")


def register(suite: Suite, replace: bool = False) -> Suite:
    """Add ``suite`` to :data:`SUITES`: all ``offbench`` commands (run, data, list, report) then know it. Its tasks,
    reward-transform default, evaluation schedule, report rank, build rate and config layer are its fields; an
    algorithm YAML may name a layer for it (else the layer of ``config_layer``, else the algorithm's defaults and the
    suite's ``reward_transform`` apply)."""
    if not replace and suite.name in SUITES:
        raise OffbenchError(f"suite {suite.name!r} is already registered; pick another name")
    if suite.name.startswith(OWN_SUITE_PREFIX):
        raise OffbenchError(f"suite names starting with {OWN_SUITE_PREFIX!r} are reserved for Minari datasets")
    if suite.config_layer is not None and suite.config_layer not in SUITES:
        raise OffbenchError(
            f"suite {suite.name!r}: config_layer {suite.config_layer!r} is not a registered suite; "
            f"use one of {', '.join(SUITES)} (or None)"
        )
    SUITES[suite.name] = suite
    use_suite_layer(suite.name, suite.config_layer)
    return suite


def goal_radius(env_id: str | None) -> float | None:
    """The goal radius ending evaluation episodes in ``env_id`` (a registered task's ``goal_radius`` where ``env_id``
    is that task's evaluation env for Minari / rebuilt data), None where the environment ends them."""
    return next(
        (
            t.goal_radius
            for s in SUITES.values()
            for t in s.tasks
            if t.goal_radius is not None and env_id and env_id in (t.env_id, t.rebuilt_env_id)
        ),
        None,
    )


def report_rank(name: str) -> int:
    """The report's order of suite ``name`` (a suite no longer registered, or a Minari one: after the others)."""
    return SUITES[name].report_rank if name in SUITES else Suite.report_rank


def get_suite(name: str) -> Suite:
    if name.startswith(OWN_SUITE_PREFIX) and len(name) > len(OWN_SUITE_PREFIX):
        return own_suite(name[len(OWN_SUITE_PREFIX) :].replace("__", "/"))
    if name not in SUITES:
        raise OffbenchError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]


def data_dir() -> Path:
    """Where D4RL hdf5 files live (``$OFFBENCH_DATA_DIR``, default ``~/.offbench/d4rl``)."""
    return Path(os.environ.get("OFFBENCH_DATA_DIR", Path.home() / ".offbench" / "d4rl")).expanduser()


def hdf5_path(task: Task) -> Path:
    return data_dir() / f"{task.name}.hdf5"
