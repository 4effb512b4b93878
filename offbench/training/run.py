"""One run of one (algorithm, dataset): offline, or offline then online fine-tuning."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from offbench import registry
from offbench.errors import OffbenchError
from offbench.records import checkpoint
from offbench.records import store as records
from offbench.training.from_run import check_from_config, from_checkpoint
from offbench.training.identity import claim
from offbench.training.offline import run_offline
from offbench.training.online import run_finetune
from offbench.training.prepare import RunOptions, prepare


def run(opts: RunOptions, say: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate all seeds of one (algorithm, dataset); returns the final records (or the existing
    ones when every seed is already finished)."""
    finetune = bool(opts.online_steps or opts.from_run)
    if finetune and not registry.get(opts.algo).finetune:
        raise OffbenchError(
            f"{opts.algo} does not fine-tune online (an offline-only method); drop --online-steps/--from"
        )
    if opts.from_run:  # checked first (seeds, a finished offline run); its length sets the schedules' horizon
        if opts.online_steps < 1:
            raise OffbenchError("--from needs --online-steps N (N >= 1)")
        ck = from_checkpoint(opts.from_run, opts.seed_list)
        info = checkpoint.read_info(ck)
        opts = dataclasses.replace(opts, steps=int(info["steps"]))
    prep = prepare(opts, say)
    if opts.from_run:
        check_from_config(prep, info, ck.parent)
    with claim(prep, say) as claimed:
        if not claimed.todo:
            return claimed.done
        if claimed.todo != prep.opts.seed_list:  # seeds added to a run directory: only the new ones train
            prep = dataclasses.replace(prep, opts=dataclasses.replace(prep.opts, only_seeds=tuple(claimed.todo)))
        try:
            # the online phase continues from the offline state
            new = run_finetune(prep, say) if finetune else run_offline(prep, say)
        except KeyboardInterrupt as exc:
            raise Interrupted(interrupted_at(prep)) from exc
        return sorted(claimed.done + new, key=lambda r: r["seed"])


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its message says where the run stopped and how to continue it."""


def interrupted_at(prep) -> str:
    """Where an interrupted run stopped: its last checkpoint (the step --resume continues from), or none."""
    ck = records.checkpoint_dir(prep.directory, prep.opts.seed_list)
    try:
        info = checkpoint.read_info(ck) if checkpoint.exists(ck) else None
    except OffbenchError:
        info = None
    where = f"{prep.algorithm.name} on {prep.source.name}, seeds {prep.opts.seed_list}"
    if info is None:
        return f"interrupted: {where} stopped before its first checkpoint; --resume starts it again from step 0"
    at = f"step {info.get('step')}" + (f", env step {info['env_steps']}" if info.get("env_steps") else "")
    return f"interrupted: {where} stopped; its last checkpoint is at {at} (in {ck}); --resume continues from there"
