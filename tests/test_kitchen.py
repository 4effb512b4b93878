"""Kitchen rebuilt (scripted): the demonstrator's primitives, a tiny build read back through Minari, and
`offbench run --suite kitchen` end to end on it (MINARI_DATASETS_PATH is a tmp folder, see conftest)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.data.build import kitchen
from offbench.data.build.kitchen_demo import make_env, run_tasks
from offbench.data.build.recipes import get_recipe
from offbench.data.loaders import load_minari


@pytest.mark.parametrize("task,seed", [("microwave", 0), ("kettle", 0), ("kettle", 1), ("bottom burner", 0),
                                       ("light switch", 0), ("slide cabinet", 0), ("top burner", 0),
                                       ("hinge cabinet", 0)])
def test_primitive_solves_its_subtask(task, seed):
    env = make_env([task], terminate_on_tasks_completed=False)
    out = run_tasks(env, [task], seed=seed, max_steps=280)
    env.close()
    assert out["completed"] == [task], out
    assert out["completed_at"][0] < 120


def test_primitive_on_noisy_start_with_action_noise():
    env = make_env(["microwave"], terminate_on_tasks_completed=False)
    out = run_tasks(env, ["microwave"], seed=3, action_noise=kitchen.ACTION_NOISE, start_noise=kitchen.START_NOISE,
                    max_steps=280)
    env.close()
    assert out["completed"] == ["microwave"]


def test_recipes_are_registered_with_the_scripted_label():
    for kind in ("complete", "partial", "mixed"):
        rec = get_recipe(f"kitchen-{kind}-v0")
        assert rec is not None and rec.suite == "kitchen" and rec.label == "rebuilt (scripted)"
        assert rec.default_size == kitchen.SIZES[kind]


def test_mixed_orders_never_contain_the_whole_target_set():
    rng = np.random.default_rng(0)
    targets = set(kitchen.TARGETS["mixed"])
    orders = [kitchen._random_order(rng, kitchen.TARGETS["mixed"], "mixed") for _ in range(200)]
    assert all(not targets <= set(o) for o in orders)
    assert len({tuple(o) for o in orders}) > 50          # variety of subtasks and orders
    partial = [kitchen._random_order(rng, kitchen.TARGETS["partial"], "partial") for _ in range(400)]
    frac = np.mean([o == list(kitchen.TARGETS["partial"]) for o in partial])
    assert 0.15 < frac < 0.35


def test_tiny_complete_build_reads_back_through_minari_and_iql_runs_on_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OFFBENCH_BEHAVIOR_DIR", str(tmp_path))   # kitchen needs no behaviour files
    runner = CliRunner()
    res = runner.invoke(main, ["data", "build", "kitchen-complete-v0", "--size", "300", "--no-progress"])
    assert res.exit_code == 0, res.output
    ds = load_minari("rebuilt/kitchen-complete-v0", ["observation"])
    assert len(ds) == 300 and ds.obs_dim == 59 and ds.act_dim == 9
    assert ds.metadata["rebuilt"] is True
    assert (ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]) == (0.0, 4.0)
    prov = json.loads(ds.metadata["provenance"])
    assert prov["label"] == "rebuilt (scripted)" and prov["targets"] == list(kitchen.TARGETS["complete"])
    assert np.all(np.abs(ds.actions) <= 1.0)
    # rewards: target tasks completed so far, non-decreasing within an episode; the first episode is a
    # successful demonstration that terminates when the fourth task is done
    first = ds.episode_slices()[0]
    r = ds.rewards[first]
    assert np.all(np.diff(r) >= 0) and r[0] == 0.0 and r[-1] == 4.0
    assert ds.terminals[first][-1] == 1.0 and ds.terminals[first][:-1].sum() == 0
    assert len(set(np.unique(r))) == 5                     # 0, 1, 2, 3, 4 tasks done on the way
    # evaluation env stored with the data: FrankaKitchen-v1 with the target tasks, 280 steps
    spec = json.loads(ds.metadata["eval_env_spec"]) if isinstance(ds.metadata["eval_env_spec"], str) \
        else ds.metadata["eval_env_spec"]
    assert spec["id"] == "FrankaKitchen-v1" and spec["max_episode_steps"] == 280
    assert sorted(spec["kwargs"]["tasks_to_complete"]) == sorted(kitchen.TARGETS["complete"])

    res = runner.invoke(main, ["run", "--algo", "iql", "--suite", "kitchen", "--dataset", "kitchen-complete-v0",
                               "--steps", "50", "--eval-every", "50", "--eval-episodes", "1", "--no-progress",
                               "--set", "hidden_dims=[32, 32]", "--set", "batch_size=64",
                               "--results", str(tmp_path / "results")])
    assert res.exit_code == 0, res.output
    assert "(rebuilt (scripted) data)" in res.output
    rec = json.loads((tmp_path / "results/kitchen/kitchen-complete-v0/iql/seed_0.json").read_text())
    assert rec["status"] == "finished" and rec["data"]["kind"] == "rebuilt"
    assert rec["data"]["label"] == "rebuilt (scripted)"
    assert (rec["reference"]["min"], rec["reference"]["max"]) == (0.0, 4.0)
    assert 0.0 <= rec["final_score"] <= 100.0
    # the report labels it the same way
    res = runner.invoke(main, ["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "rep"),
                               "--reps", "50", "--format", "md"])
    assert res.exit_code == 0, res.output
    assert "kitchen-complete-v0 (rebuilt (scripted))" in (tmp_path / "rep" / "per_dataset.md").read_text()


def test_tiny_mixed_build_has_no_episode_solving_all_targets():
    did = kitchen.build("mixed", size=200, seed=1)
    ds = load_minari(did, ["observation"])
    assert len(ds) == 200
    assert ds.rewards.max() < 4.0 and ds.terminals.sum() == 0
