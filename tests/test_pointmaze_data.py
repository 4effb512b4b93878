"""The pointmaze stitching sets pose the stitching problem (issue 28): the evaluation goal is never commanded,
episodes are split on the start region (the first half of the start -> goal path), and a build is refused if a
rewarded episode starts there."""

from __future__ import annotations

import json

import numpy as np
import pytest

from offbench.errors import OffbenchError
from offbench.recipes.maze2d import MAZES
from offbench.recipes.pointmaze import (
    PLAY_CELLS,
    STITCH_VERSION,
    check_stitching,
    split_stitching,
    start_region,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


class GridMaze:
    """Positions are the cells themselves (row, col), as maze.cell_xy_to_rowcol would map them."""

    @staticmethod
    def cell_xy_to_rowcol(p):
        return np.asarray(p, int)


def episode(cells, goal):
    pos = np.asarray(cells, float)
    rew = np.array([tuple(c) == goal for c in cells[1:]], float)
    return {"observations": {"achieved_goal": pos}, "actions": np.zeros((len(cells) - 1, 2)), "rewards": rew}


def test_start_region_is_the_first_half_of_the_shortest_path():
    region = start_region("medium")
    _, _, _, start, goal = MAZES["medium"]
    assert region[0] == start and goal not in region
    # medium: (1,1) -> (6,6) is 10 steps on the grid; the first half: the cells 0..5 steps from the start, adjacent
    assert len(region) == 6 and all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(region, region[1:]))


def test_the_evaluation_goal_is_never_a_play_goal():
    for maze, (*_x, goal) in MAZES.items():
        assert goal not in PLAY_CELLS[maze]


def test_split_on_the_start_region():
    region, goal = {(0, 0), (0, 1)}, (0, 5)
    # start in the region, wander back into it, leave at t=4 for good, reach the goal
    cells = [(0, 0), (0, 1), (0, 2), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 5)]
    pieces = split_stitching(episode(cells, goal), GridMaze, region, goal)
    assert len(pieces) == 2
    first, second = pieces
    assert first["rewards"].sum() == 0 and second["rewards"].sum() == 2
    # the rewarded piece starts where the episode last left the region, outside it
    assert tuple(second["observations"]["achieved_goal"][0].astype(int)) == (0, 2)
    assert len(first["actions"]) + len(second["actions"]) == len(cells) - 1  # nothing lost
    assert check_stitching(pieces, GridMaze, region, "t")["rewarded_episodes_from_start_region"] == 0
    # an episode that never was in the region is kept whole
    kept = split_stitching(episode([(0, 3), (0, 4), (0, 5)], goal), GridMaze, region, goal)
    assert len(kept) == 1 and kept[0]["rewards"].sum() == 1


def test_a_rewarded_episode_from_the_start_region_is_refused():
    region, goal = {(0, 0), (0, 1)}, (0, 3)
    ep = episode([(0, 1), (0, 2), (0, 3)], goal)
    ep = {**ep, "terminations": np.zeros(2, bool), "truncations": np.array([False, True])}
    with pytest.raises(OffbenchError, match="first half of the start -> goal path"):
        check_stitching([ep], GridMaze, region, "t")


def test_small_build_passes_the_check_and_says_so():
    import minari

    from offbench.recipes.recipes import get_recipe

    rec = get_recipe("pointmaze-medium-play-v0")
    assert rec.version == STITCH_VERSION >= 2
    ds = minari.load_dataset(rec.build(size=20_000, seed=0))
    meta = ds.storage.metadata
    assert int(meta["recipe_version"]) == STITCH_VERSION
    prov = json.loads(meta["provenance"])
    check = prov["stitching_check"]
    assert check["rewarded_episodes_from_start_region"] == 0 and check["eval_goal_commanded"] is False
    assert check["rewarded_episodes"] > 0  # the goal is crossed on the way to the dead end behind it
    assert list(MAZES["medium"][4]) not in prov["behaviour"]["intermediate_goals"]
    # read back from the stored data, with the environment's own cell map: no rewarded episode starts in the region
    from offbench.recipes.maze2d import _factory, base_map

    env = _factory("medium", {"maze_map": base_map("medium")}, 10)()
    maze = env.unwrapped.maze
    region = {tuple(c) for c in check["start_region"]}
    starts = [
        tuple(int(v) for v in maze.cell_xy_to_rowcol(ep.observations["achieved_goal"][0]))
        for ep in ds.iterate_episodes()
        if ep.rewards.sum() > 0
    ]
    env.close()
    assert starts and not set(starts) & region
    # the data card shows the check
    from offbench.data.card import card, format_card
    from offbench.data.loaders import load_minari
    from offbench.data.suites import get_suite

    suite = get_suite("pointmaze")
    lines = format_card(
        "pointmaze-medium-play-v0", card(load_minari(ds.spec.dataset_id, ("achieved_goal",)), None, suite)
    )
    line = next(x for x in lines if "stitching check" in x)
    assert f"0 of {check['rewarded_episodes']} rewarded episodes" in line and "never commanded" in line
