"""Offline-to-online fine-tuning: bookkeeping, reward transform on online data, resume mid-online, --from."""

import json
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest
from conftest import tiny_overrides

from offbench.errors import OffbenchError
from offbench.records import checkpoint
from offbench.training import offline as pipeline
from offbench.training import run as run_module
from offbench.training.online import OnlineSettings, make_buffer, train_online
from offbench.training.online_envs import OnlineEnvs
from offbench.training.prepare import RunOptions, prepare
from offbench.training.recording import corl_regret, eval_regret, finish


def _opts(hopper_file, tmp_path, **kw):
    base = dict(
        algo="iql",
        suite="locomotion",
        dataset=hopper_file,
        seeds=2,
        steps=40,
        eval_every=20,
        eval_episodes=1,
        online_steps=60,
        overrides=tiny_overrides(log_every=20),
        results=str(tmp_path / "results"),
        progress=False,
    )
    base.update(kw)
    return RunOptions(**base)


def _quiet(_):
    pass


def test_finetune_bookkeeping_buffer_growth_and_reward_transform(hopper_file, tmp_path):
    opts = _opts(
        hopper_file,
        tmp_path,
        overrides=tiny_overrides(log_every=20, reward_transform="antmaze", online_updates_per_step=2.0, online_envs=2),
    )
    prep = prepare(opts, say=_quiet)
    assert prep.directory.parent.name == "iql-online"  # fine-tuning runs are their own algorithm directory
    run = pipeline.Run(prep, _quiet, online=OnlineSettings.of(prep))
    states, keys = run.init_states()
    book = run.fresh()
    pipeline.begin_fresh(run, book)
    n_off = prep.size
    buffer, sizes = make_buffer(prep.data, 2, run.online.capacity)
    assert run.online.capacity == n_off + 60 * 2
    states, keys = pipeline.train_offline(run, book, states, keys)
    envs = OnlineEnvs(prep.source.env_factory(), run.seeds, run.online.n_envs, run.obs_adapter)
    envs.reset_all()
    states, keys, buffer, sizes = train_online(run, book, states, keys, buffer, sizes, envs)
    envs.close()

    assert book.env_steps == 60 and book.online_updates == 60 * 2 * 2  # 2 updates per env step, 2 envs
    assert book.step == 40 + 240
    np.testing.assert_array_equal(np.asarray(sizes), [n_off + 120, n_off + 120])  # buffer grew by every transition
    buf = jax.tree_util.tree_map(np.asarray, buffer)
    # the offline rows are untouched and the online rows carry the same reward transform (r - 1)
    np.testing.assert_array_equal(buf["rewards"][0, :n_off], np.asarray(prep.data["rewards"]))
    online_rewards = buf["rewards"][:, n_off : n_off + 120].sum(1)
    np.testing.assert_allclose(
        online_rewards, book.raw_reward_sum * prep.reward_scale + 120 * prep.reward_shift, rtol=1e-4
    )
    assert prep.reward_shift == -1.0
    # seeds explore differently with their own environments
    assert not np.array_equal(buf["actions"][0, n_off:], buf["actions"][1, n_off:])

    recs = finish(run, book)
    r = recs[0]
    phases = [c["phase"] for c in r["curve"]]
    assert phases == ["offline", "offline", "online", "online", "online"]
    assert [c["env_steps"] for c in r["curve"]] == [0, 0, 20, 40, 60]
    assert r["offline_score"] == r["curve"][1]["score"] and r["online_score"] == r["curve"][-1]["score"]
    assert r["eval_regret"] == pytest.approx(np.mean([1 - c["score"] / 100 for c in r["curve"][2:]]))
    assert "regret" not in r  # CORL's regret is over exploration episodes: Hopper reports no success
    assert r["corl_regret"] is None and "reports no success" in r["corl_regret_reason"]
    assert r["final_score"] == r["online_score"] and r["updates_per_env_step"] == 2.0


def test_finetune_config_layer_turns_off_cosine_decay(hopper_file, tmp_path):
    prep = prepare(_opts(hopper_file, tmp_path), say=_quiet)
    assert prep.config["cosine_decay"] is False
    assert prep.spec.total_steps == 40 + 60  # the schedule horizon spans both phases
    off = prepare(_opts(hopper_file, tmp_path, online_steps=0), say=_quiet)
    assert off.config["cosine_decay"] is True


def test_resume_mid_online_matches_uninterrupted(hopper_file, tmp_path, monkeypatch):
    full = run_module.run(_opts(hopper_file, tmp_path / "full"), say=_quiet)
    original = pipeline.evaluate
    calls = {"n": 0}

    def dying(*a, **kw):
        out = original(*a, **kw)
        calls["n"] += 1
        if calls["n"] == 4:  # second online evaluation (env step 40), before its checkpoint
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(pipeline, "evaluate", dying)
    with pytest.raises(KeyboardInterrupt):
        run_module.run(_opts(hopper_file, tmp_path / "cut"), say=_quiet)
    monkeypatch.setattr(pipeline, "evaluate", original)
    (d,) = (tmp_path / "cut" / "results" / "locomotion" / "hopper-random-v2" / "iql-online").iterdir()
    info = checkpoint.read_info(d / "checkpoint-seeds0-1")
    assert info["phase"] == "online" and info["env_steps"] == 20
    # the offline data is referenced by fingerprint, not copied: the checkpoint holds the 20 online rows
    assert info["online_rows"] == 20 and info["fingerprint"] == full[0]["data"]["fingerprint"]
    assert [s[:2] for s in info["shapes"] if len(s) >= 2 and s[1] == 20][:1] == [[2, 20]]
    assert json.loads((d / "seed_0.json").read_text())["status"] == "running"

    resumed = run_module.run(_opts(hopper_file, tmp_path / "cut", resume=True), say=_quiet)
    for a, b in zip(full, resumed):
        assert b["curve"] == a["curve"]
        assert b["metrics"] == a["metrics"]
        assert b["online_episode_returns"] == a["online_episode_returns"]
        assert b["env_steps"] == 60 and b["status"] == "finished"
    # the training logs (offline rows, then one per log_every=20 online updates) equal the uninterrupted run's
    logs = [{p.name: p.read_text() for p in Path(r[0]["run_dir"]).glob("seed_*.metrics.csv")} for r in (full, resumed)]
    assert logs[0] == logs[1] and sorted(logs[0]) == ["seed_0.metrics.csv", "seed_1.metrics.csv"]
    assert [int(line.split(",")[0]) for line in logs[0]["seed_1.metrics.csv"].splitlines()[1:]] == [20, 40, 60, 80, 100]


def test_from_offline_run_and_offline_only_algorithms(hopper_file, tmp_path, monkeypatch):
    off = run_module.run(_opts(hopper_file, tmp_path, online_steps=0), say=_quiet)
    run_dir = Path(off[0]["run_dir"])
    assert off[0]["config"]["cosine_decay"] is True  # the offline run decayed its actor learning rate to 0
    # checked first: another --seeds fails before anything is loaded or compiled
    monkeypatch.setattr(run_module, "prepare", lambda *a, **k: pytest.fail("prepared before checking --seeds"))
    with pytest.raises(OffbenchError, match=r"no checkpoint of seeds 0-2 \(it has seeds0-1\)"):
        run_module.run(_opts(hopper_file, tmp_path, seeds=3, from_run=str(run_dir), online_steps=20), say=_quiet)
    monkeypatch.undo()
    with pytest.raises(OffbenchError, match=r"another config \(expectile: 0.7 there, 0.8 here\)"):
        run_module.run(
            _opts(
                hopper_file,
                tmp_path,
                from_run=str(run_dir),
                online_steps=20,
                overrides=tiny_overrides(log_every=20, expectile=0.8),
            ),
            say=_quiet,
        )
    # the algorithm directory works too when it holds one run
    ft = run_module.run(
        _opts(hopper_file, tmp_path, steps=999, from_run=str(run_dir.parent), online_steps=20), say=_quiet
    )
    assert ft[0]["offline_steps"] == 40 and ft[0]["step"] == 60
    assert ft[0]["offline_score"] == off[0]["final_score"]  # continues from the same state
    assert ft[0]["config"]["cosine_decay"] is False  # IQL's fine-tuning config: constant actor learning rate
    ft_dir = Path(ft[0]["run_dir"])
    assert ft_dir.parent.name == "iql-online" and (ft_dir / "seed_0.json").exists()
    # the actor keeps learning online (it would stand still at the offline schedule's final rate of 0)
    import jax.numpy as jnp

    a = checkpoint.read_info(run_dir / "checkpoint-seeds0-1")
    b = checkpoint.read_info(ft_dir / "checkpoint-seeds0-1")
    assert a["step"] == 40 and b["step"] == 60
    actor = [i for i, path in enumerate(a["paths"]) if "'actor'" in path and "params" in path and "opt" not in path]
    assert actor
    za, zb = (
        np.load(run_dir / "checkpoint-seeds0-1" / checkpoint._latest(run_dir / "checkpoint-seeds0-1") / "state.npz"),
        np.load(ft_dir / "checkpoint-seeds0-1" / checkpoint._latest(ft_dir / "checkpoint-seeds0-1") / "state.npz"),
    )
    moved = max(
        float(jnp.abs(za[f"leaf_{i:05d}"] - zb[f"leaf_{b['paths'].index(a['paths'][i]):05d}"]).max()) for i in actor
    )
    assert moved > 1e-4
    with pytest.raises(OffbenchError, match="does not fine-tune"):
        run_module.run(_opts(hopper_file, tmp_path, algo="bc", online_steps=20), say=_quiet)


class _Scripted(gym.Env):
    """Episodes of 3 steps; the info's ``success`` is scripted per episode (1, 0, 0, 1, ...)."""

    observation_space = gym.spaces.Box(-1, 1, (2,))
    action_space = gym.spaces.Box(-1, 1, (1,))
    PATTERN = [True, False, False, True]

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.ep = 0, getattr(self, "ep", -1) + 1
        return np.zeros(2, np.float32), {}

    def step(self, a):
        self.t += 1
        done = self.t == 3
        success = done and self.PATTERN[self.ep % 4]
        return np.zeros(2, np.float32), float(success), done, False, {"success": success}


def test_corl_regret_over_exploration_episodes_of_a_scripted_online_phase():
    from offbench.envs import ObsAdapter

    envs = OnlineEnvs(_Scripted, [0, 1], 1, ObsAdapter())
    envs.reset_all()
    successes = [[], []]
    for _ in range(12):  # 4 episodes per seed
        *_, finished = envs.step(np.zeros((2, 1, 1), np.float32))
        for i, _ret, ok in finished:
            successes[i].append(ok)
    assert envs.reports_success and successes == [[True, False, False, True]] * 2
    assert corl_regret(successes[0]) == pytest.approx(0.5)  # CORL: mean(1 - success) over exploration episodes
    assert corl_regret([]) is None
    assert eval_regret([100.0, 50.0, 0.0]) == pytest.approx(0.5)  # the evaluation-based number, named as such


def test_from_run_checks_name_the_option_their_caller_was_given(tmp_path):
    """training.from_run's checks say ``--from`` for offbench run and the caller's own words for a script."""
    from offbench.errors import OffbenchError
    from offbench.training.from_run import from_checkpoint

    for flag in ("--from", "kitchen_rollout.py RUN_DIR:"):
        with pytest.raises(OffbenchError) as e:
            from_checkpoint(str(tmp_path), [0], **({} if flag == "--from" else {"flag": flag}))
        assert str(e.value).startswith(f"{flag} {tmp_path}: no checkpoint there")
