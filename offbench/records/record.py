"""A run's record as a typed, versioned value (issue 26): :class:`RunRecord`, one per seed, read and written as
strict JSON (``seed_<s>.json``), and the one definition of a finished run (:attr:`RunRecord.is_finished`).

The JSON is flat, as readers (the report, sweeps, status, validation) have always read it. A fine-tuning record adds
the fields of :class:`OnlineSummary` beside the others (with ``"finetune": true``). ``final_score`` is present only in
a ``finished`` record. Fields this schema does not know (a later version's, a user's) are kept in ``extra`` and
written back unchanged.

Versions: ``schema_version`` 2 (this schema); a record without one (written before it, same fields) is version 1 and
loads as it is. ``schema`` (``offbench-run/1``) names the family readers filter on and does not change.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields

SCHEMA = "offbench-run/1"  # the record family (records.store.read_records keeps only these)
SCHEMA_VERSION = 2  # 1: records before the typed schema (no schema_version; the same fields)
ENDING = ("final_score", "final_score_reason", "last_finite_score", "finished_at")  # how a run ended
WRITTEN = ("schema", "schema_version", "updated_at")  # set on every write (records.store.write_record)


@dataclass
class OnlineSummary:
    """What a fine-tuning record adds: the online phase's bookkeeping and its scores (offbench.training.online)."""

    offline_steps: int = 0
    env_steps: int = 0
    online_updates: int = 0
    updates_per_env_step: float = 0.0
    online_envs: int = 1
    replay_capacity: int = 0
    offline_score: float | None = None
    online_score: float | None = None
    eval_regret: float | None = None
    online_episode_returns: list = field(default_factory=list)
    online_episodes: int = 0
    corl_regret: float | None = None
    corl_regret_reason: str | None = None  # why there is no CORL regret (omitted when there is one)
    online_successes: int | None = None  # only where the environment reports success

    OPTIONAL = ("corl_regret_reason", "online_successes")


@dataclass
class RunRecord:
    status: str = "running"  # running | finished (only a finished record has a final_score)
    algo: str | None = None
    suite: str | None = None
    dataset: str | None = None
    seed: int | None = None
    seeds_in_run: list = field(default_factory=list)
    variant: str | None = None  # None: a record of the layout before variant directories
    config_hash: str | None = None
    run_dir: str | None = None
    data: dict = field(default_factory=dict)  # fingerprint, kind, label, recipe, size, reward transform, ...
    env: dict = field(default_factory=dict)  # the evaluation env actually built
    reference: dict = field(default_factory=dict)  # reference returns and their source
    score_type: str | None = None
    eval_episodes: int | None = None
    eval: dict = field(default_factory=dict)  # backend, episodes, every, workers
    steps: int | None = None
    online_steps: int | None = None
    eval_every: int | None = None
    step: int = 0
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    curve: list = field(default_factory=list)  # evaluation points: step, phase, env_steps, score, return, success
    last_score: float | None = None
    diverged: bool = False
    metrics: dict = field(default_factory=dict)  # the last logged training metrics
    compile_s: float = 0.0
    train_s: float = 0.0
    elapsed_s: float = 0.0
    command: str = ""
    preset: str | None = None
    online: OnlineSummary | None = None  # a fine-tuning run's
    final_score: float | None = None
    final_score_reason: str | None = None
    last_finite_score: float | None = None
    finished_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    updated_at: str | None = None
    extra: dict = field(default_factory=dict)  # fields this schema does not know, kept as they were

    @property
    def is_finished(self) -> bool:
        """The one definition of a finished run: it reached its last step, did not diverge, and has a finite final
        score. The report, sweeps, status and ``offbench run`` all ask this."""
        score = self.final_score
        return (
            self.status == "finished"
            and not self.diverged
            and isinstance(score, (int, float))
            and not isinstance(score, bool)
            and math.isfinite(score)
        )

    def to_json(self) -> dict:
        """The flat JSON object (a fine-tuning run's fields beside the others)."""
        out = {}
        for f in fields(self):
            if f.name in ("online", "extra", "schema_version", "updated_at") or f.name in ENDING:
                continue
            out[f.name] = getattr(self, f.name)
        if self.online is not None:
            out["finetune"] = True
            for f in fields(self.online):
                value = getattr(self.online, f.name)
                if value is not None or f.name not in OnlineSummary.OPTIONAL:
                    out[f.name] = value
        if self.status == "finished":
            out["final_score"] = self.final_score
        for name in ENDING[1:]:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(self.extra)
        out.update(schema=SCHEMA, schema_version=self.schema_version)
        if self.updated_at is not None:
            out["updated_at"] = self.updated_at
        return out

    @classmethod
    def from_json(cls, doc: dict) -> RunRecord:
        """A record as written by any version (a record without ``schema_version`` is version 1)."""
        doc = dict(doc)
        doc.pop("schema", None)
        doc.setdefault("schema_version", 1)
        online = None
        if doc.pop("finetune", False):
            online = OnlineSummary(**{f.name: doc.pop(f.name) for f in fields(OnlineSummary) if f.name in doc})
        known = {f.name for f in fields(cls)} - {"online", "extra"}
        rec = cls(**{k: doc.pop(k) for k in list(doc) if k in known}, online=online)
        rec.extra = doc
        return rec

    def replace(self, **changes) -> RunRecord:
        return dataclasses.replace(self, **changes)


def is_finished(record: dict | RunRecord | None) -> bool:
    """:attr:`RunRecord.is_finished` of a record as read from JSON (None: no record)."""
    if not record:
        return False
    return (record if isinstance(record, RunRecord) else RunRecord.from_json(record)).is_finished
