"""Stepping a few Gymnasium environments on command: in a worker process, or in the main process's share.

JAX-free on purpose (it imports only NumPy and :mod:`offbench.envs`): worker processes are started with
``spawn`` and must not initialise JAX or a GPU. A worker ignores Ctrl-C (the parent closes it) and exits
when its pipe closes, so a killed parent leaves no worker behind. :class:`Slots` is the stepping itself,
used by the workers and by the main process for the slots it keeps (:mod:`offbench.evaluation.vector`).
"""

from __future__ import annotations

import signal
import sys

import numpy as np

from offbench.evaluation.episodes import episode_success


class Slots:
    """Environment slots, created on first use. A slot whose episode ends in :meth:`step` starts its next
    episode at once from the reset seed it was given (``-1``: none; the slot goes idle), so a step never
    needs a second round trip for resets."""

    def __init__(self, factory, adapter):
        self.factory, self.adapter = factory, adapter
        self.envs: dict = {}

    def env(self, slot: int):
        if slot not in self.envs:
            self.envs[slot] = self.factory()
        return self.envs[slot]

    def reset(self, slots, seeds) -> np.ndarray:
        """``obs[k]`` (adapted, float32) of slot ``slots[i]`` reset with ``seeds[i]``."""
        return np.stack([self.adapter(self.env(int(s)).reset(seed=int(z))[0]) for s, z in zip(slots, seeds)])

    def step(self, slots, actions, next_seeds):
        """-> ``(obs[k], rewards[k], done[k], success[k])``; ``obs`` of a slot that started its next episode
        is that episode's first observation."""
        k = len(slots)
        obs, rew = [None] * k, np.zeros(k)
        done, succ = np.zeros(k, bool), np.zeros(k, bool)
        for i, slot in enumerate(slots):
            env = self.env(int(slot))
            o, r, term, trunc, info = env.step(actions[i])
            rew[i], done[i], succ[i] = float(r), bool(term or trunc), episode_success(info)
            if done[i] and next_seeds[i] >= 0:
                o, _ = env.reset(seed=int(next_seeds[i]))
            obs[i] = self.adapter(o)
        return np.stack(obs), rew, done, succ

    def close(self):
        for e in self.envs.values():
            try:
                e.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        self.envs = {}


def serve(conn, factory, adapter) -> None:
    """Commands (tuples) on ``conn``, answered with :class:`Slots`' results:

    * ``("reset", slots, seeds)`` -> ``obs[k]``
    * ``("step", slots, actions, next_seeds)`` -> ``(obs[k], rewards[k], done[k], success[k])``
    * ``("modules",)`` -> sorted names of the loaded top-level modules (tests check there is no JAX)
    * ``("close",)`` -> closes the environments and exits

    An exception while handling a command is sent back as ``("error", "Type: message")``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from offbench.envs import quiet_mujoco

    quiet_mujoco()  # MuJoCo warnings go to Python's warnings, not MUJOCO_LOG.TXT in the user's folder
    slots = Slots(factory, adapter)
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg[0] == "close":
                return
            try:
                reply = handle(msg, slots)
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        return
    finally:
        slots.close()
        conn.close()


def handle(msg, slots: Slots):
    """The reply to one command (``reset``, ``step``, ``modules``) of :func:`serve`."""
    cmd = msg[0]
    if cmd == "reset":
        return slots.reset(msg[1], msg[2])
    if cmd == "step":
        return slots.step(msg[1], msg[2], msg[3])
    if cmd == "modules":
        return sorted({m.split(".")[0] for m in sys.modules})
    raise ValueError(f"unknown command {cmd!r}")
