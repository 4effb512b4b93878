"""One run of one (algorithm, dataset): offline, or offline then online fine-tuning."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from offbench import registry
from offbench.errors import OffbenchError
from offbench.records import checkpoint
from offbench.training.identity import claim
from offbench.training.offline import RunOptions, prepare, run_offline
from offbench.training.online import check_from_config, from_checkpoint, run_finetune


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
    with claim(prep, say) as done:
        if done is not None:
            return done
        if finetune:
            return run_finetune(prep, say)  # the online phase continues from the offline state
        return run_offline(prep, say)
