"""The evaluation worker process: a few Gymnasium environments stepped on command from a pipe.

JAX-free on purpose (it imports only NumPy and :mod:`offbench.envs`): worker processes are started with
``spawn`` and must not initialise JAX or a GPU. A worker ignores Ctrl-C (the parent closes it) and exits
when its pipe closes, so a killed parent leaves no worker behind.
"""

from __future__ import annotations

import signal
import sys

import numpy as np

from offbench.evaluation.episodes import episode_success


def serve(conn, factory, adapter) -> None:
    """Commands (tuples) on ``conn``; environments are created on first use of a slot:

    * ``("reset", [(slot, reset_seed), ...])`` -> ``[obs, ...]`` (adapted, float32)
    * ``("step", slots, actions)`` -> ``(obs[k], rewards[k], done[k], success[k])``
    * ``("modules",)`` -> sorted names of the loaded top-level modules (tests check there is no JAX)
    * ``("close",)`` -> closes the environments and exits

    An exception while handling a command is sent back as ``("error", "Type: message")``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from offbench.envs import quiet_mujoco

    quiet_mujoco()  # MuJoCo warnings go to Python's warnings, not MUJOCO_LOG.TXT in the user's folder
    envs: dict = {}
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "close":
                return
            try:
                reply = _handle(msg, envs, factory, adapter)
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        return
    finally:
        for e in envs.values():
            try:
                e.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        conn.close()


def _handle(msg, envs: dict, factory, adapter):
    def env(slot):
        if slot not in envs:
            envs[slot] = factory()
        return envs[slot]

    cmd = msg[0]
    if cmd == "reset":
        return [adapter(env(slot).reset(seed=seed)[0]) for slot, seed in msg[1]]
    if cmd == "step":
        slots, actions = msg[1], msg[2]
        k = len(slots)
        obs, rew = [None] * k, np.zeros(k)
        done, succ = np.zeros(k, bool), np.zeros(k, bool)
        for i, slot in enumerate(slots):
            o, r, term, trunc, info = env(slot).step(actions[i])
            obs[i], rew[i], done[i], succ[i] = adapter(o), float(r), bool(term or trunc), episode_success(info)
        return obs, rew, done, succ
    if cmd == "modules":
        return sorted({m.split(".")[0] for m in sys.modules})
    raise ValueError(f"unknown command {cmd!r}")
