"""Named moments where the fault-injection tests kill a run (``kill -9`` of itself), e.g. between writing a
checkpoint and committing it. ``OFFBENCH_FAULT=NAME:N`` kills the process the N-th time it reaches NAME;
without the variable :func:`point` does nothing. Points: ``compile``, ``train``, ``evaluate``,
``checkpoint-written`` (the new checkpoint is on disk, not yet the latest), ``record``.
"""

from __future__ import annotations

import os
import signal

_COUNTS: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("OFFBENCH_FAULT")
    if not spec:
        return
    want, _, nth = spec.partition(":")
    if want != name:
        return
    _COUNTS[name] = _COUNTS.get(name, 0) + 1
    if _COUNTS[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
