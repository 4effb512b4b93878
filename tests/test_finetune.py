"""Offline-to-online fine-tuning: bookkeeping, reward transform on online data, resume mid-online, --from."""
import json

import jax
import numpy as np
import pytest
from conftest import tiny_overrides

from offbench.errors import OffbenchError
from offbench.training import offline as pipeline
from offbench.training import run as run_module
from offbench.training.online import FinetuneRun, OnlineEnvs, make_buffer, regret


def _opts(hopper_file, tmp_path, **kw):
    base = dict(algo="iql", suite="locomotion", dataset=hopper_file, seeds=2, steps=40, eval_every=20,
                eval_episodes=1, online_steps=60, overrides=tiny_overrides(log_every=20),
                results=str(tmp_path / "results"), progress=False)
    base.update(kw)
    return pipeline.RunOptions(**base)


def _quiet(_):
    pass


def test_finetune_bookkeeping_buffer_growth_and_reward_transform(hopper_file, tmp_path):
    opts = _opts(hopper_file, tmp_path, overrides=tiny_overrides(log_every=20, reward_transform="antmaze",
                                                                  online_updates_per_step=2.0, online_envs=2))
    prep = pipeline.prepare(opts, say=_quiet)
    prep.directory = prep.directory.with_name("iql-online")
    run = FinetuneRun(prep, _quiet)
    states, keys = run.init_states()
    pipeline.begin_fresh(prep, run, opts, _quiet)
    n_off = prep.size
    buffer, sizes = make_buffer(prep.data, 2, run.capacity)
    assert run.capacity == n_off + 60 * 2
    states, keys = run.train_offline(states, keys)
    envs = OnlineEnvs(prep.source.env_factory(), run.seeds, run.n_envs, run.obs_adapter)
    envs.reset_all()
    states, keys, buffer, sizes = run.train_online(states, keys, buffer, sizes, envs)
    envs.close()

    assert run.env_steps == 60 and run.online_updates == 60 * 2 * 2  # 2 updates per env step, 2 envs
    assert run.step == 40 + 240
    np.testing.assert_array_equal(np.asarray(sizes), [n_off + 120, n_off + 120])  # buffer grew by every transition
    buf = jax.tree_util.tree_map(np.asarray, buffer)
    # the offline rows are untouched and the online rows carry the same reward transform (r - 1)
    np.testing.assert_array_equal(buf["rewards"][0, :n_off], np.asarray(prep.data["rewards"]))
    online_rewards = buf["rewards"][:, n_off:n_off + 120].sum(1)
    np.testing.assert_allclose(online_rewards, run.raw_reward_sum * prep.reward_scale + 120 * prep.reward_shift,
                               rtol=1e-4)
    assert prep.reward_shift == -1.0
    # seeds explore differently with their own environments
    assert not np.array_equal(buf["actions"][0, n_off:], buf["actions"][1, n_off:])

    recs = pipeline.finish(run)
    r = recs[0]
    phases = [c["phase"] for c in r["curve"]]
    assert phases == ["offline", "offline", "online", "online", "online"]
    assert [c["env_steps"] for c in r["curve"]] == [0, 0, 20, 40, 60]
    assert r["offline_score"] == r["curve"][1]["score"] and r["online_score"] == r["curve"][-1]["score"]
    assert r["regret"] == pytest.approx(np.mean([1 - c["score"] / 100 for c in r["curve"][2:]]))
    assert r["final_score"] == r["online_score"] and r["updates_per_env_step"] == 2.0


def test_finetune_config_layer_turns_off_cosine_decay(hopper_file, tmp_path):
    prep = pipeline.prepare(_opts(hopper_file, tmp_path), say=_quiet)
    assert prep.config["cosine_decay"] is False
    assert prep.spec.total_steps == 40 + 60  # the schedule horizon spans both phases
    off = pipeline.prepare(_opts(hopper_file, tmp_path, online_steps=0), say=_quiet)
    assert off.config["cosine_decay"] is True


def test_resume_mid_online_matches_uninterrupted(hopper_file, tmp_path, monkeypatch):
    full = run_module.run(_opts(hopper_file, tmp_path / "full"), say=_quiet)
    original = pipeline.Run.evaluate
    calls = {"n": 0}

    def dying(self, *a, **kw):
        out = original(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 4:  # second online evaluation (env step 40), before its checkpoint
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(pipeline.Run, "evaluate", dying)
    with pytest.raises(KeyboardInterrupt):
        run_module.run(_opts(hopper_file, tmp_path / "cut"), say=_quiet)
    monkeypatch.setattr(pipeline.Run, "evaluate", original)
    d = tmp_path / "cut" / "results" / "locomotion" / "hopper-random-v2" / "iql-online"
    info = json.loads((d / "checkpoint" / "checkpoint.json").read_text())
    assert info["phase"] == "online" and info["env_steps"] == 20
    assert json.loads((d / "seed_0.json").read_text())["status"] == "running"

    resumed = run_module.run(_opts(hopper_file, tmp_path / "cut", resume=True), say=_quiet)
    for a, b in zip(full, resumed):
        assert b["curve"] == a["curve"]
        assert b["metrics"] == a["metrics"]
        assert b["online_episode_returns"] == a["online_episode_returns"]
        assert b["env_steps"] == 60 and b["status"] == "finished"


def test_from_offline_run_and_offline_only_algorithms(hopper_file, tmp_path):
    off = run_module.run(_opts(hopper_file, tmp_path, online_steps=0), say=_quiet)
    run_dir = tmp_path / "results" / "locomotion" / "hopper-random-v2" / "iql"
    ft = run_module.run(_opts(hopper_file, tmp_path, steps=999, from_run=str(run_dir), online_steps=20), say=_quiet)
    assert ft[0]["offline_steps"] == 40 and ft[0]["step"] == 60
    assert ft[0]["offline_score"] == off[0]["final_score"]  # continues from the same state
    assert (run_dir.parent / "iql-online" / "seed_0.json").exists()
    with pytest.raises(OffbenchError, match="seeds"):
        run_module.run(_opts(hopper_file, tmp_path, seeds=3, from_run=str(run_dir), online_steps=20), say=_quiet)
    with pytest.raises(OffbenchError, match="does not fine-tune"):
        run_module.run(_opts(hopper_file, tmp_path, algo="bc", online_steps=20), say=_quiet)


def test_regret_definition():
    assert regret([100.0, 50.0, 0.0]) == pytest.approx(0.5)
    assert regret([]) is None
