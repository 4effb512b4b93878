"""What a run writes: one :class:`offbench.records.record.RunRecord` per seed, made from the run's prepared inputs
and its :class:`offbench.runs.bookkeeping.Bookkeeping` (``running`` at every checkpoint, ``finished`` at the end),
and the online phase's regrets."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from offbench.config import config_hash
from offbench.records import store
from offbench.records.record import OnlineSummary, RunRecord
from offbench.runs.bookkeeping import Bookkeeping


def corl_regret(successes: list[bool]) -> float | None:
    """CORL's regret: the mean over the online *exploration* episodes of (1 - success), CORL
    ``algorithms/finetune/iql.py`` (``train_successes``; ``regret = mean(1 - successes)``)."""
    if not successes:
        return None
    return float(np.mean([1.0 - float(s) for s in successes]))


def eval_regret(online_scores: list[float]) -> float | None:
    """Not CORL's quantity: the mean over the online *evaluations* of (1 - normalised score / 100)."""
    scores = [s for s in online_scores if s is not None and math.isfinite(s)]
    if not scores:
        return None
    return float(np.mean([1.0 - s / 100.0 for s in scores]))


def online_summary(run, book: Bookkeeping, i: int) -> OnlineSummary:
    """Seed ``i``'s online phase: its scores before and after, CORL's regret over its exploration episodes."""
    cfg = run.online
    off = [c["score"] for c in book.curves[i] if c["phase"] == "offline"]
    on = [c["score"] for c in book.curves[i] if c["phase"] == "online"]
    summary = OnlineSummary(
        offline_steps=book.offline_steps,
        env_steps=book.env_steps,
        online_updates=book.online_updates,
        updates_per_env_step=cfg.ratio,
        online_envs=cfg.n_envs,
        replay_capacity=cfg.capacity,
        offline_score=off[-1] if off else None,
        online_score=on[-1] if on else None,
        eval_regret=eval_regret(on),
        online_episode_returns=book.returns_log[i][-100:],
        online_episodes=len(book.success_log[i]),
    )
    if book.reports_success:
        summary.corl_regret = corl_regret(book.success_log[i])
        summary.online_successes = int(sum(book.success_log[i]))
        if summary.corl_regret is None:
            summary.corl_regret_reason = "no online episode ended"
    else:
        summary.corl_regret_reason = "the environment reports no success (CORL computes regret for AntMaze and Adroit)"
    return summary


def make_record(run, book: Bookkeeping, i: int, status: str, **ending) -> RunRecord:
    """Seed ``i``'s record; ``ending``: how a finished run ended (final_score, its reason, finished_at)."""
    p = run.prep
    curve = book.curves[i]
    meta = p.source.dataset.metadata or {}
    return RunRecord(
        status=status,
        algo=p.algorithm.name,
        suite=p.opts.suite,
        dataset=p.source.name,
        seed=book.seeds[i],
        seeds_in_run=book.seeds,
        variant=p.variant,
        config_hash=config_hash(p.config),
        run_dir=str(p.directory),
        data={
            "kind": p.source.kind,
            "rebuilt": p.source.rebuilt,
            "label": p.source.label,
            "fingerprint": p.fingerprint,
            "recipe_version": meta.get("recipe_version"),
            "recipe": meta.get("recipe"),
            "size": len(p.source.dataset),
            "sampled_size": p.size,
            "metadata": p.source.dataset.metadata,
            "reward_scale": p.reward_scale,
            "reward_shift": p.reward_shift,
            "obs_normalized": p.obs_mean is not None,
            # which parts of the observation the policy saw: keys, or [key, columns] (Task.rebuilt_obs_keys)
            "obs_keys": [k if isinstance(k, str) else [k[0], list(k[1])] for k in p.source.obs_keys or ()] or None,
            "obs_dim": int(p.source.dataset.observations.shape[1]),
        },
        env={
            "env_id": p.source.env_id,
            "family": p.source.env_family,
            "env_kwargs": p.source.built_env_kwargs,  # the env actually built (a stored spec's kwargs)
            "max_episode_steps": p.source.max_episode_steps,
            "from_dataset_spec": bool(p.source.eval_env_spec),
            "note": p.source.env_note,
        },
        reference={"min": p.source.ref_min, "max": p.source.ref_max, "source": p.source.ref_source},
        score_type=p.score_type,
        eval_episodes=p.eval_episodes,
        eval={
            "backend": run.evaluator.backend,
            "episodes": p.eval_episodes,
            "every": p.opts.eval_every,
            "workers": int(run.evaluator.workers),
        },
        steps=p.opts.steps,
        online_steps=p.opts.online_steps,
        eval_every=p.opts.eval_every,
        step=book.step,
        config=p.config,
        versions=store.versions(),
        curve=curve,
        last_score=curve[-1]["score"] if curve else None,
        diverged=book.diverged[i],
        metrics={k: float(v[i]) for k, v in book.last_metrics.items()},
        compile_s=book.compile_s,
        train_s=book.train_s,
        elapsed_s=time.time() - run.started,
        command=" ".join(sys.argv),
        preset=p.opts.preset,
        online=online_summary(run, book, i) if run.online is not None else None,
        **ending,
    )


def write_records(run, book: Bookkeeping, status: str = "running") -> None:
    for i, s in enumerate(book.seeds):
        store.write_record(run.prep.directory, s, make_record(run, book, i, status))


def finish(run, book: Bookkeeping) -> list[dict]:
    """Every seed's ``finished`` record, written; returns them as written. A diverged seed has no final score."""
    out = []
    for i, s in enumerate(book.seeds):
        curve = book.curves[i]
        final = curve[-1]["score"] if curve else None
        ending = {"final_score": final}
        if book.diverged[i]:
            ending = {
                "final_score": None,
                "final_score_reason": "diverged: a loss or the evaluation score was not finite",
                "last_finite_score": final,
            }
        rec = make_record(run, book, i, "finished", **ending, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        out.append(store.write_record(run.prep.directory, s, rec))
    return out
