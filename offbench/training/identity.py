"""Run identity: one directory per variant, seeds added and never replaced, one process per directory, and
the one checkpoint compatibility check (a checkpoint continues only the run that made it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from offbench.envs import quiet_mujoco  # noqa: F401 (re-exported for offline.py)
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
            + "; run with the same options, or without --resume (--overwrite) to start over"
        )


@contextlib.contextmanager
def claim(prep, say: Callable[[str], None] = print):
    """Take the run directory for this run's seeds. Yields the seeds' existing records when they are all
    finished and neither --resume nor --overwrite asks for more (the run is then skipped), else None.

    Seeds whose records exist are refused unless --resume continues them or --overwrite replaces them; the
    directory's lock (the sweep's) keeps a second process out while this one writes."""
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
        existing = {s: records.read_record(directory, s) for s in seeds}
        existing = {s: r for s, r in existing.items() if r is not None}
        if existing and not (opts.resume or opts.overwrite):
            if len(existing) == len(seeds) and all(r.get("status") == "finished" for r in existing.values()):
                say(f"seeds {seeds} already finished in {directory}; skipped (--overwrite runs them again)")
                yield [existing[s] for s in seeds]
                return
            shown = ", ".join(f"{s} ({r.get('status')})" for s, r in sorted(existing.items()))
            raise OffbenchError(
                f"seeds {shown} already have records in {directory}; --resume continues them, "
                "--overwrite starts them over, other --seed values add seeds"
            )
        if (
            opts.resume
            and existing
            and all(records.is_finished(r) or r.get("status") == "finished" for r in existing.values())
            and len(existing) == len(seeds)
        ):
            say(f"seeds {seeds} already finished in {directory}; nothing to resume")
            yield [existing[s] for s in seeds]
            return
        yield None
    finally:
        if lock is not None:
            lock.release()
