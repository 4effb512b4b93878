"""Does the evaluation environment reproduce the file's dynamics? (``offbench data check FILE``)

For sampled steps i of a D4RL hdf5 file that records simulator states, the environment is set to the state
recorded before step i, the recorded action is applied, and the resulting state and reward are compared with
the file's. Where the states come from, per family (D4RL's generation scripts, Farama-Foundation/D4RL 89141a6):

* locomotion (``scripts/generation/mujoco/collect_data.py:75``) and Adroit (``hand_dapg_demos.py:47-50``,
  ``hand_dapg_policies.py:93-95``): ``infos/qpos``/``infos/qvel`` (Adroit: and the rest of ``get_env_state()``
  under ``infos/``) are recorded *before* the step; the next state is row i+1 of the same episode;
* AntMaze (``generate_ant_maze_datasets.py:133-139``): ``infos/qpos``/``infos/qvel`` are recorded *after* the
  step, so they are the next state; the state before the step is the 29-d observation (``qpos[:15]`` +
  ``qvel[:14]``: the ant is the maze's only body), and the reward (relabelled against a goal the file does not
  record, ``relabel_antmaze_rewards.py:17-31``) is not compared.

A step matches when every coordinate of the next state is within ``atol + rtol * |x|`` of the file's
(and the reward within the same). The verdict: ``reproduces`` when at least ``PASS_FRACTION`` of the checked
steps match, else ``differs``. Kitchen files record no simulator state: they are not checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offbench.errors import OffbenchError

ATOL, RTOL = 1e-3, 1e-3
PASS_FRACTION = 0.9
ADROIT_EXTRA = {  # get_env_state() keys besides qpos / qvel (gymnasium-robotics adroit_*.py set_env_state)
    "door": ("door_body_pos",),
    "hammer": ("board_pos",),
    "pen": ("desired_orien",),
    "relocate": ("obj_pos", "target_pos"),
}


def family(env_id: str) -> str | None:
    if env_id.startswith("D4RL-AntMaze"):
        return "antmaze"
    if env_id.startswith("D4RL-AdroitHand"):
        return "adroit"
    if env_id in ("D4RL-Hopper-v2", "D4RL-HalfCheetah-v2", "D4RL-Walker2d-v2"):
        return "locomotion"
    return None


_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


def _read(path) -> dict:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and (name.startswith("infos/") or name in _KEYS):
                out[name] = obj[()]

        f.visititems(visit)
    return out


def _within(got, want) -> np.ndarray:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.abs(got - want) <= ATOL + RTOL * np.abs(want)


def _candidates(fam: str, arrays: dict) -> np.ndarray:
    """Rows whose next state the file holds."""
    n = len(arrays["rewards"])
    if fam == "antmaze":
        return np.arange(n)
    ends = np.asarray(arrays["terminals"]).reshape(-1) != 0
    if "timeouts" in arrays:
        ends |= np.asarray(arrays["timeouts"]).reshape(-1) != 0
    ends[-1] = True
    return np.flatnonzero(~ends)


def _set_before(env, fam: str, task: str | None, arrays: dict, i: int) -> None:
    u = env.unwrapped
    if fam == "antmaze":
        u.set_obs(arrays["observations"][i])
        return
    qpos = np.asarray(arrays["infos/qpos"][i], np.float64)
    qvel = np.asarray(arrays["infos/qvel"][i], np.float64)
    if fam == "adroit":
        state = {"qpos": qpos, "qvel": qvel}
        for key in ADROIT_EXTRA[task]:
            if f"infos/{key}" not in arrays:
                raise OffbenchError(f"the file has no infos/{key}: the {task} state cannot be restored")
            state[key] = np.asarray(arrays[f"infos/{key}"][i], np.float64)
        u.set_env_state(state)
        return
    u.set_state(qpos, qvel)


def _next_state(fam: str, arrays: dict, i: int) -> np.ndarray:
    j = i if fam == "antmaze" else i + 1
    return np.concatenate([arrays["infos/qpos"][j], arrays["infos/qvel"][j]])


def check_file(path, env_id: str, samples: int = 200, seed: int = 0) -> dict:
    """Step the env ``env_id`` from ``samples`` recorded states of the file at ``path``; see the module doc."""
    from offbench import envs

    fam = family(env_id)
    if fam is None:
        raise OffbenchError(f"no physics check for {env_id!r}: it runs on D4RL-AntMaze, -AdroitHand and locomotion")
    arrays = _read(path)
    if "infos/qpos" not in arrays or "infos/qvel" not in arrays:
        raise OffbenchError(f"{path} records no simulator states (infos/qpos, infos/qvel): nothing to check")
    rows = _candidates(fam, arrays)
    if len(rows) == 0:
        raise OffbenchError(f"{path} has no step whose next state it records")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(rows, size=min(samples, len(rows)), replace=False))
    task = env_id.removeprefix("D4RL-AdroitHand").split("-")[0].lower() if fam == "adroit" else None
    env = envs.make_env(env_id)
    env.reset(seed=seed)
    state_err, state_ok, rew_err, rew_ok = [], [], [], []
    for i in rows:
        _set_before(env, fam, task, arrays, int(i))
        _, r, *_ = env.step(np.asarray(arrays["actions"][i], np.float64))
        u = env.unwrapped
        got = np.concatenate([u.data.qpos, u.data.qvel])
        want = _next_state(fam, arrays, int(i))
        state_err.append(float(np.max(np.abs(got - want))))
        state_ok.append(bool(np.all(_within(got, want))))
        if fam != "antmaze":
            want_r = float(np.asarray(arrays["rewards"][i]).reshape(-1)[0])
            rew_err.append(abs(float(r) - want_r))
            rew_ok.append(bool(_within(r, want_r)))
    env.close()
    matched = float(np.mean(state_ok) if not rew_ok else np.mean(np.asarray(state_ok) & np.asarray(rew_ok)))
    out = {
        "env_id": env_id,
        "checked": int(len(rows)),
        "tolerance": {"atol": ATOL, "rtol": RTOL},
        "state_error": _summary(state_err),
        "state_matched": float(np.mean(state_ok)),
        "reward_error": _summary(rew_err) if rew_err else None,
        "reward_matched": float(np.mean(rew_ok)) if rew_ok else None,
        "matched": matched,
        "verdict": "reproduces" if matched >= PASS_FRACTION else "differs",
    }
    return out


def stored_path(path) -> Path:
    """Where ``offbench data check`` stores its result: beside the file (``<file>.check.json``)."""
    return Path(f"{path}.check.json")


def file_stamp(path) -> dict:
    """What ties a stored check to the very file it was made on: size and time stamp."""
    st = Path(path).stat()
    return {"file_size": int(st.st_size), "file_mtime_ns": int(st.st_mtime_ns)}


def load_check(path) -> dict | None:
    """The stored check of ``path`` when it was made on this very file (same size and time stamp), else None."""
    import json

    sp = stored_path(path)
    try:
        stored = json.loads(sp.read_text())
    except (OSError, ValueError):
        return None
    same = all(stored.get(k) == v for k, v in file_stamp(path).items())
    return stored if same else None


def _summary(errors) -> dict:
    e = np.asarray(errors, np.float64)
    return {"median": float(np.median(e)), "p95": float(np.percentile(e, 95)), "max": float(e.max())}


def format_check(c: dict) -> list[str]:
    mujoco = (c.get("versions") or {}).get("mujoco")
    lines = [
        f"physics check in {c['env_id']}{f' (MuJoCo {mujoco})' if mujoco else ''}: {c['checked']} recorded steps replayed; "
        f"{100 * c['matched']:.1f}% matched (|diff| <= {c['tolerance']['atol']:g} + {c['tolerance']['rtol']:g}|x|) "
        f"-> {c['verdict']}",
        "  next-state max |error| per step: median {median:.2e}, p95 {p95:.2e}, max {max:.2e}".format(
            **c["state_error"]
        ),
    ]
    if c.get("reward_error"):
        lines.append(
            "  reward |error| per step: median {median:.2e}, p95 {p95:.2e}, max {max:.2e}".format(**c["reward_error"])
        )
    else:
        lines.append("  reward not compared (AntMaze: relabelled against a goal the file does not record)")
    return lines
