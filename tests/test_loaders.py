"""Both loaders on small datasets written here: D4RL qlearning conventions, timeouts vs terminals."""

import h5py
import numpy as np
import pytest

from offbench.data.loaders import Dataset, load_d4rl_hdf5, load_minari
from offbench.errors import OffbenchError


def _write(path, **arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = np.asarray(v)
    return path


def _toy():
    # 3 episodes: A = steps 0-2 ends by a terminal at 2; B = steps 3-5 ends by a timeout at 5; C = steps 6-7
    # (the file's end, no flag). Observations encode the step index.
    obs = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    act = np.arange(8, dtype=np.float32)[:, None]
    rew = np.arange(8, dtype=np.float32) * 10
    term = np.array([0, 0, 1, 0, 0, 0, 0, 0], bool)
    tout = np.array([0, 0, 0, 0, 0, 1, 0, 0], bool)
    return obs, act, rew, term, tout


def test_hdf5_qlearning_conventions_without_next_observations(tmp_path):
    obs, act, rew, term, tout = _toy()
    ds = load_d4rl_hdf5(
        _write(tmp_path / "toy.hdf5", observations=obs, actions=act, rewards=rew, terminals=term, timeouts=tout)
    )
    # the timeout step (5) and the file's last step (7) have no next observation in the file: dropped
    np.testing.assert_array_equal(ds.actions[:, 0], [0, 1, 2, 3, 4, 6])
    # next observation = next step of the same episode
    np.testing.assert_array_equal(ds.next_observations[:, 0][[0, 1, 3, 4]], [1, 2, 4, 5])
    # Bellman mask from true terminals only (the timeout is not a terminal)
    np.testing.assert_array_equal(ds.terminals, [0, 0, 1, 0, 0, 0])
    # episode ends: terminal at 2, the timeout episode now ends at its last kept step (4), file end
    np.testing.assert_array_equal(ds.episode_ends, [0, 0, 1, 0, 1, 1])
    np.testing.assert_allclose(ds.episode_returns(), [30, 70, 60])


def test_hdf5_with_next_observations_keeps_qlearning_rows(tmp_path):
    # d4rl's qlearning_dataset (d4rl/__init__.py:109-132) drops timeout steps and the last step even when the
    # file carries next_observations; offbench keeps its rows and takes the next observations from the file
    obs, act, rew, term, tout = _toy()
    nxt = obs + 100
    ds = load_d4rl_hdf5(
        _write(
            tmp_path / "toy.hdf5",
            observations=obs,
            actions=act,
            rewards=rew,
            terminals=term,
            timeouts=tout,
            next_observations=nxt,
        )
    )
    np.testing.assert_array_equal(ds.actions[:, 0], [0, 1, 2, 3, 4, 6])
    np.testing.assert_array_equal(ds.next_observations, nxt[[0, 1, 2, 3, 4, 6]])
    np.testing.assert_array_equal(ds.terminals, [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(np.flatnonzero(ds.episode_ends), [2, 4, 5])


def test_hdf5_real_hopper_file(hopper_file):
    ds = load_d4rl_hdf5(hopper_file)
    assert ds.obs_dim == 11 and ds.act_dim == 3
    inner = ~ds.episode_ends
    # inside an episode, each next observation is the following row's observation
    np.testing.assert_array_equal(ds.next_observations[:-1][inner[:-1]], ds.observations[1:][inner[:-1]])
    assert ds.terminals.sum() > 0 and ds.episode_ends.sum() > ds.terminals.sum()


def test_hdf5_missing_keys_and_mismatched_lengths(tmp_path):
    obs, act, rew, term, tout = _toy()
    with pytest.raises(OffbenchError, match="missing D4RL keys.*terminals"):
        load_d4rl_hdf5(_write(tmp_path / "a.hdf5", observations=obs, actions=act, rewards=rew))
    with pytest.raises(OffbenchError, match="different lengths"):
        load_d4rl_hdf5(
            _write(tmp_path / "b.hdf5", observations=obs, actions=act[:5], rewards=rew, terminals=term, timeouts=tout)
        )
    with pytest.raises(OffbenchError, match="does not exist"):
        load_d4rl_hdf5(tmp_path / "nope.hdf5")
    (tmp_path / "c.hdf5").write_text("not hdf5")
    with pytest.raises(OffbenchError, match="not a readable hdf5"):
        load_d4rl_hdf5(tmp_path / "c.hdf5")


def test_dataset_rejects_mismatched_fields():
    with pytest.raises(OffbenchError, match="rows"):
        Dataset(np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(3), np.zeros((3, 2)), np.zeros(3), np.zeros(3))


def _episodes():
    rng = np.random.default_rng(0)
    eps = []
    # episode 0 ends by termination, episode 1 by truncation (time limit)
    for length, terminated in ((5, True), (7, False)):
        eps.append(
            {
                "observations": rng.normal(size=(length + 1, 11)).astype(np.float32),
                "actions": rng.uniform(-1, 1, (length, 3)).astype(np.float32),
                "rewards": rng.normal(size=length),
                "terminations": np.array([False] * (length - 1) + [terminated]),
                "truncations": np.array([False] * (length - 1) + [not terminated]),
            }
        )
    return eps


def test_minari_loader_terminations_vs_truncations():
    from offbench.recipes.writer import write_minari

    eps = _episodes()
    write_minari("test/toy-v0", eps, "Hopper-v5", ref_min_score=-1.0, ref_max_score=2.0, provenance={"seed": 3})
    ds = load_minari("test/toy-v0")
    assert len(ds) == 12
    np.testing.assert_array_equal(np.flatnonzero(ds.terminals), [4])  # termination only
    np.testing.assert_array_equal(np.flatnonzero(ds.episode_ends), [4, 11])  # both episode ends
    np.testing.assert_allclose(ds.observations[:5], eps[0]["observations"][:-1], rtol=1e-6)
    np.testing.assert_allclose(ds.next_observations[5:], eps[1]["observations"][1:], rtol=1e-6)
    assert ds.metadata["ref_min_score"] == -1.0 and ds.metadata["ref_max_score"] == 2.0
    assert ds.metadata["rebuilt"] is True and "seed" in ds.metadata["provenance"]
    # a second write of the same id replaces it (Minari refuses to overwrite by itself)
    write_minari("test/toy-v0", eps[:1], "Hopper-v5")
    assert len(load_minari("test/toy-v0")) == 5


def test_minari_dict_observations_flattened_in_key_order():
    from offbench.data.loaders import flatten_observation

    obs = {"b": np.ones((4, 2)), "a": np.zeros((4, 3)), "c": {"y": np.full((4, 1), 2.0), "x": np.full((4, 1), 3.0)}}
    flat = flatten_observation(obs, ["b", "a"])
    assert flat.shape == (4, 5) and np.all(flat[:, :2] == 1) and np.all(flat[:, 2:] == 0)
    nested = flatten_observation(obs, ["c"])
    np.testing.assert_array_equal(nested[0], [3.0, 2.0])  # nested keys sorted
    with pytest.raises(OffbenchError, match="obs_keys"):
        flatten_observation(obs, ["zzz"])


def test_minari_missing_dataset_says_how_to_get_it():
    with pytest.raises(OffbenchError, match="offbench data download"):
        load_minari("nothere/none-v0")


def test_writer_stores_the_recipe_version_of_any_rebuilt_id():
    from offbench.recipes.recipes import get_recipe
    from offbench.recipes.writer import write_minari

    write_minari("rebuilt/kitchen-mixed-v0", _episodes(), "Hopper-v5", ref_min_score=0.0, ref_max_score=1.0)
    meta = load_minari("rebuilt/kitchen-mixed-v0").metadata
    assert meta["recipe"] == "kitchen-mixed-v0" and meta["recipe_version"] == get_recipe("kitchen-mixed-v0").version
    write_minari("test/toy-v0", _episodes(), "Hopper-v5")
    assert "recipe_version" not in load_minari("test/toy-v0").metadata  # not a recipe's build


def test_a_small_rebuild_says_so_when_a_run_uses_it():
    """A dataset built smaller than its recipe (--size, --preset quick) is announced with both sizes."""
    from offbench.cli.data import build_one
    from offbench.data.sources import resolve
    from offbench.data.suites import get_suite

    build_one("pointmaze-umaze-play-v0", size=300, progress=False)
    note = resolve(get_suite("pointmaze"), "pointmaze-umaze-play-v0", {}).note
    assert "300 transitions" in note and "full size is 1,000,000" in note, note
