"""Offline datasets: one array layout, two loaders (Minari, D4RL hdf5), the suites' transforms.

Conventions follow D4RL's ``qlearning_dataset``: the next observation is the next step of the *same*
episode; a timeout is an episode boundary but not a terminal; the Bellman mask uses true terminals only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np

from offbench.envs import obs_key_parts
from offbench.errors import OffbenchError

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "episode_ends")


@dataclasses.dataclass
class Dataset:
    """Transitions as flat arrays of equal length N.

    ``terminals[i]``: the episode truly ended at transition i (Bellman mask = 1 - terminals).
    ``episode_ends[i]``: transition i is the last of its episode (terminal, timeout or truncation).
    ``metadata``: source, id, reference returns (``ref_min_score``/``ref_max_score``) when known.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    episode_ends: np.ndarray
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.observations = np.asarray(self.observations, np.float32)
        self.next_observations = np.asarray(self.next_observations, np.float32)
        self.actions = np.asarray(self.actions, np.float32)
        self.rewards = np.asarray(self.rewards, np.float32).reshape(-1)
        self.terminals = np.asarray(self.terminals, np.float32).reshape(-1)
        self.episode_ends = np.asarray(self.episode_ends, bool).reshape(-1)
        n = len(self.rewards)
        for name in FIELDS:
            if len(getattr(self, name)) != n:
                raise OffbenchError(
                    f"dataset field {name!r} has {len(getattr(self, name))} rows, expected {n}; "
                    "every field must have one row per transition"
                )
        if n == 0:
            raise OffbenchError("dataset has no transitions")
        if n:
            self.episode_ends[-1] = True

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    def arrays(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}

    def episode_slices(self) -> list[slice]:
        return episode_slices(self.episode_ends)

    def episode_returns(self) -> np.ndarray:
        return episode_returns(self.rewards, self.episode_ends)

    def fingerprint(self) -> str:
        """sha256 over the arrays as loaded (before any transform): identifies the data actually used."""
        h = hashlib.sha256()
        for name in FIELDS:
            a = np.ascontiguousarray(getattr(self, name))
            h.update(name.encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]


def episode_returns(rewards: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
    ends = np.flatnonzero(episode_ends)
    csum = np.concatenate([[0.0], np.cumsum(rewards, dtype=np.float64)])
    starts = np.concatenate([[0], ends[:-1] + 1])
    return csum[ends + 1] - csum[starts]


def episode_slices(episode_ends: np.ndarray) -> list[slice]:
    """The rows of each episode, for the episode ends ``episode_ends``."""
    ends = np.flatnonzero(episode_ends)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [slice(int(s), int(e) + 1) for s, e in zip(starts, ends)]


def episode_ids(episode_ends: np.ndarray) -> np.ndarray:
    """Index of the episode each transition belongs to."""
    ends = np.asarray(episode_ends, bool)
    return np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# D4RL hdf5

D4RL_REQUIRED = ("observations", "actions", "rewards", "terminals")

# d4rl's cache names: d4rl/offline_env.py:31-33 stores a download under the URL's basename
# (~/.d4rl/datasets/<basename>); the URLs are d4rl/infos.py's DATASET_URLS.
D4RL_CACHE_NAMES = {
    # d4rl/infos.py:63-68
    "Ant_maze_u-maze_noisy_multistart_False_multigoal_False_sparse_fixed": "antmaze-umaze-v2",
    "Ant_maze_u-maze_noisy_multistart_True_multigoal_True_sparse_fixed": "antmaze-umaze-diverse-v2",
    "Ant_maze_big-maze_noisy_multistart_True_multigoal_False_sparse_fixed": "antmaze-medium-play-v2",
    "Ant_maze_big-maze_noisy_multistart_True_multigoal_True_sparse_fixed": "antmaze-medium-diverse-v2",
    "Ant_maze_hardest-maze_noisy_multistart_True_multigoal_False_sparse_fixed": "antmaze-large-play-v2",
    "Ant_maze_hardest-maze_noisy_multistart_True_multigoal_True_sparse_fixed": "antmaze-large-diverse-v2",
    # d4rl/infos.py:73-75
    "mini_kitchen_microwave_kettle_light_slider-v0": "kitchen-complete-v0",
    "kitchen_microwave_kettle_light_slider-v0": "kitchen-partial-v0",
    "kitchen_microwave_kettle_bottomburner_light-v0": "kitchen-mixed-v0",
}
# d4rl/infos.py:296-300: gym_mujoco_v2/<env>_<dataset with "_">-v2.hdf5 (hopper_medium_replay-v2.hdf5);
# hand_dapg_v1 files (infos.py:308) are already named after the task (door-human-v1.hdf5).
_GYM_CACHE_NAME = re.compile(r"^(halfcheetah|hopper|walker2d|ant)_([a-z_]+)-v2$")


def d4rl_task_name(stem: str) -> str:
    """The D4RL task name (``hopper-medium-v2``) of a file named as d4rl caches it (``hopper_medium-v2``);
    any other stem is returned unchanged."""
    if stem in D4RL_CACHE_NAMES:
        return D4RL_CACHE_NAMES[stem]
    m = _GYM_CACHE_NAME.match(stem)
    return f"{m.group(1)}-{m.group(2).replace('_', '-')}-v2" if m else stem


def _flags(f, key: str, n: int) -> np.ndarray:
    """A flag array of any dtype D4RL's scripts write (bool, float32 kitchen, float64 relabelled AntMaze,
    int) as bool. ``f[key][()]`` reads the stored dtype; h5py cannot cast float to bool on read."""
    if key not in f:
        return np.zeros(n, bool)
    return np.asarray(f[key][()]).reshape(-1) != 0


def load_d4rl_hdf5(path: str | Path) -> Dataset:
    """Load a D4RL-format hdf5 file (``observations``, ``actions``, ``rewards``, ``terminals``,
    ``timeouts``, optional ``next_observations``) into the transitions d4rl's ``qlearning_dataset``
    builds (d4rl/__init__.py:109-132): step i for i < N-1, skipping every step flagged ``timeouts`` (and
    the file's last step), with ``terminals`` as the Bellman mask.

    Where offbench differs on purpose: a kept step's next observation is the file's ``next_observations``
    when it has them (qlearning_dataset ignores them and takes ``observations[i+1]``; the two agree inside
    an episode and differ only on terminal steps, whose next value is masked); a file without ``timeouts``
    ends episodes at terminals only (qlearning_dataset would count steps against the env's time limit)."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise OffbenchError(f"dataset file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OffbenchError(f"{path} is not a readable hdf5 file ({exc})") from exc
    with f:
        missing = [k for k in D4RL_REQUIRED if k not in f]
        if missing:
            raise OffbenchError(
                f"{path} is missing D4RL keys {missing}; a D4RL file needs "
                f"{', '.join(D4RL_REQUIRED)} (+ timeouts, optional next_observations)"
            )
        obs = np.asarray(f["observations"][()], np.float32)
        act = np.asarray(f["actions"][()], np.float32)
        rew = np.asarray(f["rewards"][()], np.float32).reshape(-1)
        n = len(rew)
        term = _flags(f, "terminals", n)
        timeouts = _flags(f, "timeouts", n)
        next_obs = np.asarray(f["next_observations"][()], np.float32) if "next_observations" in f else None
        attrs = dict(f.attrs)
        has_states = "infos/qpos" in f and "infos/qvel" in f
    lengths = {
        "observations": len(obs),
        "actions": len(act),
        "rewards": n,
        "terminals": len(term),
        "timeouts": len(timeouts),
    }
    if next_obs is not None:
        lengths["next_observations"] = len(next_obs)
    if len(set(lengths.values())) != 1:
        raise OffbenchError(f"{path} has arrays of different lengths {lengths}; all must have one row per step")
    if n < 2:
        raise OffbenchError(f"{path} holds fewer than two steps")

    # qlearning_dataset: range(N-1) (the last step has no next row) and `continue` on timeouts[i]
    keep = ~timeouts
    keep[-1] = False
    if not keep.any():
        raise OffbenchError(f"{path} has no step that is not a timeout; it holds no transition")
    nxt = next_obs if next_obs is not None else np.concatenate([obs[1:], obs[-1:]], axis=0)
    ends = term | timeouts
    ends[-1] = True
    meta = {"source": "d4rl-hdf5", "path": str(path), "has_states": bool(has_states)}
    for key in ("ref_min_score", "ref_max_score"):
        if key in attrs:
            meta[key] = float(attrs[key])
    # If a dropped step ended an episode, its predecessor becomes the episode's last kept step.
    ends_kept = _carry_ends(ends, keep)
    return Dataset(obs[keep], act[keep], rew[keep], nxt[keep], term[keep], ends_kept, meta)


def _carry_ends(ends: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Episode-end flags after dropping rows: a dropped row's end flag moves to the previous kept row."""
    out = ends.copy()
    idx = np.flatnonzero(~keep & ends)
    for i in idx:
        j = i - 1
        while j >= 0 and not keep[j]:
            j -= 1
        if j >= 0:
            out[j] = True
    return out[keep]


# --------------------------------------------------------------------------------------------------
# Minari


def flatten_observation(obs, keys: list | None):
    """A Minari observation as a 2-D float32 array: arrays stay; dicts are flattened in ``keys`` order
    (all keys, sorted, if ``keys`` is None); nested dicts recursively. A key may be a ``(key, columns)`` pair:
    those columns of the key's flat array (a suite's view of part of an observation, ``Task.rebuilt_obs_keys``)."""
    if isinstance(obs, dict):
        parts = []
        for k, cols in obs_key_parts(obs, keys):
            v = flatten_observation(obs[k], None)
            parts.append(v if cols is None else v[:, cols])
        return np.concatenate(parts, axis=-1)
    arr = np.asarray(obs, np.float32)
    return arr.reshape(arr.shape[0], -1)


def load_minari(dataset_id: str, obs_keys: list[str] | None = None, download: bool = False) -> Dataset:
    """Load a Minari dataset by id (local; downloaded first when ``download``).

    A goal-conditioned dataset (Dict observations with ``achieved_goal``/``desired_goal``, Gymnasium-Robotics'
    mazes) also gets ``dataset.goals``: per transition the next step's ``achieved_goal`` and ``desired_goal``
    (the goal its reward was computed for), and each episode's first ``achieved_goal`` (``start``), so that
    :mod:`offbench.data.hosted` can read the task the data poses even when ``obs_keys`` drops the goal."""
    import minari

    try:
        ds = minari.load_dataset(dataset_id, download=download)
    except Exception as exc:  # minari raises FileNotFoundError / ValueError / network errors
        raise OffbenchError(
            f"Minari dataset {dataset_id!r} is not available locally "
            f"(run `offbench data download {dataset_id}` or `offbench data build`): {exc}"
        ) from exc
    obs_l, act_l, rew_l, nxt_l, term_l, end_l = [], [], [], [], [], []
    goals: dict = {"achieved": [], "desired": [], "start": []}
    for ep in ds.iterate_episodes():
        if _has_goal_arrays(ep.observations):
            ach = np.asarray(ep.observations["achieved_goal"], np.float64)
            goals["achieved"].append(ach[1:])
            goals["desired"].append(np.asarray(ep.observations["desired_goal"], np.float64)[1:])
            goals["start"].append(ach[:1])
        o = flatten_observation(ep.observations, obs_keys)
        t = len(ep.actions)
        if len(o) != t + 1:
            raise OffbenchError(f"episode {ep.id} of {dataset_id} has {len(o)} observations for {t} actions")
        obs_l.append(o[:-1])
        nxt_l.append(o[1:])
        act_l.append(np.asarray(ep.actions, np.float32).reshape(t, -1))
        rew_l.append(np.asarray(ep.rewards, np.float32))
        term = np.asarray(ep.terminations, bool)
        trunc = np.asarray(ep.truncations, bool)
        term_l.append(term)
        e = term | trunc
        e[-1] = True
        end_l.append(e)
    if not obs_l:
        raise OffbenchError(f"Minari dataset {dataset_id!r} has no episodes")
    meta = {"source": "minari", "minari_id": dataset_id}
    m = ds.storage.metadata if hasattr(ds, "storage") else {}
    for key in (
        "ref_min_score",
        "ref_max_score",
        "env_spec",
        "eval_env_spec",
        "rebuilt",
        "provenance",
        "dataset_size",
        "recipe",
        "recipe_version",
        "recipe_size",
        "recipe_default_size",
        "references",
    ):
        if key in m and m[key] is not None:
            val = m[key]
            meta[key] = val if isinstance(val, (int, float, str, bool, list, dict)) else str(val)
    out = Dataset(
        np.concatenate(obs_l),
        np.concatenate(act_l),
        np.concatenate(rew_l),
        np.concatenate(nxt_l),
        np.concatenate(term_l),
        np.concatenate(end_l),
        meta,
    )
    out.goals = {k: np.concatenate(v) for k, v in goals.items()} if goals["start"] else None
    return out


def _has_goal_arrays(obs) -> bool:
    """Dict observations with array ``achieved_goal``/``desired_goal`` (the mazes; Kitchen's are dicts per task)."""
    return isinstance(obs, dict) and all(
        k in obs and not isinstance(obs[k], dict) for k in ("achieved_goal", "desired_goal")
    )


def minari_local_ids() -> set[str]:
    try:
        import minari

        return set(minari.list_local_datasets().keys())
    except Exception:
        return set()


# --------------------------------------------------------------------------------------------------
# Reward transforms: each algorithm's YAML names one per suite (``reward_transform``), with its source.
# Applied the same way to the offline data and to online transitions.

REWARD_TRANSFORMS = {
    "none": "r (the dataset's own rewards)",
    "locomotion": "r * 1000 / (max - min episode return)  (IQL code train_offline.py normalize; CORL modify_reward)",
    "antmaze": "r - 1  (IQL code train_offline.py; CORL modify_reward for AWAC / TD3+BC / IQL)",
    "cql_antmaze": "10 r - 5  (CORL configs/offline/cql/antmaze/*.yaml: reward_scale 10, reward_bias -5)",
}


def reward_scale_for(dataset: Dataset, transform: str) -> tuple[float, float]:
    """(scale, shift) such that r' = scale * r + shift, for a named reward transform."""
    if transform in (None, "", "none"):
        return 1.0, 0.0
    if transform == "locomotion":
        rets = dataset.episode_returns()
        spread = float(rets.max() - rets.min())
        return (1000.0 / spread if spread > 0 else 1.0), 0.0
    if transform == "antmaze":
        return 1.0, -1.0
    if transform == "cql_antmaze":
        return 10.0, -5.0
    raise OffbenchError(f"unknown reward transform {transform!r}; known: {', '.join(REWARD_TRANSFORMS)}")


def obs_normalizer(dataset: Dataset, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    mean = dataset.observations.mean(0)
    std = dataset.observations.std(0) + eps
    return mean.astype(np.float32), std.astype(np.float32)
