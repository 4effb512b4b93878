"""Kitchen rebuilt (scripted): the demonstrator's primitives, a tiny build read back through Minari, and
`offbench run --suite kitchen` end to end on it (MINARI_DATASETS_PATH is a tmp folder, see conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from offbench.cli import main
from offbench.data.loaders import load_minari
from offbench.recipes import kitchen
from offbench.recipes.kitchen_rollout import make_env, push, run_tasks
from offbench.recipes.recipes import get_recipe


@pytest.mark.parametrize(
    "task,seed",
    [
        ("microwave", 0),
        ("kettle", 0),
        ("kettle", 1),
        ("bottom burner", 0),
        ("light switch", 0),
        ("slide cabinet", 0),
        ("top burner", 0),
        ("hinge cabinet", 0),
    ],
)
def test_primitive_solves_its_subtask(task, seed):
    env = make_env([task], terminate_on_tasks_completed=False)
    out = run_tasks(env, [task], seed=seed, max_steps=280)
    env.close()
    assert out["completed"] == [task], out
    assert out["completed_at"][0] < 120


@pytest.mark.parametrize("ajar", [0.5, 9.0])
def test_slide_cabinet_after_the_hinge_cabinet(ajar, monkeypatch):
    """Recipe v6: with the hinge door open its handle stands 20 cm in front of the slide cabinet's, where the
    wrist passes on a straight approach; the demonstrator comes in yawed from the front right (6 of the human demos'
    24 plans open the hinge cabinet, then the slide). 9.0: the straight approach, which fails."""
    from offbench.recipes import kitchen_demo

    monkeypatch.setattr(kitchen_demo, "HINGE_AJAR", ajar)
    env = make_env(["hinge cabinet", "slide cabinet"], terminate_on_tasks_completed=False, robot_noise_ratio=0.1)
    out = run_tasks(env, ["hinge cabinet", "slide cabinet"], seed=0, max_steps=280)
    env.close()
    assert out["completed"] == (["hinge cabinet", "slide cabinet"] if ajar < 1 else ["hinge cabinet"]), out


def test_primitive_on_noisy_start_with_action_noise():
    env = make_env(["microwave"], terminate_on_tasks_completed=False)
    out = run_tasks(
        env, ["microwave"], seed=3, action_noise=kitchen.ACTION_NOISE, start_noise=kitchen.START_NOISE, max_steps=280
    )
    env.close()
    assert out["completed"] == ["microwave"]


def test_recipes_are_registered_with_the_scripted_label():
    for kind in ("complete", "partial", "mixed"):
        rec = get_recipe(f"kitchen-{kind}-v0")
        assert rec is not None and rec.suite == "kitchen" and rec.label == "rebuilt (scripted)"
        assert rec.default_size == kitchen.SIZES[kind] and rec.version >= 2


def test_targets_are_d4rls():
    """D4RL: complete and partial are KitchenMicrowaveKettleLightSliderV0, mixed
    KitchenMicrowaveKettleBottomBurnerLightV0; the evaluation specs of the suite use the same targets."""
    from offbench.data.suites import get_suite

    light_slider = ["microwave", "kettle", "light switch", "slide cabinet"]
    burner_light = ["microwave", "kettle", "bottom burner", "light switch"]
    expected = {"complete": light_slider, "partial": light_slider, "mixed": burner_light}
    suite = get_suite("kitchen")
    for kind, targets in expected.items():
        assert list(kitchen.TARGETS[kind]) == targets
        assert suite.task(f"kitchen-{kind}-v0").env_kwargs["tasks_to_complete"] == targets
    assert kitchen.COMPLETE_SHARE == pytest.approx(0.0269, abs=1e-4)  # 3,680 of 136,950 transitions


def test_undirected_orders_are_the_human_demos_plans_and_cover_neither_target_set():
    """Recipe v4: the pool's plans are Relay Policy Learning's 24 non-complete folders, drawn uniformly; most
    start with the microwave (as the operators did), none covers either target set."""
    rng = np.random.default_rng(0)
    orders = [kitchen.undirected_order(rng) for _ in range(600)]
    assert all(len(o) == 4 and len(set(o)) == 4 and set(o) <= set(kitchen.POOL) for o in orders)
    assert all(not set(kitchen.COMPLETE) <= set(o) and not set(kitchen.MIXED) <= set(o) for o in orders)
    assert {tuple(o) for o in orders} == set(kitchen.RPL_PLANS) and len(kitchen.RPL_PLANS) == 24
    first = [o[0] for o in orders]
    assert abs(first.count("microwave") / len(first) - 14 / 24) < 0.06  # uniform over plans: 14 of 24
    assert tuple(kitchen.COMPLETE) not in kitchen.RPL_PLANS  # the complete folder is the complete stream


def test_relabel_counts_target_tasks_done_so_far_and_ends_with_a_terminal():
    d = {
        "order": [],
        "actions": np.zeros((6, 9)),
        "observation": np.zeros((7, 59)),
        "achieved_goal": {t: np.zeros((7, 1)) for t in kitchen.POOL},
        "done_at": {"microwave": 2, "bottom burner": 3, "slide cabinet": 5},
    }
    p = kitchen.relabel(d, kitchen.TARGETS["partial"])
    m = kitchen.relabel(d, kitchen.TARGETS["mixed"])
    np.testing.assert_array_equal(p["rewards"], [0, 1, 1, 1, 2, 2])  # microwave, then slide cabinet
    np.testing.assert_array_equal(m["rewards"], [0, 1, 2, 2, 2, 2])  # microwave, then bottom burner
    assert p["terminations"].tolist() == [False] * 5 + [True] and not p["truncations"].any()
    cut = kitchen.relabel(d, kitchen.TARGETS["mixed"], cut=4)  # cut to the dataset size: a truncation
    assert len(cut["actions"]) == 4 and not cut["terminations"].any() and cut["truncations"][-1]
    assert len(cut["observations"]["observation"]) == 5


def test_tiny_complete_build_reads_back_through_minari_and_iql_runs_on_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OFFBENCH_BEHAVIOR_DIR", str(tmp_path))  # kitchen needs no behaviour files
    runner = CliRunner()
    res = runner.invoke(main, ["data", "build", "kitchen-complete-v0", "--size", "450", "--no-progress"])
    assert res.exit_code == 0, res.output
    ds = load_minari("rebuilt/kitchen-complete-v0", ["observation"])
    assert len(ds) == 450 and ds.obs_dim == 59 and ds.act_dim == 9  # > DEMO_STEPS: the first demo is whole
    assert ds.metadata["rebuilt"] is True
    assert (ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]) == (0.0, 4.0)
    prov = json.loads(ds.metadata["provenance"])
    assert prov["label"] == "rebuilt (scripted)" and prov["targets"] == list(kitchen.TARGETS["complete"])
    assert np.all(np.abs(ds.actions) <= 1.0)
    # rewards: target tasks completed so far, non-decreasing within an episode; the first episode is a
    # successful demonstration, terminal at its last step
    first = ds.episode_slices()[0]
    r = ds.rewards[first]
    assert np.all(np.diff(r) >= 0) and r[0] == 0.0 and r[-1] == 4.0
    assert ds.terminals[first][-1] == 1.0 and ds.terminals[first][:-1].sum() == 0
    assert len(set(np.unique(r))) == 5  # 0, 1, 2, 3, 4 tasks done on the way
    # evaluation env stored with the data: FrankaKitchen-v1 with the target tasks, 280 steps
    spec = (
        json.loads(ds.metadata["eval_env_spec"])
        if isinstance(ds.metadata["eval_env_spec"], str)
        else ds.metadata["eval_env_spec"]
    )
    assert spec["id"] == "FrankaKitchen-v1" and spec["max_episode_steps"] == 280
    assert sorted(spec["kwargs"]["tasks_to_complete"]) == sorted(kitchen.TARGETS["complete"])
    # recipe v5: D4RL's robot observation noise (kitchen_multitask_v0.py:43), not FrankaKitchen-v1's 0.01
    assert spec["kwargs"]["robot_noise_ratio"] == kitchen.ROBOT_NOISE_RATIO == 0.1
    assert prov["robot_noise_ratio"] == 0.1
    # recipe v6: the slide cabinet's approach once the hinge door is open, all three of its constants
    assert prov["reach"]["slide_after_hinge"] == {"hinge_ajar_rad": 0.5, "yaw_rad": 0.4, "via_m": 0.3}

    res = runner.invoke(
        main,
        [
            "run",
            "--algo",
            "iql",
            "--suite",
            "kitchen",
            "--dataset",
            "kitchen-complete-v0",
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
    assert "(rebuilt (scripted) data)" in res.output
    rec_path = next((tmp_path / "results/kitchen/kitchen-complete-v0/iql").rglob("seed_0.json"))  # any variant dir
    rec = json.loads(rec_path.read_text())
    assert rec["status"] == "finished" and rec["data"]["kind"] == "rebuilt"
    assert rec["data"]["label"] == "rebuilt (scripted)"
    # the policy saw D4RL's observation: the 30 joint positions, not the velocities (tasks.KITCHEN_POSITIONS)
    assert rec["data"]["obs_dim"] == 30
    assert rec["data"]["obs_keys"] == [["observation", list(range(9)) + list(range(18, 39))]]
    assert (rec["reference"]["min"], rec["reference"]["max"]) == (0.0, 4.0)
    assert 0.0 <= rec["final_score"] <= 100.0
    # the record names the env the evaluation built: the stored spec's, its noise included
    assert rec["env"]["from_dataset_spec"] and rec["env"]["env_kwargs"]["robot_noise_ratio"] == 0.1
    _kitchen_rollout_fit_reads_the_run(rec_path.parent, capsys)
    # the report labels it the same way
    res = runner.invoke(
        main,
        [
            "report",
            "--results",
            str(tmp_path / "results"),
            "--out",
            str(tmp_path / "rep"),
            "--reps",
            "50",
            "--format",
            "md",
        ],
    )
    assert res.exit_code == 0, res.output
    table = (tmp_path / "rep" / "per_dataset.md").read_text()
    assert "kitchen-complete-v0" in table and "rebuilt (scripted)" in table


def _script(name: str):
    """A script of scripts/ as a module (they are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _kitchen_rollout_fit_reads_the_run(run_dir, capsys):
    """``scripts/kitchen_rollout.py RUN_DIR --fit --set ...`` (docs/kitchen.md, session 8): the policy restored
    with the run's --set values, its per-demo action errors on its data; ``fit``'s new-demo marks."""
    mod = _script("kitchen_rollout")
    sets = ["--set", "hidden_dims=[32, 32]", "--set", "batch_size=64"]
    with pytest.raises(Exception, match="trained with another config"):  # without the run's --set values
        mod.main([str(run_dir), "--fit", "--episodes", "0"])
    capsys.readouterr()
    mod.main([str(run_dir), "--fit", "--episodes", "0", *sets])
    out = capsys.readouterr().out
    assert "fit on its own data, seed 0: arm " in out and "new demos" not in out
    prep, states, seeds, _ = mod.restore(run_dir, {"hidden_dims": [32, 32], "batch_size": 64})
    arrays = prep.source.dataset.arrays()
    ep = mod.demo_ids(arrays)
    assert ep.max() == 1 and ep[0] == 0  # the 450-transition build: one whole demo, then part of a second
    first = {k: v[ep == 0] for k, v in arrays.items()}
    (row,) = mod.fit(prep, states, seeds, arrays, seen=first)
    assert row["new"].tolist() == [False, True]
    import jax

    one = jax.tree.map(lambda x: x[0], states)  # seed 0's policy, unbatched
    want = np.asarray(prep.agent.act(one, arrays["observations"][ep == 1], jax.random.PRNGKey(1), True))
    err = ((want - arrays["actions"][ep == 1])[:, :7] ** 2).mean()
    assert row["per_demo"][1] == pytest.approx(err, rel=1e-4)
    # --env: the same policy elsewhere (session 11): D4RL's env reads the 30 positions of its 60-d observation
    for where, ratio in (("d4rl", 0.1), ("noise=0.5", 0.5)):
        env, obs_fn = mod.eval_env(prep, where)
        o, _ = env.reset(seed=0)
        assert env.unwrapped.robot_env.robot_noise_ratio == ratio and np.asarray(obs_fn(o)).shape == (30,)
        env.close()
    mod.main([str(run_dir), "--episodes", "1", "--seeds", "0", "--env", "d4rl", *sets])
    assert "score in env d4rl: " in capsys.readouterr().out
    # --max-steps (session 13): the run's own env with a longer limit, scored by its limit and by the longer one
    env, _ = mod.eval_env(prep, "data", 300)
    assert env.spec.max_episode_steps == 300 and env.unwrapped.robot_env.robot_noise_ratio == 0.1
    assert mod.eval_env(prep, "data")[0].spec.max_episode_steps == prep.source.max_episode_steps == 280
    mod.main([str(run_dir), "--episodes", "1", "--seeds", "0", "--max-steps", "300", *sets])
    out = capsys.readouterr().out
    assert "in 300 steps" in out  # the episode ran past the evaluation's 280 steps
    assert "score in env data: " in out and "score within 300 steps: " in out
    with pytest.raises(SystemExit):
        mod.main([str(run_dir), "--episodes", "1", "--max-steps", "300", "--env", "d4rl", *sets])


def test_kitchen_pool_script_orders_each_demos_subtasks_from_the_object_positions():
    """scripts/kitchen_pool.py: the subtasks done in each demo, in order, read from the 59-d observation's object
    joints (FrankaKitchen-v1's rule), and what follows the microwave and the kettle."""
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    mod = _script("kitchen_pool")

    def demo(order):  # nothing done at the start (all object joints 0), then one subtask every 5 steps
        obs = np.zeros((5 * len(order) + 5, 59))
        for k, task in enumerate(order):
            obs[5 * (k + 1) :, 18 + np.asarray(OBS_ELEMENT_INDICES[task]) - 9] = OBS_ELEMENT_GOALS[task]
        return obs

    plans = [("microwave", "kettle", "light switch"), ("microwave", "kettle", "bottom burner"), ("kettle",)]
    seqs = mod.orders([demo(o) for o in plans] + [demo(plans[0])])
    assert seqs == [plans[0], plans[1], plans[2], plans[0]]
    s = mod.summary(seqs)
    assert s["first"] == {"microwave": 3, "kettle": 1} and s["per_demo"] == {3: 3, 1: 1}
    assert s["next"][("microwave", "kettle")] == {"light switch": 2, "bottom burner": 1}
    assert s["next"][("kettle",)] == {} and s["orders"][plans[0]] == 2
    done_at_start = demo(plans[2])
    done_at_start[0] = done_at_start[-1]  # the kettle already in place at the first step: not done by this demo
    assert mod.orders([done_at_start]) == [()]


def test_kitchen_pool_script_measures_the_plans_with_hinge_then_slide(monkeypatch, capsys):
    """``--plans N --hinge-then-slide``: the six human plans that open the hinge cabinet and then the slide (recipe
    v6's approach); ``--set`` sets a candidate's constant on the demonstrator, a bad one is refused."""
    from offbench.recipes import kitchen_demo

    mod = _script("kitchen_pool")
    monkeypatch.syspath_prepend(str(Path(mod.__file__).parent))  # its --set is scripts/calibration.py's
    picked = [p for p in kitchen.RPL_PLANS if mod.hinge_then_slide(p)]
    assert len(picked) == 6 and all(p.index("hinge cabinet") < p.index("slide cabinet") for p in picked)
    assert not mod.hinge_then_slide(("slide cabinet", "hinge cabinet", "kettle", "microwave"))
    monkeypatch.setattr(kitchen_demo, "SLIDE_YAW", kitchen_demo.SLIDE_YAW)  # restored after the test
    seen = {}

    def fake_plans(n, seed=7, only=None):  # what the demonstrator would run: every plan done n times
        seen["yaw"] = kitchen_demo.SLIDE_YAW
        return [(p, n, {t: n for t in p}) for p in kitchen.RPL_PLANS if only is None or only(p)]

    monkeypatch.setattr(mod, "plans", fake_plans)
    mod.main(["--plans", "2", "--hinge-then-slide", "--set", "kitchen_demo.SLIDE_YAW=0.5"])
    assert seen["yaw"] == 0.5 and "with kitchen_demo.SLIDE_YAW 0.5: whole plans 12/12" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        mod.main(["--plans", "2", "--set", "kitchen_demo.NO_SUCH=1"])
    assert "--set kitchen_demo.NO_SUCH=1: expected MODULE.CONST=VALUE" in capsys.readouterr().err


def test_kitchen_rollout_fit_feeds_the_policy_normalised_observations_when_the_run_was():
    """AWAC, CQL and TD3+BC train on normalised observations: ``fit`` gives the policy what it was trained on."""
    from types import SimpleNamespace

    mod = _script("kitchen_rollout")
    rng = np.random.default_rng(0)
    obs = rng.normal(3.0, 2.0, (40, 59)).astype(np.float32)
    mean, std = obs.mean(0), obs.std(0) + 1e-3
    arrays = {"observations": obs, "actions": ((obs - mean) / std)[:, :9], "terminals": np.r_[np.zeros(39), 1.0]}
    policy = SimpleNamespace(act=lambda state, o, key, deterministic: o[:, :9] * state)  # a "policy" that echoes
    for m, s_, want in ((mean, std, 0.0), (None, None, None)):
        (row,) = mod.fit(SimpleNamespace(agent=policy, obs_mean=m, obs_std=s_), np.ones(1, np.float32), [0], arrays)
        if want is None:
            assert row["arm"] > 1.0  # raw observations are not what this policy was given
        else:
            assert row["arm"] == pytest.approx(0.0, abs=1e-6) and row["per_demo"] == pytest.approx([0.0], abs=1e-6)


def test_rebuilt_kitchen_is_seen_as_d4rls_joint_positions_in_training_and_evaluation():
    """The rebuilt data's view (tasks.KITCHEN_POSITIONS) is the robot's and the objects' joint positions of
    FrankaKitchen-v1's observation, as D4RL observes them (no velocities), both where the data is loaded
    (loaders.flatten_observation) and where the evaluation env's observation is (envs.ObsAdapter); Minari's hosted
    data keeps the whole observation."""
    import warnings

    from offbench.data.loaders import flatten_observation
    from offbench.data.suites import get_suite
    from offbench.data.tasks import KITCHEN_POSITIONS
    from offbench.envs import ObsAdapter

    task = get_suite("kitchen").task("kitchen-complete-v0")
    keys = task.obs_keys_for("rebuilt")
    assert task.obs_keys_for("original") == ("observation",) and keys != task.obs_keys
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = make_env(list(kitchen.TARGETS["complete"]))
    obs, _ = env.reset(seed=0)
    for _ in range(5):  # moving, so that positions and velocities differ
        obs, *_ = env.step(np.full(9, 0.5))
    u = env.unwrapped
    x = ObsAdapter(keys)(obs)
    assert x.shape == (30,) and len(KITCHEN_POSITIONS) == 30
    # the robot's noisy reading (Gymnasium-Robotics' noise: 0.01 x its amplitudes, at most 1e-3 here), the objects'
    np.testing.assert_allclose(x[:9], u.data.qpos[:9], atol=2e-3)
    np.testing.assert_allclose(x[9:], u.data.qpos[9:30], atol=2e-3)
    assert np.abs(u.data.qvel[:7]).max() > 0.05  # the arm moves: a velocity column taken by mistake would show
    batch = {k: (np.stack([v, v]) if not isinstance(v, dict) else {g: np.stack([a, a]) for g, a in v.items()})
             for k, v in obs.items()}  # fmt: skip
    np.testing.assert_array_equal(flatten_observation(batch, list(keys)), np.stack([x, x]))
    env.close()


def test_partial_and_mixed_are_one_pool_relabelled_for_their_targets():
    size = 700
    ids = {kind: kitchen.build(kind, size=size, seed=1) for kind in ("partial", "mixed")}
    p, m = (load_minari(ids[k], ["observation"]) for k in ("partial", "mixed"))
    assert len(p) == len(m) == size
    np.testing.assert_array_equal(p.observations, m.observations)  # the same demos ...
    np.testing.assert_array_equal(p.actions, m.actions)
    assert not np.array_equal(p.rewards, m.rewards)  # ... relabelled for two targets
    prov = {k: json.loads(d.metadata["provenance"]) for k, d in (("partial", p), ("mixed", m))}
    assert prov["partial"]["targets"] == list(kitchen.COMPLETE) and prov["mixed"]["targets"] == list(kitchen.MIXED)
    # only the complete subset solves partial; nothing solves mixed
    assert p.rewards.max() == 4.0 and m.rewards.max() < 4.0
    assert prov["partial"]["collection"]["episodes_solving_targets"] >= 1
    assert prov["mixed"]["collection"]["episodes_solving_targets"] == 0
    # terminal at each demo's last step (the last demo is cut to the size: a truncation)
    for ds in (p, m):
        sl = ds.episode_slices()
        assert all(ds.terminals[s][-1] == 1.0 and ds.terminals[s][:-1].sum() == 0 for s in sl[:-1])
        for s in sl:
            assert np.all(np.diff(ds.rewards[s]) >= 0)
    spec = (
        json.loads(p.metadata["eval_env_spec"])
        if isinstance(p.metadata["eval_env_spec"], str)
        else p.metadata["eval_env_spec"]
    )
    assert sorted(spec["kwargs"]["tasks_to_complete"]) == sorted(kitchen.COMPLETE)


def test_recipe_v3_styles_differ_between_demos_and_change_the_action_at_one_state():
    """Recipe v3: each demo draws a persistent style (time scale, approach, grasp point, fumble, OU drift), so
    two demos at the same state act differently on average, not only by i.i.d. noise; the same rng gives the
    same style (same --seed, same build), and scale 0 is the version-2 demonstrator."""
    from offbench.recipes.kitchen_demo import Demonstrator

    order = list(kitchen.COMPLETE)
    a, b = (kitchen.draw_style(np.random.default_rng([0, k]), order) for k in (0, 1))
    assert a.time_scale != b.time_scale and all(0.5 <= f <= 1.5 for f in a.time_scale.values())
    assert not np.allclose(a.approach["kettle"], b.approach["kettle"])
    assert a.ou_sigma > 0 and a.ou_sigma == pytest.approx(kitchen.OU_SIGMA * kitchen.STYLE_SCALE)
    again = kitchen.draw_style(np.random.default_rng([0, 0]), order)
    assert again.time_scale == a.time_scale and np.array_equal(again.approach["microwave"], a.approach["microwave"])
    plain = kitchen.draw_style(np.random.default_rng(0), order, scale=0.0)
    assert set(plain.time_scale.values()) == {1.0} and not plain.fumble and plain.ou_sigma == 0.0
    fumbles = [kitchen.draw_style(np.random.default_rng([1, k]), order).fumble for k in range(200)]
    share = sum(len(f) for f in fumbles) / (200 * len(order))
    assert abs(share - kitchen.FUMBLE_P * kitchen.STYLE_SCALE) < 0.03  # occasional failed grasps, at the recipe's rate

    env = make_env(["microwave"], terminate_on_tasks_completed=False)
    acts = []
    for style in (a, b):
        env.reset(seed=0)  # the same state for both
        d = Demonstrator(env, np.random.default_rng(0), style=style)
        gen = d.primitive("microwave")
        acts.append(np.array([next(gen) for _ in range(8)]))
        env.reset(seed=0)
    env.close()
    assert np.abs(acts[0][0] - acts[1][0]).max() > 0.05  # different intentions from the very first step


def test_recipe_v7_marks_version_6_builds_stale():
    from offbench.recipes.recipes import stale_reason

    assert kitchen.RECIPE_VERSION == 7 and get_recipe("kitchen-partial-v0").version == 7
    assert kitchen.DISTURB_SIGMA > 0 and kitchen.ROBOT_NOISE_RATIO == 0.1  # v4's DART, v5's D4RL noise
    assert kitchen.VERSION == "kitchen-demo/3"  # v6: the slide cabinet after the hinge cabinet; v7: PUSH_FADE
    for kind in ("complete", "partial", "mixed"):
        why = stale_reason(f"kitchen-{kind}-v0", {"rebuilt": True, "recipe_version": 6})
        assert "version 6" in why and "version 7" in why and "--overwrite" in why
        assert stale_reason(f"kitchen-{kind}-v0", {"rebuilt": True, "recipe_version": 7}) == ""


def test_recipe_v7_push_keeps_its_strength_to_3_cm_of_the_target():
    """Version 7 (docs/kitchen.md "Recipe v7"): DART's push acts at full strength until the hand is within
    ``PUSH_FADE`` = 3 cm of its target and fades linearly inside it. Versions 4-6 faded it from 10 cm (half at 5 cm),
    so the demos showed few ways back from a hand a few centimetres off the light switch, where BC's policies
    stopped (docs/kitchen.md "Session 13 of wave 3")."""
    from offbench.recipes.kitchen_demo import Demonstrator

    env = make_env(["light switch"], terminate_on_tasks_completed=False)
    d = Demonstrator(env, np.random.default_rng(0))
    env.reset(seed=0)
    p = d.ee()[0]

    def pushed(dy):  # the push applied with the hand dy metres from its target
        d.action(p + np.array([0.0, dy, 0.0]), grip=1.0)
        return push(d, [0.1, 0.0, 0.05])

    far = pushed(0.3)
    assert np.abs(far).max() > 1e-3
    for dy in (0.1, 0.05, 0.03):
        np.testing.assert_allclose(pushed(dy), far, rtol=1e-9, err_msg=f"{dy} m from the target")
    np.testing.assert_allclose(pushed(0.015), 0.5 * far, rtol=1e-9)
    assert not np.any(pushed(0.0))
    env.close()


def test_dart_disturbance_is_executed_but_not_recorded():
    """``disturb_sigma`` pushes the hand (executed actions only, DART): replaying the recorded actions from the
    same start reproduces the episode without it and departs from it with it; never while the fingers hold."""
    from offbench.recipes.kitchen_demo import Demonstrator

    env = make_env(["microwave"], terminate_on_tasks_completed=False)

    def replay_gap(sigma):
        out = run_tasks(
            env,
            ["microwave"],
            seed=2,
            action_noise=kitchen.ACTION_NOISE,
            record=True,
            max_steps=40,
            rng=np.random.default_rng(5),
            disturb_sigma=sigma,
        )
        env.reset(seed=2)
        obs = [env.step(a)[0]["observation"] for a in out["actions"]]
        return float(np.abs(np.asarray(obs) - out["observations"][1:]).max())

    quiet, pushed = replay_gap(0.0), replay_gap(0.2)
    assert quiet < 1e-4, quiet  # the recorded actions are float32: rounding only
    assert pushed > 100 * quiet and pushed > 0.01, pushed
    d = Demonstrator(env, np.random.default_rng(0))
    env.reset(seed=0)
    p = d.ee()[0]
    d.action(p + np.array([0.0, 0.3, 0.0]), grip=1.0)  # free motion, far from the target
    assert np.abs(push(d, [0.1, 0.0, 0.0])).max() > 1e-3
    d.action(p, grip=-1.0)  # holding
    assert not np.any(push(d, [0.1, 0.0, 0.0]))
    env.close()


@pytest.mark.parametrize("funnel", [3.0, 0.0])
def test_funnel_reach_is_a_law_of_the_state(funnel, monkeypatch):
    """Down the funnel (``kitchen_demo.FUNNEL``, a candidate) the reach's action depends on the state alone: a
    demonstrator started afresh at any state of a running reach acts as the running one does. With the pre-grasp
    waypoint (0, the recipe's) the running one moves in from the waypoint while a fresh one heads back out to it:
    a phase the state does not show (docs/kitchen.md "Session 7")."""
    from offbench.recipes import kitchen_demo
    from offbench.recipes.kitchen_demo import Demonstrator

    monkeypatch.setattr(kitchen_demo, "FUNNEL", funnel)
    monkeypatch.setattr(kitchen_demo, "NEUTRAL_SKIP", 10.0)  # no move back to neutral first: the reach alone
    env = make_env(["microwave"], terminate_on_tasks_completed=False)
    env.reset(seed=0)
    run = Demonstrator(env, np.random.default_rng(0))
    gen = run.primitive("microwave")
    gaps = []
    for _ in range(60):
        a = next(gen)
        if a[7] < 0:  # the fingers close: the reach is over
            break
        fresh = next(Demonstrator(env, np.random.default_rng(0)).primitive("microwave"))
        gaps.append(np.abs(a - fresh).max())
        env.step(a)
    env.close()
    assert len(gaps) > 10
    # (down the funnel the two differ by < 0.02: the door settles by 0.001 rad after the reset, and the hand's
    # orientation follows the door's angle when the primitive starts)
    assert max(gaps) < 0.05 if funnel else max(gaps) > 0.5


def test_measure_kitchen_recipe_demos_counts_grasp_tries_through_the_script():
    """``scripts/measure_kitchen.py --recipe-demos N`` (the docs' demonstrator tables): N complete-sequence demos as
    the recipe draws them, each subtask's tries counted (the microwave's grasp-and-turn, the light switch's push with
    open fingers); a subtask done needs at least one try."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "measure_kitchen.py"
    out = subprocess.run(
        [sys.executable, str(script), "--recipe-demos", "2", "--stream", "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    from offbench.recipes.kitchen_demo import FUNNEL

    assert f"recipe v{kitchen.RECIPE_VERSION} (FUNNEL {FUNNEL}), 2 complete-sequence demos, rng stream 0:" in out
    for task, how in (("microwave", "grasp-and-turn"), ("light switch", "push")):
        done, tries = re.search(rf"{task}: done in (\d)/2, {how} tries per demo ([\d.]+)", out).groups()
        assert float(tries) >= int(done) / 2 and float(tries) <= 3  # (the microwave primitive tries at most 3 times)
    assert re.search(r"all four done in \d/2; 4th task at step", out)


def test_kitchen_disagreement_script_separates_the_recipe_from_its_bare_demonstrator(capsys):
    """``scripts/kitchen_disagreement.py`` (docs/kitchen.md, session 8): with every part off, two rng streams'
    demos run nearly on top of each other; the recipe's parts spread them; the module's constants come back."""
    import re

    mod = _script("kitchen_disagreement")
    before = {k: getattr(kitchen, k) for k in mod.OFF}
    assert set(before) == {"STYLE_SCALE", "DISTURB_SIGMA", "ACTION_NOISE", "START_NOISE", "PAUSE_MAX"}
    with pytest.raises(SystemExit):
        mod.main(["--demos", "1", "--parts", "nothing"])
    capsys.readouterr()
    v = f"v{kitchen.RECIPE_VERSION} (all)"
    mod.main(["--demos", "1", "--parts", f"none,{v}"])
    out = capsys.readouterr().out
    med = {m[0]: float(m[1]) for m in re.findall(r"^(.+): median distance ([\d.]+);", out, re.M)}
    assert set(med) == {"none", v} and med["none"] < 0.5 * med[v], out
    assert {k: getattr(kitchen, k) for k in mod.OFF} == before


def test_kitchen_copycat_script_tells_the_velocities_share_of_the_actions(capsys, monkeypatch):
    """scripts/kitchen_copycat.py: R^2 of the arm actions on each part of the observation; on demos whose
    actions are their robot velocities' (plus noise), the velocities explain them and the positions do not."""
    mod = _script("kitchen_copycat")
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(4):
        obs = rng.normal(size=(51, 59))
        eps.append((obs, np.c_[obs[:-1, 9:16], np.ones((50, 2))]))  # the arm's action: the reading's arm velocity
    t = mod.table(eps)
    assert t["robot qvel (9)"] == pytest.approx(1.0, abs=1e-9) and t["whole observation (59)"] >= t["robot qvel (9)"]
    assert t["joint positions, D4RL's (30)"] < 0.2 and abs(t["previous action (7)"]) < 0.2
    assert mod.r2(np.arange(10.0)[:, None], 2.0 * np.arange(10.0)[:, None] + 1) == pytest.approx(1.0)
