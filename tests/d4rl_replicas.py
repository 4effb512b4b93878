"""Small replicas of D4RL's original hdf5 files, written by offbench's ports of D4RL's tasks (offbench/d4rl_envs)
in the key layout and dtypes of D4RL's generation scripts (Farama-Foundation/D4RL 89141a6, scripts/generation/):

* AntMaze: generate_ant_maze_datasets.py (observations without the goal, ``infos/goal``, ``infos/qpos`` /
  ``infos/qvel`` recorded after the step, bool ``timeouts`` when ``ts >= max_episode_steps`` :134-136, float32
  arrays :34-41), then relabel_antmaze_rewards.py (sparse reward and terminals within 0.5 m of the target goal
  from ``observations[1:]``, float32 concatenated with an int 0: float64, :29-38);
* locomotion: mujoco/collect_data.py (``next_observations``, ``infos/qpos``/``qvel`` before the step,
  ``infos/action_log_probs``, timeout at ``t == max_path`` :91-97, ``metadata/*`` :158-162);
* Kitchen: generate_kitchen_datasets.py (60-d observations, float32 terminals on each demo's last step,
  ``infos`` = demo index, no timeouts, :101-131);
* Adroit: hand_dapg_demos.py (bool terminals, a timeout on each demo's last step, ``infos/<get_env_state key>``
  recorded before the step, float32, :42-98).
Actions are uniform random (the files' behaviour policies are not needed for the format).
"""

from __future__ import annotations

import h5py
import numpy as np

from offbench import envs


def _write(path, arrays: dict):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v, compression="gzip")
    return path


def write_antmaze(path, maze_id="D4RL-AntMaze-UMaze-v2", steps=240, max_steps=59, seed=0, perturb=0.0):
    env = envs.make_env(maze_id).unwrapped
    rng = np.random.default_rng(seed)
    s, _ = env.reset(seed=seed)
    goal = env.target_goal.copy()  # relabel_antmaze_rewards.py:18: one target goal for the whole file
    keys = ("observations", "actions", "timeouts", "infos/goal", "infos/qpos", "infos/qvel")
    data = {k: [] for k in keys}
    ts = 0
    for _ in range(steps):
        a = rng.uniform(-1, 1, 8)
        ns, *_ = env.step(a)
        timeout = ts >= max_steps
        for k, v in zip(keys, (s, a, timeout, goal, env.data.qpos.copy(), env.data.qvel.copy())):
            data[k].append(v)
        ts += 1
        s = ns
        if timeout:
            ts = 0
            s, _ = env.reset(seed=int(rng.integers(1 << 31)))
    arrays = {k: np.asarray(v, bool if k == "timeouts" else np.float32) for k, v in data.items()}
    obs = arrays["observations"]
    hit = (np.linalg.norm(obs[1:, :2] - goal, axis=1) <= 0.5).astype(np.float32)
    arrays["rewards"] = np.concatenate([hit, np.array([0])], 0)  # float64, as the relabel script writes
    arrays["terminals"] = np.concatenate([hit, np.array([0])], 0)
    if perturb:
        arrays["actions"] = np.clip(arrays["actions"] + perturb * rng.standard_normal(arrays["actions"].shape), -1, 1)
        arrays["actions"] = arrays["actions"].astype(np.float32)
    return _write(path, arrays)


def write_hopper(path, steps=300, max_path=100, seed=0):
    env = envs.make_env("D4RL-Hopper-v2").unwrapped
    env.action_space.seed(seed)
    s, _ = env.reset(seed=seed)
    keys = ("observations", "actions", "next_observations", "rewards", "terminals", "timeouts", "qpos", "qvel")
    data = {k: [] for k in keys}
    t = 0
    for _ in range(steps):
        a = env.action_space.sample()
        qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
        ns, r, done, _, _ = env.step(a)
        t += 1
        timeout, terminal = t == max_path, False
        if not timeout and done:
            terminal = True
        for k, v in zip(keys, (s, a, ns, r, terminal, timeout, qpos, qvel)):
            data[k].append(v)
        s = ns
        if terminal or timeout:
            s, _ = env.reset()
            t = 0
    f32 = {k: np.asarray(data[k], np.float32) for k in ("observations", "actions", "next_observations", "rewards")}
    arrays = dict(f32, terminals=np.asarray(data["terminals"], bool), timeouts=np.asarray(data["timeouts"], bool))
    arrays["infos/action_log_probs"] = np.full(steps, -np.log(8.0), np.float32)
    arrays["infos/qpos"] = np.asarray(data["qpos"], np.float32)
    arrays["infos/qvel"] = np.asarray(data["qvel"], np.float32)
    _write(path, arrays)
    with h5py.File(path, "a") as f:
        f["metadata/algorithm"] = np.bytes_("SAC")
        f["metadata/iteration"] = np.int32(0)
    return path


def write_kitchen(path, dataset="D4RL-Kitchen-Mixed-v0", demos=3, length=40, seed=0):
    env = envs.make_env(dataset)
    rng = np.random.default_rng(seed)
    obs, act, rew, term, infos = [], [], [], [], []
    for idx in range(demos):
        s, _ = env.reset(seed=seed + idx)
        for t in range(length):
            a = rng.uniform(-1, 1, 9)
            ns, r, *_ = env.step(a)
            obs.append(s), act.append(a), rew.append(r), term.append(t == length - 1), infos.append(idx)
            s = ns
    arrays = {
        "observations": np.asarray(obs, np.float32),
        "actions": np.asarray(act, np.float32),
        "rewards": np.asarray(rew, np.float32),
        "terminals": np.asarray(term, np.float32),
        "infos": np.asarray(infos),
    }
    return _write(path, arrays)


def write_door(path, demos=2, length=30, seed=0):
    env = envs.make_env("D4RL-AdroitHandDoor-v1")
    u = env.unwrapped
    rng = np.random.default_rng(seed)
    keys = ("observations", "actions", "rewards", "terminals", "timeouts")
    data = {k: [] for k in keys}
    state: dict = {}
    for _ in range(demos):
        s, _ = env.reset(seed=int(rng.integers(1 << 31)))
        for t in range(length):
            for k, v in u.get_env_state().items():
                state.setdefault(k, []).append(np.asarray(v).ravel().copy())
            a = np.clip(rng.uniform(-1, 1, env.action_space.shape), -1.0, 1.0)
            ns, r, *_ = env.step(a)
            for k, v in zip(keys, (s, a, r, False, t == length - 1)):
                data[k].append(v)
            s = ns
    arrays = {k: np.asarray(v, bool if k in ("terminals", "timeouts") else np.float32) for k, v in data.items()}
    arrays.update({f"infos/{k}": np.asarray(v, np.float32) for k, v in state.items()})
    return _write(path, arrays)
