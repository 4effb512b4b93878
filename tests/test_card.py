"""The data card (``offbench/data/card.py``, ``offbench data info``, ``scripts/data_card.py``): AntMaze episodes
are the collected trajectories (a terminal in the middle of one counts once), goal reaching from the positions,
and the card script reading datasets from several Minari folders."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.data.card import card, trajectory_ends
from offbench.data.loaders import Dataset, load_minari
from offbench.data.suites import get_suite
from offbench.data.tasks import eval_goal_xy
from offbench.recipes import ant_controller as ac

BEHAVIOR = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_expert = pytest.mark.skipif(
    not (BEHAVIOR / ac.POLICY_FILE).exists(), reason="../shared/data/policies/ant-expert.npz is not present"
)
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "data_card.py"


def _antmaze_like(goal):
    """Three trajectories as the Minari loader lays them out (next observation = the episode's own): the first
    passes the goal in its middle (terminals there, the trajectory goes on), the second ends at the goal (its
    last step is terminal and a truncation; a reset follows), the third never comes near it."""
    rng = np.random.default_rng(0)
    lengths, obs_l, nxt_l, rew_l, term_l, end_l = (10, 8, 6), [], [], [], [], []
    for k, t in enumerate(lengths):
        o = rng.normal(size=(t + 1, 29)).astype(np.float32)
        o[:, :2] = goal + 5.0  # far from the goal
        if k == 0:
            o[4:7, :2] = goal  # next observations of steps 3, 4, 5 are at the goal
        if k == 1:
            o[t, :2] = goal + 0.3  # the last next observation is inside 0.5 m
        near = np.linalg.norm(o[1:, :2] - goal, axis=-1) <= 0.5
        obs_l.append(o[:-1]), nxt_l.append(o[1:]), rew_l.append(near.astype(np.float32))
        term_l.append(near)
        e = near.copy()  # the loader's episode ends: terminals and the truncation at the timeout
        e[-1] = True
        end_l.append(e)
    cat = np.concatenate
    ds = Dataset(cat(obs_l), np.zeros((sum(lengths), 8)), cat(rew_l), cat(nxt_l), cat(term_l), cat(end_l))
    return ds, lengths


def test_antmaze_episodes_are_the_collected_trajectories():
    suite = get_suite("antmaze")
    task = suite.task("antmaze-umaze-v2")
    ds, lengths = _antmaze_like(np.asarray(eval_goal_xy(task), np.float32))
    ends_before = ds.episode_ends.copy()
    assert int(ds.episode_ends.sum()) == 6  # what training sees: the terminals split the first trajectory
    c = card(ds, task, suite)
    assert c["episodes"] == 3 and c["episode_length_mean"] == pytest.approx(np.mean(lengths))
    assert (c["episode_length_min"], c["episode_length_max"]) == (6, 10)
    assert c["success_fraction"] == pytest.approx(2 / 3) and c["score_own_refs"] == pytest.approx(200 / 3)
    assert c["eval_goal_trajectory_fraction"] == pytest.approx(2 / 3)
    assert c["eval_goal_step_fraction"] == pytest.approx(4 / 24) == c["rewarded_step_fraction"]
    assert c["return_mean"] == pytest.approx(4 / 3)  # rewarded steps per trajectory: 3, 1, 0
    assert c["flipped_trajectory_fraction"] is None and c["commanded_goal_trajectory_fraction"] is None
    np.testing.assert_array_equal(ds.episode_ends, ends_before)  # the card changes nothing training uses
    np.testing.assert_array_equal(np.flatnonzero(trajectory_ends(ds)), np.cumsum(lengths) - 1)
    loco = card(ds, None, get_suite("locomotion"))  # where a terminal ends the episode, it still splits there
    assert loco["episodes"] == 6 and loco["success_fraction"] is None


def test_the_goal_fraction_is_measured_on_positions_not_on_the_labels():
    """Rewards for another goal (version-1 data) do not pass for reaching the evaluation goal."""
    suite = get_suite("antmaze")
    task = suite.task("antmaze-umaze-v2")
    ds, _ = _antmaze_like(np.asarray(eval_goal_xy(task), np.float32) + 3.0)  # labels for a goal 4.2 m away
    c = card(ds, task, suite)
    assert c["rewarded_step_fraction"] > 0 and c["success_fraction"] == pytest.approx(2 / 3)
    assert c["eval_goal_trajectory_fraction"] == 0 and c["eval_goal_step_fraction"] == 0


@needs_expert
def test_card_of_a_tiny_antmaze_build_counts_each_trajectory_once():
    from offbench.recipes.recipes import get_recipe

    size = 1300  # one 1001-step trajectory and a cut one
    get_recipe("antmaze-umaze-v2").build(size, 3, BEHAVIOR, False)
    ds = load_minari("rebuilt/antmaze-umaze-v2", ("achieved_goal", "observation"))
    import minari

    n_eps = len(list(minari.load_dataset("rebuilt/antmaze-umaze-v2").iterate_episodes()))
    assert n_eps == 2 and ds.terminals[:1000].sum() > 0  # terminals in the middle of the first trajectory
    assert int(ds.episode_ends.sum()) > n_eps  # splitting at terminals would count every goal visit
    res = CliRunner().invoke(main, ["data", "info", "antmaze-umaze-v2", "--json"])
    assert res.exit_code == 0, res.output
    c = json.loads(res.output)
    prov = json.loads(ds.metadata["provenance"])
    assert c["episodes"] == n_eps == prov["episodes"]
    assert (c["episode_length_min"], c["episode_length_max"]) == (size - 1001, 1001)
    assert c["eval_goal_trajectory_fraction"] == pytest.approx(prov["eval_goal_episode_fraction"])
    assert c["rewarded_step_fraction"] == pytest.approx(prov["rewarded_step_fraction"], abs=1e-5)
    assert c["flipped_trajectory_fraction"] == pytest.approx(prov["flipped_episode_fraction"])
    assert c["commanded_goal_trajectory_fraction"] == pytest.approx(prov["commanded_goal_episode_fraction"])
    text = CliRunner().invoke(main, ["data", "info", "antmaze-umaze-v2"]).output
    assert "episodes           2  (length mean 650.0" in text and "of trajectories (positions)" in text


def _script():
    spec = importlib.util.spec_from_file_location("data_card", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _from_scripts(name: str):
    """``scripts/<name>.py`` imported by name, with scripts/ on sys.path while it loads (the calibration scripts
    import ``calibration`` from their own folder)."""
    import importlib
    import sys

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


@needs_expert
def test_card_script_reads_each_dataset_from_the_folder_that_has_it(tmp_path, monkeypatch, capsys):
    from offbench.recipes.recipes import get_recipe

    dirs = [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(dirs[0]))
    get_recipe("antmaze-umaze-v2").build(1300, 3, BEHAVIOR, False)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(dirs[1]))
    get_recipe("antmaze-umaze-diverse-v2").build(1100, 0, BEHAVIOR, False)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty"))
    mod = _script()
    doc = tmp_path / "antmaze.md"
    doc.write_text(f"top\n{mod.AM_BEGIN}\nold\n{mod.AM_END}\nbottom\n")
    args = ["--minari-dir", str(dirs[0]), "--minari-dir", str(dirs[1])]
    assert mod.main([*args, "--write", str(doc)]) == 0
    assert os.environ["MINARI_DATASETS_PATH"] == str(tmp_path / "empty")  # restored
    text = doc.read_text()
    assert "old" not in text and text.startswith("top") and text.endswith("bottom\n")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| antmaze-")}
    assert set(rows) == {"antmaze-umaze-v2", "antmaze-umaze-diverse-v2"}
    assert "| 1,300 | 2 | 650.0 |" in rows["antmaze-umaze-v2"] and "small build" in rows["antmaze-umaze-v2"]
    assert "| 1,100 | 2 | 550.0 |" in rows["antmaze-umaze-diverse-v2"]
    assert "| 1,000,000 | 1,000 (1000.0) |" in rows["antmaze-umaze-v2"]  # D4RL's, from its generator
    head = next(line for line in text.splitlines() if line.startswith("| dataset"))
    assert "BC on this data (steps, seeds)" in head  # issue 28: BC on the build beside BC published
    assert all(r.count("|") == head.count("|") for r in rows.values())
    assert mod.main([*args, "antmaze-large-play-v2"]) == 2  # in none of the folders: one clear line
    assert "antmaze-large-play-v2" in capsys.readouterr().err


def test_return_distribution_beside_what_d4rl_publishes_of_its_buffer():
    """Dense-reward cards: return quantiles on D4RL's references and the last tenth of the episodes (where a replay
    buffer's SAC stopped); medium-replay cards name D4RL's buffer size and say that no distribution is published."""
    from offbench.data.card import format_card

    suite = get_suite("locomotion")
    task = suite.task("hopper-medium-replay-v2")
    n_eps, length = 20, 5
    rewards = np.repeat(np.arange(n_eps, dtype=np.float32), length)  # episode k returns 5 k, collection order
    ends = np.zeros(n_eps * length, bool)
    ends[length - 1 :: length] = True
    obs = np.zeros((n_eps * length, 11))
    ds = Dataset(obs, np.zeros((n_eps * length, 3)), rewards, obs, np.zeros(n_eps * length), ends)
    c = card(ds, task, suite)
    dist = c["return_distribution"]
    returns = 5.0 * np.arange(n_eps)
    assert dist["return_quantiles"] == pytest.approx(np.percentile(returns, dist["percentiles"]).tolist())
    assert dist["last_tenth_return_mean"] == pytest.approx(np.mean(returns[-2:]))  # episodes 18 and 19
    lo, hi = task.ref_min_score, task.ref_max_score
    assert dist["return_quantiles_d4rl"][-1] == pytest.approx(100 * (95.0 - lo) / (hi - lo))
    assert c["d4rl_buffer"]["transitions"] == 402_000
    text = "\n".join(format_card("hopper-medium-replay-v2", c))
    assert "no published return distribution" in text and "402,000 transitions (here 100)" in text
    assert "bc_on_this_data" not in c  # not a goal-reaching set


def test_kitchen_behaviour_is_scored_by_the_subtasks_done_not_by_the_sum_of_its_rewards():
    """Kitchen data's reward counts the target subtasks done at each step (D4RL's relabelling and Minari's, with
    remove_task_when_completed False): an episode's sum is no score. The card scores each episode by the most
    subtasks it had done at once, as the evaluation counts each subtask once (D4RL's references 0 / 4)."""
    from offbench.data.card import format_card

    suite = get_suite("kitchen")
    task = suite.task("kitchen-partial-v0")
    # episode 0 does two subtasks and holds them 8 steps (sum 2 + 16 = 18); episode 1 does all four, then rests
    r0 = np.array([0, 1, 1] + [2] * 8 + [0] * 9, np.float32)
    r1 = np.array([0, 1, 2, 3] + [4] * 16, np.float32)
    rewards, n = np.concatenate([r0, r1]), 40
    ends = np.zeros(n, bool)
    ends[[19, 39]] = True
    obs = np.zeros((n, 30))
    c = card(Dataset(obs, np.zeros((n, 9)), rewards, obs, ends.astype(np.float32), ends), task, suite)
    assert c["return_mean"] == pytest.approx((r0.sum() + r1.sum()) / 2)  # the sum, still shown as the return
    assert c["score_d4rl_refs"] == pytest.approx(100 * (2 + 4) / 2 / 4)  # 75: two subtasks and four
    assert c["success_fraction"] == 0.5 and c["scored_by"] == "most subtasks done at once"
    assert c["return_distribution"]["return_quantiles"][-1] == 4.0
    text = "\n".join(format_card("kitchen-partial-v0", c))
    assert "an episode's most subtasks done at once" in text and "subtasks done      0/10" in text


def test_bc_on_this_data_beside_the_published_bc(tmp_path):
    """Rebuilt goal-reaching cards read BC's score on the build from rebuilt_bc.csv by recipe version, beside BC's
    published scores on D4RL's data; another version's row is "not measured"."""
    import shutil

    from offbench.data.card import format_card
    from offbench.resources import reference_dir

    ref = tmp_path / "reference"
    ref.mkdir()
    for f in ("published_scores.csv", "sources.csv"):
        shutil.copy(reference_dir() / f, ref / f)
    (ref / "rebuilt_bc.csv").write_text(
        "dataset,recipe_version,bc_score,bc_sd,steps,seeds,eval_episodes,data_seeds,proxy_success,command,date\n"
        "antmaze-umaze-v2,3,57.0,6.2,100000,3,100,0,0.68,scripts/calibrate_antmaze.py --bc,2026-12-06\n"
        "antmaze-medium-play-v2,3,,,,,,,0.41,scripts/calibrate_antmaze.py,2026-12-06\n"
        "antmaze-umaze-v2,3,12.0,1.0,20000,3,100,0,0.68,a shorter run written after (the file's order),2026-12-06\n"
        "antmaze-umaze-v2,3,,,,,,,0.70,a proxy-only row written last,2026-12-06\n"
        "antmaze-large-play-v2,3,1.0,0.5,100000,3,100,0,,one build,2026-12-06\n"
        "antmaze-large-play-v2,3,2.0,0.5,100000,3,100,0 1 2,,three builds (data seeds),2026-12-06\n"
        "antmaze-large-play-v2,3,3.0,0.5,60000,3,100,0 1 2 3,,four builds but shorter,2026-12-06\n"
    )
    suite = get_suite("antmaze")
    task = suite.task("antmaze-umaze-v2")
    ds, _ = _antmaze_like(np.asarray(eval_goal_xy(task), np.float32))
    ds.metadata = {"rebuilt": True, "recipe_version": 3}
    c = card(ds, task, suite, reference=ref)
    assert float(c["bc_on_this_data"]["bc_score"]) == 57.0
    published = {p["source"]: p for p in c["published_bc"]}
    assert published["IQL paper, Table 1"]["score"] == 54.6 and published["IQL paper, Table 1"]["std"] is None
    assert published["CORL (last)"]["score"] == 55.25 and published["CORL (last)"]["dataset"] == "antmaze-umaze-v2"
    text = "\n".join(format_card("antmaze-umaze-v2", c))
    assert "BC on this data    57.0 +- 6.2 (100,000 steps, 3 seeds, 100 eval episodes, data seed 0;" in text
    assert "IQL paper, Table 1 54.6 [antmaze-umaze-v0]" in text
    ds.metadata = {"rebuilt": True, "recipe_version": 3, "recipe_size": 20_000, "recipe_default_size": 1_000_000}
    assert "this one is a 20,000-transition build" in "\n".join(format_card("x", card(ds, task, suite, reference=ref)))
    ds.metadata = {"rebuilt": True, "recipe_version": 2}  # a v2 build: the v3 row is not its BC
    assert "not measured for recipe version 2" in "\n".join(format_card("x", card(ds, task, suite, reference=ref)))
    mp = suite.task("antmaze-medium-play-v2")
    ds.metadata = {"rebuilt": True, "recipe_version": 3}
    text = "\n".join(format_card("x", card(ds, mp, suite, reference=ref)))
    assert "not measured for recipe version 3" in text and "proxy success 0.41" in text  # proxy only, BC not run
    lp = suite.task("antmaze-large-play-v2")  # of equally long runs, the one on most builds; longest first
    text = "\n".join(format_card("x", card(ds, lp, suite, reference=ref)))
    assert (
        "BC on this data    2.0 +- 0.5 (100,000 steps, 3 seeds, 100 eval episodes, 3 builds: data seeds 0 1 2" in text
    )
    ds.metadata = {"rebuilt": True, "recipe_version": 3, "provenance": '{"seed": 3}'}  # a build of data seed 3:
    text = "\n".join(format_card("x", card(ds, lp, suite, reference=ref)))  # the row over its seed, if shorter
    assert "3.0 +- 0.5 (60,000 steps, 3 seeds, 100 eval episodes, 4 builds: data seeds 0 1 2 3" in text
    ds.metadata = {"rebuilt": True, "recipe_version": 3, "provenance": {"seed": 7}}  # no row over seed 7: as before
    assert "2.0 +- 0.5 (100,000 steps" in "\n".join(format_card("x", card(ds, lp, suite, reference=ref)))
    ds.metadata = {}  # original data: no such line
    assert "bc_on_this_data" not in card(ds, task, suite, reference=ref)


def test_bc_on_this_data_is_a_row_of_the_observation_the_suite_shows_now(tmp_path):
    """A rebuilt_bc.csv row names the observation BC saw (obs_dim): the card skips a row of another observation
    (Kitchen's rows from before the suite showed the rebuilt data as D4RL's joint positions were 59-d) and
    says which one it shows; a row without obs_dim (not recorded) still counts."""
    import shutil

    from offbench.data.card import format_card
    from offbench.resources import reference_dir

    ref = tmp_path / "reference"
    ref.mkdir()
    for f in ("published_scores.csv", "sources.csv"):
        shutil.copy(reference_dir() / f, ref / f)
    head = "dataset,recipe_version,bc_score,bc_sd,steps,seeds,eval_episodes,data_seeds,obs_dim,proxy_success,command,date\n"
    suite = get_suite("antmaze")
    task = suite.task("antmaze-umaze-v2")
    ds, _ = _antmaze_like(np.asarray(eval_goal_xy(task), np.float32))
    ds.metadata = {"rebuilt": True, "recipe_version": 3}
    dim = ds.observations.shape[1]
    (ref / "rebuilt_bc.csv").write_text(
        head + "antmaze-umaze-v2,3,36.7,1.0,100000,3,100,0,59,,longest but another observation,2026-12-06\n"
        f"antmaze-umaze-v2,3,19.6,1.0,60000,3,100,0,{dim},,this observation,2026-12-07\n"
    )
    text = "\n".join(format_card("x", card(ds, task, suite, reference=ref)))
    assert (
        f"BC on this data    19.6 +- 1.0 (60,000 steps, 3 seeds, 100 eval episodes, data seed 0; {dim}-d observation;"
        in text
    )
    (ref / "rebuilt_bc.csv").write_text(head + "antmaze-umaze-v2,3,36.7,1.0,100000,3,100,0,59,,other,2026-12-06\n")
    assert "not measured for recipe version 3" in "\n".join(format_card("x", card(ds, task, suite, reference=ref)))
    (ref / "rebuilt_bc.csv").write_text(head + "antmaze-umaze-v2,3,36.7,1.0,100000,3,100,0,,,not recorded,2026-12-06\n")
    assert "36.7 +- 1.0 (100,000 steps" in "\n".join(format_card("x", card(ds, task, suite, reference=ref)))


def test_calibration_write_row_replaces_its_own_row_and_sorts_rows_read_back_as_text(tmp_path):
    """scripts/calibration.write_row: a script's row (ints) replaces the row with the same key among rows read
    from the CSV (text), keeps the others, and sorts without comparing int with str (it once crashed after a
    whole BC calibration had run)."""
    import csv

    write_row = _from_scripts("calibration").write_row
    table = tmp_path / "rebuilt_bc.csv"
    table.write_text(  # a table written before the data_seeds column: its BC rows ran on data seed 0
        "dataset,recipe_version,bc_score,bc_sd,steps,seeds,eval_episodes,proxy_success,command,date\n"
        "kitchen-complete-v0,3,21.67,20.21,20000,3,10,75.0,old,2026-12-06\n"
        "antmaze-umaze-v2,3,,,,,,70.0,proxy,2026-12-06\n"
        "antmaze-umaze-v2,3,1.0,1.0,100000,3,100,,replaced,2026-12-06\n"
        "antmaze-umaze-v2,3,2.0,1.0,20000,3,100,,shorter,2026-12-06\n"
    )
    row = dict(dataset="antmaze-umaze-v2", recipe_version=3, bc_score=43.67, bc_sd=8.14, steps=100000, seeds=3)
    write_row({**row, "eval_episodes": 100, "command": "new", "date": "2026-12-06"}, table)
    rows = list(csv.DictReader(open(table)))
    assert [(r["dataset"], r["command"]) for r in rows] == [
        ("antmaze-umaze-v2", "proxy"),
        ("antmaze-umaze-v2", "shorter"),  # 20,000 steps before 100,000: numbers, not text
        ("antmaze-umaze-v2", "new"),
        ("kitchen-complete-v0", "old"),
    ]
    assert rows[2]["bc_score"] == "43.67" and rows[2]["steps"] == "100000"
    assert [r["data_seeds"] for r in rows] == ["", "0", "0", "0"]  # BC rows: seed 0 unless named; proxy: no build
    write_row({**row, "eval_episodes": 100, "data_seeds": "0 1 2", "command": "builds", "date": "2026-12-06"}, table)
    rows = list(csv.DictReader(open(table)))  # another key: the single-build row stays
    assert [(r["command"], r["data_seeds"]) for r in rows if r["steps"] == "100000"] == [
        ("new", "0"),
        ("builds", "0 1 2"),
    ]


def test_kitchen_calibration_trains_bc_on_one_build_per_data_seed(tmp_path, monkeypatch, capsys):
    """scripts/calibrate_kitchen.py --build-seeds 0 1: each data seed is built (with that seed) in its own
    MINARI_DATASETS_PATH and trained in its own results folder, never rebuilt by the run; the score is the mean
    of every run, the row names the seeds. Seed 0 alone keeps the folders as given (what `offbench run` builds)."""
    import os

    import offbench
    from offbench.data import fetch

    calibrate_kitchen = _from_scripts("calibrate_kitchen")
    built, ran = [], []

    def build(name, size=None, seed=0, **kw):
        built.append((name, seed, os.environ["MINARI_DATASETS_PATH"]))
        return name, "built", 0.0

    def run(algo, suite, datasets, **kw):
        ran.append((os.environ["MINARI_DATASETS_PATH"], kw["results"], kw["rebuild"]))
        base = 10.0 * len(ran)
        return [{"final_score": base, "data": {"obs_dim": 30}}, {"final_score": base + 2.0, "data": {"obs_dim": 30}}]

    monkeypatch.setattr(fetch, "build_locked", build)
    monkeypatch.setattr(offbench, "run", run)
    monkeypatch.setattr(calibrate_kitchen, "build_demo_score", lambda kind: (70.0 + len(built), 10))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "m"))
    out = calibrate_kitchen.run_bc(["complete"], 100, 2, 5, str(tmp_path / "r"), None, [0, 3])["complete"]
    assert built == [("kitchen-complete-v0", 0, str(tmp_path / "m" / "data-seed-0")),
                     ("kitchen-complete-v0", 3, str(tmp_path / "m" / "data-seed-3"))]  # fmt: skip
    assert ran == [
        (str(tmp_path / "m" / "data-seed-0"), str(tmp_path / "r" / "data-seed-0"), False),
        (str(tmp_path / "m" / "data-seed-3"), str(tmp_path / "r" / "data-seed-3"), False),
    ]
    assert (
        out["bc_scores"] == [10.0, 12.0, 20.0, 22.0] and out["bc_score"] == 16.0 and out["build_means"] == [11.0, 21.0]
    )
    assert out["demo_scores"] == [71.0, 72.0]  # each build's own, read after that build
    assert os.environ["MINARI_DATASETS_PATH"] == str(tmp_path / "m")  # restored
    built.clear(), ran.clear()
    calibrate_kitchen.run_bc(["complete"], 100, 2, 5, str(tmp_path / "r"), None, [0])
    assert built[0][2] == str(tmp_path / "m") and ran[0][1] == str(tmp_path / "r")
    rows = []  # the row main() writes names the data seeds
    built.clear(), ran.clear()
    monkeypatch.setattr(calibrate_kitchen, "write_row", rows.append)
    argv = ["--kinds", "complete", "--episodes", "0", "--bc", "--bc-steps", "100", "--bc-seeds", "2", "--build-seeds"]
    calibrate_kitchen.main([*argv, "1", "2", "--minari-dir", str(tmp_path / "m"), "--results", str(tmp_path / "r")])
    assert rows[0]["data_seeds"] == "1 2" and rows[0]["bc_score"] == 16.0
    assert rows[0]["obs_dim"] == 30  # the observation the runs saw, from their records
    assert [b[1] for b in built] == [1, 2]
    # --funnel: a candidate demonstrator (kitchen_demo.FUNNEL) builds the data; its numbers are printed, no row
    from offbench.recipes import kitchen_demo

    monkeypatch.setattr(kitchen_demo, "FUNNEL", kitchen_demo.FUNNEL)  # (restored after the test)
    rows.clear(), built.clear()
    funnels = []

    def build_noting_funnel(*a, **k):
        funnels.append(kitchen_demo.FUNNEL)
        return build(*a, **k)

    monkeypatch.setattr(fetch, "build_locked", build_noting_funnel)
    capsys.readouterr()
    calibrate_kitchen.main(
        [*argv, "1", "--funnel", "3", "--minari-dir", str(tmp_path / "m"), "--results", str(tmp_path / "r")]
    )
    assert funnels == [3.0] and rows == [] and "with kitchen_demo.FUNNEL 3.0" in capsys.readouterr().out
    # --set MODULE.CONST=VALUE: any recipe constant, as its own type, before anything builds; no row either
    from offbench.recipes import kitchen

    monkeypatch.setattr(kitchen, "PAUSE_MAX", kitchen.PAUSE_MAX)
    monkeypatch.setattr(kitchen, "ACTION_NOISE", kitchen.ACTION_NOISE)
    seen = []
    monkeypatch.setattr(
        fetch, "build_locked", lambda *a, **k: seen.append((kitchen.PAUSE_MAX, kitchen.ACTION_NOISE)) or build(*a, **k)
    )
    sets = ["--set", "kitchen.PAUSE_MAX=0", "--set", "kitchen.ACTION_NOISE=0.05"]
    calibrate_kitchen.main([*argv, "1", *sets, "--minari-dir", str(tmp_path / "m"), "--results", str(tmp_path / "r")])
    assert seen == [(0, 0.05)] and type(seen[0][0]) is int and rows == []
    assert "with kitchen.PAUSE_MAX 0, kitchen.ACTION_NOISE 0.05" in capsys.readouterr().out
    for bad in (
        "kitchen.NOPE=1",
        "os.PATH=1",
        "kitchen.PAUSE_MAX",
        "kitchen.PAUSE_MAX=0.5",
        "kitchen.COMPLETE=1",
        "kitchen.ACTION_NOISE=x",
    ):
        with pytest.raises(SystemExit):
            calibrate_kitchen.main([*argv, "1", "--set", bad, "--minari-dir", str(tmp_path / "m"), "--results", "r"])
        assert f"--set {bad}: expected MODULE.CONST=VALUE" in capsys.readouterr().err


def test_kitchen_demo_score_counts_each_ended_demo_at_the_evaluations_limit():
    """``calibrate_kitchen.demo_score``: a demo's targets done by step ``limit`` (its reward there, D4RL's running
    count), over the demos that end in a terminal; a cut last demo is left out."""

    calibrate_kitchen = _from_scripts("calibrate_kitchen")
    # demo A: 6 steps, targets done at its steps 2 and 5 (rewards count them); demo B: 3 steps, 1 done at step 0;
    # then a cut demo (no terminal) that did all 4 at once
    rewards = np.array([0, 0, 1, 1, 1, 2] + [1, 1, 1] + [4, 4], float)
    terminals = np.array([0, 0, 0, 0, 0, 1] + [0, 0, 1] + [0, 0], bool)
    assert calibrate_kitchen.demo_score(rewards, terminals, limit=5) == (100 * (1 + 1) / 2 / 4, 2)  # step 4 of A
    assert calibrate_kitchen.demo_score(rewards, terminals, limit=6) == (100 * (2 + 1) / 2 / 4, 2)  # A's last step
    assert calibrate_kitchen.demo_score(rewards, terminals, limit=2) == (100 * (0 + 1) / 2 / 4, 2)
    assert calibrate_kitchen.demo_score(rewards, terminals, limit=9, n_targets=2) == (100 * 1.5 / 2, 2)
