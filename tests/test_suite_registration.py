"""A suite is registered once (issue 26): its tasks, reward-transform default, evaluation schedule, report rank and
build rate are fields of its ``Suite``; adding one touches nothing else. A toy suite registered that way runs
through ``offbench run`` and appears in ``offbench report``."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.data import fetch, suites
from offbench.data.suites import SUITES, Suite, get_suite, goal_radius, register, report_rank
from offbench.data.tasks import Task
from offbench.errors import OffbenchError
from offbench.report.collect import suite_sort_key

HOPPER = SUITES["locomotion"].task("hopper-random-v2")  # reference returns: D4RL's (d4rl/infos.py)


@pytest.fixture
def toy_suite(hopper_file):
    """A Hopper suite of one task, registered as a user would (``suites.register``), its dataset where D4RL
    files live (``$OFFBENCH_DATA_DIR``, private to the test); removed after the test."""
    task = Task("toyhop-random-v0", "Hopper-v5", HOPPER.ref_min_score, HOPPER.ref_max_score)
    suites.data_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(hopper_file, suites.hdf5_path(task))
    yield register(
        Suite("toyhop", (task,), reward_transform="locomotion", eval_episodes=1, eval_every=20, report_rank=-1)
    )
    SUITES.pop("toyhop")


def test_a_registered_suite_runs_and_is_reported(toy_suite, tmp_path):
    assert get_suite("toyhop") is toy_suite and report_rank("toyhop") == -1
    results = tmp_path / "results"
    run = CliRunner().invoke(
        main,
        ["run", "--algo", "iql", "--suite", "toyhop", "--dataset", "toyhop-random-v0", "--steps", "20",
         "--set", "hidden_dims=[32,32]", "batch_size=64", "--results", str(results), "--no-progress", "--no-fetch"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    (record,) = (results / "toyhop" / "toyhop-random-v0" / "iql").glob("*/seed_0.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "finished" and rec["suite"] == "toyhop"
    assert rec["eval_every"] == 20 and rec["eval_episodes"] == 1  # the suite's schedule, no option given
    assert rec["config"]["reward_transform"] is None  # iql.yaml has no toyhop layer: the suite's default applied
    out = tmp_path / "report"
    rep = CliRunner().invoke(main, ["report", "--results", str(results), "--out", str(out), "--format", "md"])
    assert rep.exit_code == 0, rep.output
    assert "toyhop-random-v0" in (out / "README.md").read_text()


def test_the_suite_default_reward_transform_is_applied(toy_suite):
    from offbench.training.prepare import RunOptions, prepare

    opts = dict(algo="iql", suite="toyhop", dataset="toyhop-random-v0", steps=20, eval_episodes=1, progress=False)
    scaled = prepare(RunOptions(**opts), say=lambda _: None)
    plain = prepare(RunOptions(**opts, overrides={"reward_transform": "none"}), say=lambda _: None)
    assert scaled.reward_scale != 1.0 and plain.reward_scale == 1.0  # locomotion: x 1000 / return spread


def test_registration_fields_replace_the_per_suite_tables(toy_suite):
    # report order: the paper's suites first, in its order, then the others by name
    assert sorted(["pointmaze", "mujoco", "adroit", "antmaze", "maze2d", "kitchen", "locomotion"], key=suite_sort_key)[
        :4
    ] == ["locomotion", "antmaze", "kitchen", "adroit"]
    assert suite_sort_key("toyhop") < suite_sort_key("locomotion")
    # build estimate: the suite's rate (kitchen is 19x slower per transition than locomotion)
    assert fetch.estimate_s("kitchen", 44_000) - fetch.BUILD_OVERHEAD_S == pytest.approx(100.0)
    assert fetch.estimate_s("toyhop", 1000) - fetch.BUILD_OVERHEAD_S == pytest.approx(1.0)  # Suite's default rate
    # goal radius: AntMaze's tasks end episodes at D4RL's 0.5 m (Gymnasium-Robotics envs); D4RL's own task itself
    assert goal_radius("AntMaze_UMaze-v4") == 0.5 and goal_radius("AntMaze_Large-v4") == 0.5
    assert goal_radius("D4RL-AntMaze-UMaze-v2") is None and goal_radius("Hopper-v5") is None
    assert {n for n, s in SUITES.items() if s.trajectory_episodes} == {"antmaze", "maze2d", "pointmaze"}
    with pytest.raises(OffbenchError, match="already registered"):
        register(toy_suite)
