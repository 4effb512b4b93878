"""Original D4RL hdf5 files (replicas in D4RL's layouts, tests/d4rl_replicas.py) on D4RL's own tasks
(offbench/d4rl_envs): the loader's dtypes and qlearning_dataset rows, d4rl's cache names, the D4RL-* envs'
transcribed facts, the physics check, and a tiny run per family evaluated in the D4RL env."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import tiny_overrides
from d4rl_replicas import write_antmaze, write_door, write_hopper, write_kitchen

from offbench import envs
from offbench.d4rl_envs import antmaze
from offbench.data import loaders, sources
from offbench.data.physics_check import check_file
from offbench.data.suites import get_suite
from offbench.errors import OffbenchError

# --------------------------------------------------------------------------------------------------
# loader


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8, bool])
def test_flags_of_every_dtype_d4rl_writes(tmp_path, dtype):
    n = 10
    term = np.zeros(n, dtype)
    term[3] = 1
    tout = np.zeros(n, dtype)
    tout[6] = 1
    with h5py.File(tmp_path / "f.hdf5", "w") as f:
        f["observations"] = np.arange(n, dtype=np.float32)[:, None]
        f["actions"] = np.zeros((n, 1), np.float32)
        f["rewards"] = np.arange(n, dtype=np.float64)
        f["terminals"] = term
        f["timeouts"] = tout
    ds = loaders.load_d4rl_hdf5(tmp_path / "f.hdf5")
    np.testing.assert_array_equal(ds.observations[:, 0], [0, 1, 2, 3, 4, 5, 7, 8])  # 6 (timeout), 9 (last): out
    np.testing.assert_array_equal(ds.terminals, [0, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.flatnonzero(ds.episode_ends), [3, 5, 7])


def test_qlearning_rows_with_next_observations(tmp_path):
    # the case: a locomotion file of 3000 steps with next_observations and a timeout every 200 steps
    n, every = 3000, 200
    obs = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    tout = (np.arange(n) % every) == every - 1
    with h5py.File(tmp_path / "hopper_medium-v2.hdf5", "w") as f:
        for k, v in dict(observations=obs, actions=obs[:, :1], rewards=obs[:, 0], terminals=np.zeros(n, bool)).items():
            f[k] = v
        f["timeouts"], f["next_observations"] = tout, np.roll(obs, -1, axis=0)
    ds = loaders.load_d4rl_hdf5(tmp_path / "hopper_medium-v2.hdf5")
    assert len(ds) == n - tout.sum() == 2985  # qlearning_dataset: range(N-1), timeouts skipped
    assert ds.episode_ends.sum() == 15


def test_d4rl_cache_names_resolve_to_tasks_and_d4rl_envs(tmp_path):
    assert loaders.d4rl_task_name("hopper_medium_replay-v2") == "hopper-medium-replay-v2"
    assert loaders.d4rl_task_name("kitchen_microwave_kettle_bottomburner_light-v0") == "kitchen-mixed-v0"
    assert loaders.d4rl_task_name("door-human-v1") == "door-human-v1"
    name = "Ant_maze_big-maze_noisy_multistart_True_multigoal_False_sparse_fixed"
    assert loaders.d4rl_task_name(name) == "antmaze-medium-play-v2"
    path = write_antmaze(tmp_path / f"{name}.hdf5", "D4RL-AntMaze-Medium-v2", steps=30)
    src = sources.resolve(get_suite("antmaze"), str(path), {})
    assert src.name == "antmaze-medium-play-v2" and src.env_id == "D4RL-AntMaze-Medium-v2"
    assert src.env_family == "d4rl" and src.max_episode_steps == 1000 and src.dataset.obs_dim == 29


# --------------------------------------------------------------------------------------------------
# the D4RL-* environments


def test_antmaze_frame_robot_goal_and_success():
    env = envs.make_env("D4RL-AntMaze-UMaze-v2")
    u = env.unwrapped
    assert env.spec.max_episode_steps == 700 and envs.make_env("D4RL-AntMaze-Large-v2").spec.max_episode_steps == 1000
    assert u.model.opt.timestep * 5 == pytest.approx(0.1) and u.model.nq == 15 and u.model.nu == 8
    np.testing.assert_allclose(u.model.actuator_ctrlrange, [[-30, 30]] * 8)
    np.testing.assert_allclose(u.model.actuator_gear[:, 0], 1.0)
    # D4RL's frame: the start cell at (0, 0), the wall cell (2, 1) of U_MAZE_TEST at (0, 4), the goal cell at (0, 8)
    wall = u.model.geom("block_2_1")
    np.testing.assert_allclose(u.model.geom_pos[wall.id], [0, 4, 1])
    obs, info = env.reset(seed=1)
    assert obs.shape == (29,) and np.all(np.abs(obs[:2]) <= 0.1) and obs[2] == pytest.approx(0.75, abs=0.1)
    assert 0 <= info["goal"][0] <= 1.5 and 8 <= info["goal"][1] <= 9.5
    o, r, term, _, inf = env.step(np.ones(8))
    assert (r, term, inf["success"]) == (0.0, False, False)
    np.testing.assert_allclose(u.data.ctrl, 30.0)  # NormalizedBoxEnv: 1 -> the top of [-30, 30]
    u.set_obs(np.concatenate([[*u.target_goal, 0.6, 1, 0, 0, 0], np.zeros(8), np.zeros(14)]))
    _, r, term, _, inf = env.step(np.zeros(8))
    assert (r, term, inf["success"]) == (1.0, True, True)


@pytest.mark.parametrize(
    "env_id, goal_xy",
    [("D4RL-AntMaze-UMaze-v2", (0, 8)), ("D4RL-AntMaze-Medium-v2", (20, 20)), ("D4RL-AntMaze-Large-v2", (32, 24))],
)
def test_antmaze_goals_are_d4rls_evaluation_goals(env_id, goal_xy):
    """The goal of each *_TEST map (d4rl/locomotion/maze_env.py:56-79) in D4RL's frame: the goal cell's corner,
    a free cell, plus the reset's noise of at most 1.5 m per axis (an off-by-one map put it in the wall)."""
    u = envs.make_env(env_id).unwrapped
    r, c = antmaze.goal_cell(u.maze_map)
    assert u.maze_map[r][c] == "g" and 0 < r < len(u.maze_map) - 1 and 0 < c < len(u.maze_map[0]) - 1
    for seed in range(5):
        _, info = u.reset(seed=seed)
        assert np.all(info["goal"] >= goal_xy) and np.all(info["goal"] <= np.add(goal_xy, 1.5)), info["goal"]


def test_adroit_rewards_are_d4rls():
    env = envs.make_env("D4RL-AdroitHandDoor-v1")
    env.reset(seed=0)
    _, r, _, _, info = env.step(env.action_space.sample())
    u = env.unwrapped
    d = np.linalg.norm(u.data.site_xpos[u.grasp_site_id] - u.data.site_xpos[u.handle_site_id])
    # door_v0.py:52 subtracts 0.1 ||palm - handle||; gymnasium-robotics 1.4.2 adds it
    assert r == pytest.approx(info["gymnasium_reward"] - 0.2 * d) and r < info["gymnasium_reward"]
    pen = envs.make_env("D4RL-AdroitHandPen-v1")
    pen.reset(seed=0)
    p = pen.unwrapped
    qpos, qvel = p.data.qpos.copy(), p.data.qvel.copy()
    qpos[-6] += 0.5  # OBJTx moves the pen along world -z: drop it below 0.075 m, D4RL ends the episode
    p.set_state(qpos, qvel)  # (pen_v0.py:85-87)
    assert p.data.xpos[p.obj_body_id][2] < 0.075
    _, _, term, _, _ = pen.step(np.zeros(pen.action_space.shape))
    assert term


def test_kitchen_observation_and_completion():
    env = envs.make_env("D4RL-Kitchen-Mixed-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (60,)
    np.testing.assert_allclose(obs[30 + 22], -0.75)  # microwave's goal in the goal part (kitchen_envs.py:15, 24)
    np.testing.assert_allclose(obs[30 + 19], 0.0)  # slide cabinet is not a task of mixed
    u = env.unwrapped
    noise = np.abs(obs[:30] - u.data.qpos[:30])  # adept's noise: 0.1 x pos_noise_amp (robot 0.1, microwave 0.1)
    assert np.all(noise[:9] <= 0.01 + 1e-12) and noise[:9].max() > 0 and np.all(noise[11:17] <= 5e-5 + 1e-12)
    qpos = u.data.qpos.copy()
    qpos[22] = -0.75
    u.robot_env.set_state(qpos, u.data.qvel.copy())
    _, r, term, _, info = env.step(np.zeros(9))
    assert r == 1.0 and info["d4rl_completed"] == ["microwave"] and not term
    _, r, *_ = env.step(np.zeros(9))
    assert r == 0.0  # completed elements are removed (kitchen_envs.py:75-76)


# --------------------------------------------------------------------------------------------------
# physics check


def test_physics_check_passes_the_ports_files_and_fails_perturbed_actions(tmp_path):
    good = write_antmaze(tmp_path / "antmaze-umaze-v2.hdf5", steps=120)
    bad = write_antmaze(tmp_path / "bad.hdf5", steps=120, perturb=0.3)
    ok = check_file(good, "D4RL-AntMaze-UMaze-v2", samples=40)
    assert ok["verdict"] == "reproduces" and ok["matched"] == 1.0 and ok["state_error"]["max"] < 1e-4
    no = check_file(bad, "D4RL-AntMaze-UMaze-v2", samples=40)
    assert no["verdict"] == "differs" and no["matched"] < 0.5
    hop = check_file(write_hopper(tmp_path / "h.hdf5", steps=150), "D4RL-Hopper-v2", samples=40)
    assert hop["verdict"] == "reproduces" and hop["reward_matched"] == 1.0
    door = check_file(write_door(tmp_path / "d.hdf5", demos=1, length=20), "D4RL-AdroitHandDoor-v1", samples=10)
    assert door["verdict"] == "reproduces" and door["reward_matched"] == 1.0
    with pytest.raises(OffbenchError, match="no simulator states"):
        check_file(write_kitchen(tmp_path / "k.hdf5", demos=1, length=5), "D4RL-AdroitHandDoor-v1")


def test_data_check_and_info_commands(tmp_path):
    import json

    from click.testing import CliRunner

    from offbench.cli import main

    name = "Ant_maze_u-maze_noisy_multistart_False_multigoal_False_sparse_fixed.hdf5"
    good = write_antmaze(tmp_path / name, steps=60)
    res = CliRunner().invoke(main, ["data", "check", str(good), "--samples", "20"])
    assert res.exit_code == 0 and "D4RL-AntMaze-UMaze-v2" in res.output and "reproduces" in res.output
    (tmp_path / "other").mkdir()
    bad = write_antmaze(tmp_path / "other" / name, steps=60, perturb=0.3)  # same name, actions perturbed
    res = CliRunner().invoke(main, ["data", "check", str(bad), "--samples", "20"])
    assert res.exit_code == 1 and "differs" in res.output
    card = json.loads(CliRunner().invoke(main, ["data", "info", str(good), "--json"]).output)
    assert card["physics_check"]["verdict"] == "reproduces" and card["physics_check"]["checked"] == 20
    assert card["physics_check"]["stored"] and card["physics_check"]["versions"]["mujoco"]  # the stored check
    assert json.loads((tmp_path / f"{name}.check.json").read_text())["checked"] == 20
    bad_card = json.loads(CliRunner().invoke(main, ["data", "info", str(bad), "--json"]).output)
    assert bad_card["physics_check"]["verdict"] == "differs"  # each file's own stored result
    good.write_bytes(good.read_bytes())  # a file changed since its check: the card checks it anew (50 steps)
    import os

    os.utime(good, ns=(1, 1))
    card = json.loads(CliRunner().invoke(main, ["data", "info", str(good), "--json"]).output)
    assert not card["physics_check"].get("stored") and card["physics_check"]["verdict"] == "reproduces"


# --------------------------------------------------------------------------------------------------
# a tiny run per family, evaluated in the D4RL env


@pytest.mark.parametrize(
    "suite, name, writer, env_id",
    [
        ("antmaze", "antmaze-umaze-v2", lambda p: write_antmaze(p, steps=200), "D4RL-AntMaze-UMaze-v2"),
        ("kitchen", "kitchen-mixed-v0", lambda p: write_kitchen(p, demos=2, length=40), "D4RL-Kitchen-Mixed-v0"),
        ("adroit", "door-human-v1", lambda p: write_door(p, demos=2, length=40), "D4RL-AdroitHandDoor-v1"),
    ],
)
def test_tiny_run_on_d4rl_env(tmp_path, suite, name, writer, env_id):
    from offbench.training import offline, run

    path = writer(tmp_path / f"{name}.hdf5")
    opts = offline.RunOptions(
        algo="iql",
        suite=suite,
        dataset=str(path),
        seeds=1,
        steps=20,
        eval_every=20,
        eval_episodes=1,
        overrides=tiny_overrides(log_every=20, batch_size=32),
        results=str(tmp_path / "results"),
        progress=False,
    )
    (rec,) = run.run(opts, say=lambda _m: None)
    assert rec["status"] == "finished" and np.isfinite(rec["final_score"])
    assert rec["env"]["env_id"] == env_id and rec["env"]["family"] == "d4rl"
