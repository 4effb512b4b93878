"""Run identity: one directory per variant, seeds added and never replaced, one process per directory, and
the one checkpoint compatibility check (a checkpoint continues only the run that made it)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable

from offbench.config import config_hash
from offbench.errors import OffbenchError
from offbench.records import store as records
from offbench.records.jsonio import unwritable
from offbench.records.lock import RunLock, held_by_parent


def check_compatible(info: dict, mine: dict, config: dict, where) -> None:
    """A checkpoint continues only the run that made it: one line naming what differs
    (``offbench.records.store.checkpoint_differences``, the one compatibility check, which sweeps use too)."""
    diffs = records.checkpoint_differences(info, mine, config)
    if diffs:
        raise OffbenchError(
            f"the checkpoint in {where} was made with a different "
            + "; ".join(diffs)
            + "; run with the same options, or with --overwrite to start over"
        )


def run_identity(prep) -> dict:
    """Everything that changes what a run's numbers mean: a record or checkpoint stands for this run only if it
    shares all of it (algorithm, data fingerprint, run length, evaluation episodes and schedule, config, preset)."""
    o = prep.opts
    return {
        "algo": prep.algorithm.name,
        "fingerprint": prep.fingerprint,
        "steps": o.steps,
        "online_steps": o.online_steps,
        "eval_every": o.eval_every,
        "eval_episodes": prep.eval_episodes,
        "config_hash": config_hash(prep.config),
        "preset": o.preset,
    }


def record_identity(rec: dict) -> dict:
    """:func:`run_identity` as a record stores it (and its config, to name the keys that differ)."""
    return {
        "algo": rec.get("algo"),
        "fingerprint": (rec.get("data") or {}).get("fingerprint"),
        "steps": rec.get("steps"),
        "online_steps": rec.get("online_steps"),
        "eval_every": rec.get("eval_every"),
        "eval_episodes": rec.get("eval_episodes"),
        "config_hash": rec.get("config_hash"),
        "preset": rec.get("preset"),
        "config": rec.get("config"),
    }


@dataclasses.dataclass
class Claim:
    done: list  # the records of this run's seeds that already finished (skipped, never rewritten)
    todo: list  # the seeds to train now (all of them with --overwrite)


@contextlib.contextmanager
def claim(prep, say: Callable[[str], None] = print):
    """Take the run directory for this run's seeds; yields a :class:`Claim`. Seeds are added, never replaced:

    * finished seeds of this same run (:func:`run_identity`) are skipped and their records never rewritten;
    * unfinished ones need --resume (continued from their checkpoint) or --overwrite (started over);
    * a record of another run (other data, length, evaluation, config or preset) is refused, never taken as
      this run's: --name runs this one beside it, --overwrite replaces it;
    * the directory's lock (the sweep's) keeps a second process out while this one writes."""
    opts, directory = prep.opts, prep.directory
    seeds = opts.seed_list
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = None if held_by_parent(directory) else RunLock(directory)
        if lock is not None and not lock.acquire(tries=1):
            raise OffbenchError(
                f"another offbench process is writing {directory} (it holds {lock.path.name}); "
                "wait for it, or give this run another --name"
            )
    except OSError as exc:
        raise unwritable(directory, exc) from exc
    try:
        if not os.access(directory, os.W_OK):
            raise unwritable(directory, PermissionError(13, "Permission denied"))
        yield Claim([], list(seeds)) if opts.overwrite else _plan(prep, seeds, say)
    finally:
        if lock is not None:
            lock.release()


def _plan(prep, seeds: list[int], say) -> Claim:
    opts, directory = prep.opts, prep.directory
    existing = {}
    for s in seeds:
        rec = records.read_record(directory, s)
        if rec is None and records.record_path(directory, s).exists() and not opts.resume:
            raise OffbenchError(
                f"{records.record_path(directory, s)} is damaged (not a readable record); --resume continues seed "
                f"{s} from its checkpoint, --overwrite starts it over"
            )
        if rec is not None:
            existing[s] = rec
    mine = run_identity(prep)
    checkpointed = opts.resume and any(directory.glob(records.CHECKPOINTS))  # its own check names what differs
    for s, rec in sorted(existing.items()):
        if checkpointed and rec.get("status") != "finished":
            continue
        diffs = records.checkpoint_differences(record_identity(rec), mine, prep.config, "the record")
        if diffs:
            raise OffbenchError(
                f"{records.record_path(directory, s)} is a record of another run ({'; '.join(diffs)}); "
                "--name NAME runs this one beside it, --overwrite replaces it"
            )
    finished = [s for s in seeds if s in existing and existing[s].get("status") == "finished"]
    unfinished = [s for s in seeds if s in existing and s not in finished]
    new = [s for s in seeds if s not in existing and not records.record_path(directory, s).exists()]
    damaged = [s for s in seeds if s not in existing and s not in new]  # unreadable records, with --resume
    if unfinished and not opts.resume:
        shown = ", ".join(f"{s} ({existing[s].get('status')})" for s in unfinished)
        raise OffbenchError(
            f"seeds {shown} already have records in {directory}; --resume continues them, "
            "--overwrite starts them over, other --seed values add seeds"
        )
    todo = sorted(unfinished + damaged + new)
    if (unfinished or damaged) and new:
        old = sorted(unfinished + damaged)
        raise OffbenchError(
            f"seeds {old} in {directory} are an unfinished run: continue it first (--seed {old[0]} --seeds "
            f"{len(old)} --resume), then add seeds {new}"
        )
    if finished and todo and opts.from_run:
        raise OffbenchError(
            f"seeds {finished} of this fine-tuning already finished in {directory}; --from fine-tunes all seeds "
            f"of the offline run together: --overwrite runs them all again"
        )
    if finished:
        say(
            f"seeds {finished} already finished in {directory}; skipped"
            + (f"; training seeds {todo}" if todo else " (--overwrite runs them again)")
        )
    elif opts.resume and not todo:
        say(f"nothing to resume in {directory}")
    return Claim([existing[s] for s in finished], todo)
