"""`offbench data` and the locomotion / Adroit / maze2d / pointmaze recipes: every recipe built tiny
(``--size small``) and read back through the Minari loader; determinism; the CLI; an IQL run end to end
on a rebuilt dataset. Minari datasets go to a per-test tmp folder (conftest), reference returns to a
per-session tmp cache."""
from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.data.build import common
from offbench.data.build.recipes import all_recipes, default_behavior_dir, get_recipe, unbuildable_reason
from offbench.data.loaders import load_minari
from offbench.data.suites import get_suite

BDIR = default_behavior_dir()
pytestmark = pytest.mark.skipif(not (BDIR / "policies").exists(), reason=f"no behaviour data at {BDIR}")
MINE = ("locomotion", "adroit", "maze2d", "pointmaze")


@pytest.fixture(scope="session")
def ref_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("refcache")


@pytest.fixture(autouse=True)
def _cache(ref_cache, monkeypatch):
    monkeypatch.setenv("OFFBENCH_CACHE_DIR", str(ref_cache))


def _names():
    recipes = all_recipes()
    return sorted(n for n, r in recipes.items() if r.suite in MINE)


def test_every_d4rl_name_of_my_suites_is_buildable_or_says_why():
    names = set(_names())
    for suite in MINE:
        for t in get_suite(suite).tasks:
            assert t.name in names or unbuildable_reason(t.name).startswith("no human demonstrations"), t.name
    assert {"pen-human-v1", "hammer-human-v1", "relocate-human-v1"}.isdisjoint(names)
    assert len(names) == 15 + 9 + 3 + 6  # adroit: door-human + 4 expert + 4 cloned


@pytest.mark.parametrize("name", _names())
def test_small_build_loads_through_minari(name):
    rec = get_recipe(name)
    dataset_id = rec.build(size="small", seed=0, behavior_dir=BDIR, progress=False)
    assert dataset_id == f"rebuilt/{name}"
    task = get_suite(rec.suite).task(name)
    ds = load_minari(dataset_id, task.obs_keys)
    assert len(ds) == common.SMALL_SIZE
    assert ds.metadata["rebuilt"] is True
    lo, hi = ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]
    assert np.isfinite([lo, hi]).all() and hi > lo
    prov = json.loads(ds.metadata["provenance"])
    assert prov["recipe"] == name and prov["seed"] == 0 and prov["size"] == common.SMALL_SIZE
    assert prov["dataset_episodes"]["transitions"] == common.SMALL_SIZE
    assert np.isfinite(ds.observations).all() and np.abs(ds.actions).max() <= 1.0 + 1e-6
    # next observation of a step is the following observation of the same episode
    same = ~ds.episode_ends[:-1]
    np.testing.assert_array_equal(ds.next_observations[:-1][same], ds.observations[1:][same])
    spec = json.loads(ds.metadata["eval_env_spec"])
    assert spec["id"] == task.env_id


def test_builds_are_deterministic_given_the_seed():
    rec = get_recipe("walker2d-medium-replay-v2")
    fp = []
    for seed in (3, 3, 4):
        rec.build(size=600, seed=seed, behavior_dir=BDIR)
        fp.append(load_minari("rebuilt/walker2d-medium-replay-v2").fingerprint())
    assert fp[0] == fp[1] != fp[2]


def test_medium_replay_follows_the_ladder_and_medium_expert_is_medium_then_expert():
    get_recipe("hopper-medium-replay-v2").build(size=900, seed=0, behavior_dir=BDIR)
    prov = json.loads(load_minari("rebuilt/hopper-medium-replay-v2").metadata["provenance"])
    files = [p["file"] for p in prov["behaviour_policies"]]
    assert files == ["policies/hopper-trpo-iter0000000.npz", "policies/hopper-trpo-iter0000020.npz",
                     "policies/hopper-sac.npz"]
    assert [p["transitions"] for p in prov["behaviour_policies"]] == [300, 300, 300]
    get_recipe("hopper-medium-expert-v2").build(size=2000, seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/hopper-medium-expert-v2")
    prov = json.loads(ds.metadata["provenance"])
    assert [p["file"] for p in prov["behaviour_policies"]] == ["policies/hopper-sac.npz", "policies/hopper-tqc.npz"]
    # the expert half returns more per step than the medium half
    assert ds.rewards[1000:].mean() > ds.rewards[:1000].mean()


def test_door_human_replays_the_demos_from_their_start_states():
    z = np.load(BDIR / "demos" / "door-human.npz")
    n = int(z["episode_lengths"][:3].sum())  # the first three demos (the whole set: 6,729 steps, slow here)
    get_recipe("door-human-v1").build(size=n, seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/door-human-v1")
    assert int(z["episode_lengths"].sum()) == 6729 and get_recipe("door-human-v1").default_size == 6729
    assert len(ds) == n and ds.episode_ends.sum() == 3 and ds.terminals.sum() == 0
    np.testing.assert_allclose(ds.actions, np.clip(z["actions"][:n], -1, 1), atol=1e-6)
    # observations are the environment's own (close to, not equal to, the recorded ones)
    assert np.abs(ds.observations - z["observations"][:n]).max() > 0
    assert np.abs(ds.observations[0] - z["observations"][0]).max() < 1.0
    assert 500 < ds.episode_returns().mean() < 1100  # README: replayed about 803, recorded 794


def test_pointmaze_stitching_never_goes_from_start_to_goal():
    from offbench.data.build.maze2d import MAZES
    from offbench.envs import make_env

    get_recipe("pointmaze-umaze-diverse-v0").build(size=3000, seed=1, behavior_dir=BDIR)
    ds = load_minari("rebuilt/pointmaze-umaze-diverse-v0", ("achieved_goal",))
    env = make_env("PointMaze_UMaze-v3")
    maze = env.unwrapped.maze
    _, _, _, start, goal = MAZES["umaze"]
    reached = 0
    for sl in ds.episode_slices():
        pos = np.concatenate([ds.observations[sl], ds.next_observations[sl][-1:]])
        cells = [tuple(int(v) for v in maze.cell_xy_to_rowcol(p)) for p in pos]
        seen_start = False
        for c in cells:
            seen_start |= c == start
            assert not (seen_start and c == goal)
        reached += ds.rewards[sl].sum() > 0
    assert reached > 0  # the goal is in the data, reached from elsewhere


def test_cli_list_build_and_offline_download(monkeypatch):
    runner = CliRunner()
    res = runner.invoke(main, ["data", "build", "hopper-random-v2", "--size", "small", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "built rebuilt/hopper-random-v2 (rebuilt): 2,000 transitions" in res.output
    res = runner.invoke(main, ["data", "list", "--suite", "locomotion"])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if "hopper-random-v2" in line)
    assert "recipe" in row and "rebuilt" in row and "2,000 transitions" in row
    assert next(line for line in res.output.splitlines() if "walker2d-expert-v2" in line).endswith(" no")
    res = runner.invoke(main, ["data", "list", "--suite", "adroit"])
    assert "no human demonstrations" in res.output

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for name, alt in (("hopper-expert-v2", "offbench data build hopper-expert-v2"),
                      ("door-human-v1", "offbench data build door-human-v1"),
                      ("pen-human-v1", "cannot be rebuilt here either")):
        res = runner.invoke(main, ["data", "download", name])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and "cannot download" in lines[0] and alt in lines[0], res.output
    res = runner.invoke(main, ["data", "build", "pen-human-v1"])
    assert res.exit_code == 2 and "cannot be rebuilt" in res.output
    res = runner.invoke(main, ["data", "build", "hopper-medium-v2", "--behavior-dir", "/nonexistent/x"])
    assert res.exit_code == 2 and "--behavior-dir" in res.output
    res = runner.invoke(main, ["data", "build", "hopper-medium-v2", "--size", "lots"])
    assert res.exit_code == 2 and "--size" in res.output


def test_iql_runs_end_to_end_on_rebuilt_hopper_medium(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["data", "build", "hopper-medium-v2", "--size", "small", "--no-progress"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["run", "--algo", "iql", "--suite", "locomotion", "--dataset", "hopper-medium-v2",
                               "--steps", "50", "--eval-every", "50", "--eval-episodes", "1", "--no-progress",
                               "--set", "hidden_dims=[32, 32]", "--set", "batch_size=64",
                               "--results", str(tmp_path / "results")])
    assert res.exit_code == 0, res.output
    assert "using the rebuilt dataset rebuilt/hopper-medium-v2" in res.output
    assert "(rebuilt data)" in res.output
    rec = json.loads((tmp_path / "results/locomotion/hopper-medium-v2/iql/seed_0.json").read_text())
    assert rec["status"] == "finished" and rec["data"]["rebuilt"] is True and rec["data"]["kind"] == "rebuilt"
    meta = load_minari("rebuilt/hopper-medium-v2").metadata
    assert rec["reference"]["min"] == pytest.approx(meta["ref_min_score"])
    assert rec["reference"]["max"] == pytest.approx(meta["ref_max_score"])
