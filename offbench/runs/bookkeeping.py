"""A run's host-side bookkeeping as one value (issue 26): step counters, evaluation curves, timers, divergence,
the last logged metrics and the online phase's counters and logs. Training functions
(:mod:`offbench.training.offline`, :mod:`offbench.training.online`) update it as they go; it is checkpointed as one
unit beside the device state (:meth:`Bookkeeping.to_info`, in the checkpoint's ``checkpoint.json``) and read back
whole by :meth:`Bookkeeping.from_info`, so nothing sets a run's counters one by one from elsewhere.

The checkpoint keeps the fields flat, as checkpoints have always kept them (``step``, ``curves``, ``env_steps``,
...): a checkpoint written before this value existed resumes, its missing fields at their defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Bookkeeping:
    seeds: list[int]
    step: int = 0  # gradient steps, both phases
    curves: list[list[dict]] = field(default_factory=list)  # per seed: the evaluation points
    diverged: list[bool] = field(default_factory=list)  # per seed: a loss or a score was not finite
    last_metrics: dict = field(default_factory=dict)  # per metric: one value per seed, of the last logged steps
    compile_s: float = 0.0
    train_s: float = 0.0
    # the online phase (offbench.training.online)
    offline_steps: int = 0  # gradient steps of the offline phase
    env_steps: int = 0
    owed: float = 0.0  # fractional gradient updates owed (online_updates_per_step * envs per env step)
    online_updates: int = 0
    raw_reward_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per seed: online rewards, untransformed
    returns_log: list[list[float]] = field(default_factory=list)  # per seed: returns of online exploration episodes
    success_log: list[list[bool]] = field(default_factory=list)  # per seed: their successes
    reports_success: bool = False  # the environment reports success (CORL's regret needs it)

    FIELDS = (  # what a checkpoint holds (besides seeds, part of the run's identity there)
        "step",
        "curves",
        "diverged",
        "last_metrics",
        "compile_s",
        "train_s",
        "offline_steps",
        "env_steps",
        "owed",
        "online_updates",
        "raw_reward_sum",
        "returns_log",
        "success_log",
        "reports_success",
    )

    @classmethod
    def fresh(cls, seeds, offline_steps: int = 0) -> Bookkeeping:
        """A run at step 0 of ``seeds``."""
        n = len(seeds)
        return cls(
            seeds=list(seeds),
            curves=[[] for _ in range(n)],
            diverged=[False] * n,
            offline_steps=int(offline_steps),
            raw_reward_sum=np.zeros(n),
            returns_log=[[] for _ in range(n)],
            success_log=[[] for _ in range(n)],
        )

    @property
    def phase(self) -> str:
        """``online`` once the online phase has begun (an environment step, or updates past the offline steps)."""
        return "online" if self.env_steps or self.step > self.offline_steps else "offline"

    def to_info(self) -> dict:
        """The bookkeeping as a checkpoint's JSON holds it (with ``phase``)."""
        out = {k: getattr(self, k) for k in self.FIELDS}
        out["raw_reward_sum"] = np.asarray(self.raw_reward_sum, np.float64).tolist()
        out["last_metrics"] = {k: np.asarray(v).tolist() for k, v in self.last_metrics.items()}
        out["phase"] = self.phase
        return out

    @classmethod
    def from_info(cls, info: dict, seeds, offline_steps: int = 0) -> Bookkeeping:
        """The bookkeeping a checkpoint holds (fields it lacks, e.g. an offline run's online counters, at their
        defaults; ``offline_steps``: the run's, where the checkpoint has none)."""
        book = cls.fresh(seeds, info.get("offline_steps", offline_steps))
        present = {k: info[k] for k in cls.FIELDS if k in info and k != "offline_steps"}
        if "raw_reward_sum" in present:
            present["raw_reward_sum"] = np.asarray(present["raw_reward_sum"], np.float64)
        if "last_metrics" in present:
            present["last_metrics"] = {k: np.asarray(v) for k, v in present["last_metrics"].items()}
        for key in ("step", "env_steps", "online_updates"):
            if key in present:
                present[key] = int(present[key])
        for key in ("compile_s", "train_s", "owed"):
            if key in present:
                present[key] = float(present[key])
        return dataclasses.replace(book, **present)
