"""maze2d as D4RL's recipe (scripts/generation/generate_maze2d_datasets.py + relabel_maze2d_rewards.py): one
continuous trajectory, the 4-D observation, rewards relabelled to the fixed goal, a random evaluation start."""

from __future__ import annotations

import json

import numpy as np
import pytest

from offbench.recipes import maze2d


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OFFBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_collection_is_one_continuous_trajectory_with_a_single_reset(monkeypatch):
    from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

    resets = []
    orig = PointMazeEnv.reset

    def counting_reset(self, *a, **kw):
        resets.append(1)
        return orig(self, *a, **kw)

    monkeypatch.setattr(PointMazeEnv, "reset", counting_reset)
    segs, stats = maze2d.continuous_trajectory("umaze", 1500, seed=0)
    assert sum(len(s["act"]) for s in segs) == 1500
    assert len(segs) > 3 and stats["targets_solved"] >= 1
    for a, b in zip(segs[:-1], segs[1:]):  # each segment starts exactly where the last one ended
        np.testing.assert_array_equal(a["obs"][-1]["observation"], b["obs"][0]["observation"])
        assert not np.allclose(a["obs"][-1]["desired_goal"], b["obs"][0]["desired_goal"])  # a new target
    assert max(len(s["act"]) for s in segs) <= maze2d.MAZES["umaze"][1]  # D4RL's horizon
    assert len(resets) == 1  # no resets


def test_build_relabels_to_the_fixed_goal_with_4d_observations_and_random_eval_start():
    from offbench.data import sources
    from offbench.data.suites import get_suite
    from offbench.data.tasks import eval_goal_cell, maze_cell_xy
    from offbench.recipes.recipes import get_recipe

    assert get_recipe("maze2d-umaze-v1").version >= 2
    get_recipe("maze2d-umaze-v1").build(size=2500, seed=1, behavior_dir=None, progress=False)
    suite = get_suite("maze2d")
    task = suite.task("maze2d-umaze-v1")
    src = sources.resolve(suite, "maze2d-umaze-v1", {})
    ds = src.dataset
    assert ds.obs_dim == 4 and src.obs_keys == ("observation",)  # position, velocity: no goal
    goal = np.asarray(maze_cell_xy(task.env_kwargs["maze_map"], eval_goal_cell(task), scaling=1.0))
    dist = np.linalg.norm(ds.next_observations[:, :2] - goal, axis=-1)
    np.testing.assert_array_equal(ds.rewards, (dist <= maze2d.GOAL_RADIUS).astype(np.float32))
    assert ds.rewards.sum() > 0 and ds.terminals.sum() == 0
    # the commanded targets vary, the reward does not follow them
    import minari

    eps = list(minari.load_dataset("rebuilt/maze2d-umaze-v1").iterate_episodes())
    assert len({tuple(np.round(e.observations["desired_goal"][0], 3)) for e in eps}) > 3
    prov = json.loads(ds.metadata["provenance"])
    assert prov["recipe_version"] >= 2 and prov["eval_start"] == "random free cell"
    # evaluation: random start cells, the fixed goal cell
    spec = json.loads(src.eval_env_spec)
    assert not any("r" in map(str, row) for row in spec["kwargs"]["maze_map"])
    env = src.env_factory()()
    starts = {
        tuple(int(v) for v in env.unwrapped.maze.cell_xy_to_rowcol(env.reset(seed=s)[0]["achieved_goal"]))
        for s in range(12)
    }
    goal_cells = {tuple(int(v) for v in env.unwrapped.maze.cell_xy_to_rowcol(env.unwrapped.goal))}
    env.close()
    assert len(starts) >= 3 and goal_cells == {eval_goal_cell(task)}
