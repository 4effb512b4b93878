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
from offbench.data.loaders import load_minari
from offbench.data.suites import get_suite
from offbench.recipes import common
from offbench.recipes.recipes import all_recipes, default_behavior_dir, get_recipe, unbuildable_reason

BDIR = default_behavior_dir()
pytestmark = pytest.mark.skipif(not (BDIR / "policies").exists(), reason=f"no behaviour data at {BDIR}")
MINE = ("locomotion", "adroit", "maze2d", "pointmaze")


@pytest.fixture(scope="session")
def ref_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("refcache")


@pytest.fixture(scope="session")
def sac_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("d4rl_and_sac")


@pytest.fixture(autouse=True)
def _cache(ref_cache, sac_data_dir, monkeypatch):
    monkeypatch.setenv("OFFBENCH_CACHE_DIR", str(ref_cache))
    monkeypatch.setenv("OFFBENCH_DATA_DIR", str(sac_data_dir))  # the small SACs are trained once per session


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
    assert spec["id"] == task.eval_env("rebuilt")[0]


def test_builds_are_deterministic_given_the_seed():
    rec = get_recipe("walker2d-expert-v2")
    fp = []
    for seed in (3, 3, 4):
        rec.build(size=600, seed=seed, behavior_dir=BDIR)
        fp.append(load_minari("rebuilt/walker2d-expert-v2").fingerprint())
    assert fp[0] == fp[1] != fp[2]


def test_sac_learns_on_a_tiny_budget():
    from offbench.envs import make_env
    from offbench.recipes import sac

    cfg = {
        "hidden_dims": (64, 64),
        "batch_size": 64,
        "loop": 250,
        "start_steps": 250,
        "eval_every": 1000,
        "eval_episodes": 5,
    }
    res = sac.train(lambda: make_env("InvertedPendulum-v5"), "InvertedPendulum-v5", 0, None, 4000, cfg)
    evals = [p["eval_return_mean"] for p in res.curve]
    assert [p["env_steps"] for p in res.curve] == [1000, 2000, 3000, 4000] and res.curve[-1]["updates"] == 3750
    assert evals[-1] > 3 * evals[0] and evals[-1] > 40, evals  # measured 5.0 -> 88.8
    assert len(res.buffer["actions"]) == 4000 and not res.reached


def test_medium_replay_is_the_sac_replay_buffer_in_order():
    from offbench.recipes.locomotion import sac_cache_dir

    get_recipe("hopper-medium-replay-v2").build(size="small", seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/hopper-medium-replay-v2")
    with np.load(sac_cache_dir("hopper", 0, small=True) / "buffer.npz") as z:
        buf = {k: z[k] for k in z.files}
    assert len(buf["actions"]) == len(ds) == common.SMALL_SIZE
    np.testing.assert_array_equal(ds.actions, buf["actions"])
    np.testing.assert_array_equal(ds.observations, buf["observations"])
    np.testing.assert_array_equal(ds.rewards, buf["rewards"])
    np.testing.assert_array_equal(ds.terminals, buf["terminations"])
    curve = json.loads((sac_cache_dir("hopper", 0, small=True) / "curve.json").read_text())
    assert curve["recipe_version"] == get_recipe("hopper-medium-replay-v2").version == 3  # 3: stable SAC stop
    assert curve["curve"] and curve["curve"][-1]["env_steps"] == common.SMALL_SIZE
    prov = json.loads(ds.metadata["provenance"])
    assert prov["behaviour_policies"][0]["policy"].startswith("offbench SAC replay buffer")


def test_medium_is_the_sac_sampled_and_medium_expert_is_medium_cut_at_an_episode_end_then_expert():
    from offbench.recipes.locomotion import sac_cache_dir
    from offbench.recipes.policy import MLPPolicy

    get_recipe("hopper-medium-v2").build(size="small", seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/hopper-medium-v2")
    pol = MLPPolicy(sac_cache_dir("hopper", 0, small=True) / "policy.npz")
    mean = np.clip(pol.mean(ds.observations), -1, 1)
    assert np.abs(ds.actions - mean).mean() > 0.05  # sampled, not the mean
    get_recipe("hopper-medium-expert-v2").build(size=2000, seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/hopper-medium-expert-v2")
    prov = json.loads(ds.metadata["provenance"])
    parts = prov["behaviour_policies"]
    assert parts[0]["policy"] == "offbench SAC" and parts[1]["file"] == "policies/hopper-tqc.npz"
    m = parts[0]["transitions"]
    assert 0 < m <= 1000 and m + parts[1]["transitions"] == 2000
    assert ds.episode_ends[m - 1] and ds.terminals[m - 1] == 1.0  # the medium part ends where an episode ends
    assert ds.rewards[m:].mean() > ds.rewards[:m].mean()  # the expert part returns more per step


def test_expert_actions_are_sampled_through_the_log_std_head():
    from offbench.recipes.policy import load_policy

    pol = load_policy(BDIR, "hopper-tqc")
    obs = np.random.default_rng(0).normal(size=(64, 11))
    h, mu = pol._forward(obs)
    log_std = np.clip(h @ pol.log_std_head[0] + pol.log_std_head[1], -20, 2)
    z = np.random.default_rng(1).standard_normal(mu.shape)
    np.testing.assert_allclose(
        pol.sample(obs, np.random.default_rng(1)), np.tanh(mu + np.exp(log_std) * z) * pol.act_scale + pol.act_shift
    )
    get_recipe("hopper-expert-v2").build(size=600, seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/hopper-expert-v2")
    assert np.abs(ds.actions - np.clip(pol.mean(ds.observations), -1, 1)).mean() > 0.02
    prov = json.loads(ds.metadata["provenance"])
    assert prov["behaviour_policies"][0]["action"] == "sampled"


def test_reference_episode_counts_and_spread(monkeypatch):
    from offbench.recipes import references

    assert references.ref_episodes(1_000_000) == (100, 100) and references.ref_episodes(common.SMALL_SIZE) == (2, 2)
    monkeypatch.setattr(references, "ref_episodes", lambda n: (7, 3))  # the counts reach the metadata as measured
    from offbench.recipes.locomotion import refs_for

    refs = refs_for("hopper", BDIR, 10_000)
    assert refs["ref_min_episodes"] == 7 and refs["ref_max_episodes"] == 3
    assert len(refs["random_returns"]) == 7 and len(refs["expert_returns"]) == 3
    assert refs["ref_max_std"] == pytest.approx(np.std(refs["expert_returns"]))
    assert refs["expert_action"].startswith("sampled")


def test_recipe_version_is_stored_and_older_builds_are_stale():
    from offbench.recipes.recipes import stale_reason

    get_recipe("hopper-random-v2").build(size="small", seed=0, behavior_dir=BDIR)
    meta = load_minari("rebuilt/hopper-random-v2").metadata
    assert meta["recipe"] == "hopper-random-v2" and meta["recipe_version"] == 2
    assert meta["recipe_size"] == 2000 and meta["recipe_default_size"] == 1_000_000
    assert json.loads(meta["references"])["ref_min_episodes"] == 2
    assert stale_reason("hopper-random-v2", meta) == ""
    assert "version 1" in stale_reason("hopper-random-v2", {"rebuilt": True})  # written before versions
    assert "version 1" in stale_reason("hopper-random-v2", {**meta, "recipe_version": 1})
    assert stale_reason("hopper-random-v2", {}) == ""  # not rebuilt data
    assert get_recipe("pen-cloned-v1").version == 2 and get_recipe("door-expert-v1").version == 2
    # the data list marks it
    import minari

    minari.load_dataset("rebuilt/hopper-random-v2").storage.update_metadata({"recipe_version": 1})
    res = CliRunner().invoke(main, ["data", "list", "--suite", "locomotion"])
    row = next(line for line in res.output.splitlines() if "hopper-random-v2" in line)
    assert "STALE" in row and "recipe is v2" in row, res.output
    assert "built by an older recipe" in res.output
    # the source exposes the version for records
    from offbench.data.sources import resolve

    src = resolve(get_suite("locomotion"), "hopper-random-v2", {})
    assert src.recipe == "hopper-random-v2" and src.recipe_version == 1 and src.recipe_size == 2000


def test_data_build_refuses_to_replace_a_build_without_overwrite():
    runner = CliRunner()
    res = runner.invoke(main, ["data", "build", "hopper-random-v2", "--size", "small", "--no-progress"])
    assert res.exit_code == 0, res.output
    fp = load_minari("rebuilt/hopper-random-v2").fingerprint()
    for args in (["--size", "3000"], ["--size", "small"], []):
        res = runner.invoke(main, ["data", "build", "hopper-random-v2", *args, "--no-progress"])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and ("already built" in lines[0] or "already exists" in lines[0]), res.output
        assert "--overwrite" in lines[0] and "2,000 transitions" in lines[0]
    assert load_minari("rebuilt/hopper-random-v2").fingerprint() == fp  # untouched
    res = runner.invoke(main, ["data", "build", "hopper-random-v2", "--size", "3000", "--no-progress", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert len(load_minari("rebuilt/hopper-random-v2")) == 3000


def test_adroit_cloned_sizes_labels_and_order_as_d4rl():
    assert get_recipe("pen-cloned-v1").default_size == 500_000
    assert get_recipe("door-cloned-v1").default_size == get_recipe("hammer-cloned-v1").default_size == 1_000_000
    assert get_recipe("pen-cloned-v1").label == "rebuilt (expert demos)"
    assert get_recipe("relocate-cloned-v1").label == "rebuilt (expert demos)"
    assert get_recipe("door-cloned-v1").label == "rebuilt"
    get_recipe("pen-cloned-v1").build(size="small", seed=0, behavior_dir=BDIR)
    ds = load_minari("rebuilt/pen-cloned-v1")
    prov = json.loads(ds.metadata["provenance"])
    bc = prov["behaviour"]["bc_policy"]["transitions"]
    assert bc == 1000 and prov["behaviour"]["demonstrations"]["transitions"] == 1000
    assert ds.episode_ends[bc - 1]  # the BC half ends where an episode ends, the demonstrations follow
    assert json.loads(ds.metadata["references"])["expert_action"] == "sampled (log_std)"


def test_walker2d_evaluation_env_by_data_kind(tmp_path):
    from offbench.data.sources import resolve

    suite = get_suite("locomotion")
    task = suite.task("walker2d-medium-v2")
    assert task.eval_env("original")[0] == task.eval_env("file")[0] == "Walker2d-v4"
    assert task.eval_env("rebuilt")[0] == "Walker2d-v5"
    assert suite.task("hopper-medium-v2").eval_env("original")[0] == "Hopper-v5"
    get_recipe("walker2d-random-v2").build(size="small", seed=0, behavior_dir=BDIR)
    src = resolve(suite, "walker2d-random-v2", {})
    assert src.kind == "rebuilt" and src.env_id == "Walker2d-v5"
    assert json.loads(src.eval_env_spec)["id"] == "Walker2d-v5"
    # an original D4RL file of walker2d is evaluated in D4RL's own task: the v3 model as Gymnasium's v4 ships it
    import h5py

    path = tmp_path / "walker2d-random-v2.hdf5"
    ds = load_minari("rebuilt/walker2d-random-v2")
    with h5py.File(path, "w") as f:
        for k, v in (
            ("observations", ds.observations),
            ("actions", ds.actions),
            ("rewards", ds.rewards),
            ("terminals", ds.terminals > 0),
            ("timeouts", ds.episode_ends & (ds.terminals == 0)),
        ):
            f[k] = v
    src = resolve(suite, str(path), {})
    assert src.kind == "file" and src.env_id == "D4RL-Walker2d-v2" and src.env_family == "d4rl"
    env = src.env_factory()()
    assert env.spec.id == "D4RL-Walker2d-v2" and type(env.unwrapped).__module__.endswith("walker2d_v4")


def test_data_info_prints_the_card():
    get_recipe("hopper-random-v2").build(size="small", seed=0, behavior_dir=BDIR)
    res = CliRunner().invoke(main, ["data", "info", "hopper-random-v2"])
    assert res.exit_code == 0, res.output
    for word in (
        "transitions        2,000",
        "episodes",
        "terminals",
        "timeouts",
        "rewarded steps",
        "successful eps     n/a",
        "on its own references",
        "on D4RL's references",
        "version 2",
    ):
        assert word in res.output, res.output
    res = CliRunner().invoke(main, ["data", "info", "hopper-random-v2", "--json"])
    c = json.loads(res.output)
    ds = load_minari("rebuilt/hopper-random-v2")
    assert c["episodes"] == int(ds.episode_ends.sum()) and c["transitions"] == 2000
    assert c["terminal_fraction"] == pytest.approx(ds.terminals.mean())
    lo, hi = ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]
    assert c["score_own_refs"] == pytest.approx(100 * (ds.episode_returns().mean() - lo) / (hi - lo))
    res = CliRunner().invoke(main, ["data", "info", "walker2d-expert-v2"])
    assert res.exit_code == 2 and "not present" in res.output


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
    from offbench.envs import make_env
    from offbench.recipes.maze2d import MAZES

    # medium-play: umaze's goal is a dead end that no path crosses once the goal is never commanded (recipe v2)
    get_recipe("pointmaze-medium-play-v0").build(size=20_000, seed=1, behavior_dir=BDIR)
    ds = load_minari("rebuilt/pointmaze-medium-play-v0", ("achieved_goal",))
    env = make_env("PointMaze_Medium-v3")
    maze = env.unwrapped.maze
    _, _, _, start, goal = MAZES["medium"]
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
    for name, alt in (
        ("hopper-expert-v2", "offbench data build hopper-expert-v2"),
        ("door-human-v1", "offbench data build door-human-v1"),
        ("pen-human-v1", "cannot be rebuilt here either"),
    ):
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
    res = runner.invoke(
        main,
        [
            "run",
            "--algo",
            "iql",
            "--suite",
            "locomotion",
            "--dataset",
            "hopper-medium-v2",
            "--steps",
            "50",
            "--eval-every",
            "50",
            "--eval-episodes",
            "1",
            "--no-progress",
            "--set",
            "hidden_dims=[32, 32]",
            "--set",
            "batch_size=64",
            "--results",
            str(tmp_path / "results"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "using the rebuilt dataset rebuilt/hopper-medium-v2" in res.output
    assert "(rebuilt data)" in res.output
    found = sorted((tmp_path / "results/locomotion/hopper-medium-v2").rglob("seed_0.json"))  # any run-dir layout
    assert len(found) == 1, found
    rec = json.loads(found[0].read_text())
    assert rec["status"] == "finished" and rec["data"]["rebuilt"] is True and rec["data"]["kind"] == "rebuilt"
    meta = load_minari("rebuilt/hopper-medium-v2").metadata
    assert rec["reference"]["min"] == pytest.approx(meta["ref_min_score"])
    assert rec["reference"]["max"] == pytest.approx(meta["ref_max_score"])


def test_data_card_script_writes_the_table(tmp_path):
    import importlib.util
    from pathlib import Path

    get_recipe("hopper-random-v2").build(size="small", seed=0, behavior_dir=BDIR)
    path = Path(__file__).resolve().parents[1] / "scripts" / "data_card.py"
    spec = importlib.util.spec_from_file_location("data_card", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = tmp_path / "data.md"
    doc.write_text(f"before\n{mod.BEGIN}\nold table\n{mod.END}\nafter\n")
    assert mod.main(["--write", str(doc)]) == 0
    text = doc.read_text()
    assert "old table" not in text and text.startswith("before") and text.endswith("after\n")
    row = next(line for line in text.splitlines() if line.startswith("| hopper-random-v2 "))
    assert "v2 small build" in row and "| 2,000 |" in row and "| 1,000,000 |" in row  # D4RL's size beside it
    bad = tmp_path / "nomarkers.md"
    bad.write_text("x")
    assert mod.main(["--write", str(bad)]) == 2 and bad.read_text() == "x"
