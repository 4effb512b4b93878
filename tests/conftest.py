"""Shared fixtures: small datasets written by the tests themselves, isolated data folders."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import h5py
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def isolated_data(tmp_path_factory, monkeypatch):
    """Every test sees empty, private Minari / hdf5 folders (never the user's datasets)."""
    root = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root / "minari"))
    monkeypatch.setenv("OFFBENCH_DATA_DIR", str(root / "d4rl"))
    yield


def write_hopper_hdf5(path, steps: int = 600, episode_len: int = 100, seed: int = 0, next_obs: bool = False):
    """A D4RL-format hdf5 file of real Hopper-v5 transitions under random actions (timeouts at
    ``episode_len``, terminals where the hopper falls)."""
    import gymnasium as gym

    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(seed)
    O, A, R, T, TO, N = [], [], [], [], [], []  # noqa: E741 (D4RL field initials)
    o, _ = env.reset(seed=seed)
    t = 0
    for _ in range(steps):
        a = rng.uniform(-1, 1, 3).astype(np.float32)
        o2, r, term, trunc, _ = env.step(a)
        t += 1
        timeout = (trunc or t >= episode_len) and not term
        O.append(o), A.append(a), R.append(r), T.append(term), TO.append(timeout), N.append(o2)
        o = o2
        if term or timeout:
            o, _ = env.reset()
            t = 0
    with h5py.File(path, "w") as f:
        f["observations"] = np.array(O, np.float32)
        f["actions"] = np.array(A, np.float32)
        f["rewards"] = np.array(R, np.float32)
        f["terminals"] = np.array(T)
        f["timeouts"] = np.array(TO)
        if next_obs:
            f["next_observations"] = np.array(N, np.float32)
    return path


@pytest.fixture(scope="session")
def hopper_file(tmp_path_factory):
    return str(write_hopper_hdf5(tmp_path_factory.mktemp("hdf5") / "hopper-random-v2.hdf5"))


TINY = {"hidden_dims": [32, 32], "batch_size": 64}


def tiny_overrides(**extra):
    return {**TINY, **extra}
