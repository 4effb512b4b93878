"""One run of one (algorithm, dataset): offline, or offline then online fine-tuning."""
from __future__ import annotations

import dataclasses
from typing import Callable

from offbench.training.offline import RunOptions, offline_steps_of, prepare, run_offline
from offbench.training.online import run_finetune


def run(opts: RunOptions, say: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate all seeds of one (algorithm, dataset); returns the final records."""
    if opts.from_run:  # the offline phase is the earlier run's: its length sets the schedules' horizon
        opts = dataclasses.replace(opts, steps=offline_steps_of(opts.from_run))
    prep = prepare(opts, say)
    if opts.online_steps or opts.from_run:
        return run_finetune(prep, say)  # the online phase continues from the offline state
    return run_offline(prep, say)
