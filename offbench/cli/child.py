"""Runs ``offbench ...`` for one sweep job so that it dies with the process that started it.

``python -m offbench.cli.child PARENT_PID run --algo ...`` asks the kernel (Linux ``PR_SET_PDEATHSIG``) to
send SIGTERM when the launching thread goes away, e.g. a sweep killed with ``kill -9``: a later sweep then
resumes the job from its checkpoint instead of finding it still owned by an orphan. Elsewhere it simply
runs the command.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: the job just outlives a killed sweep
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(143)


def main(argv: list[str]) -> None:
    parent, args = int(argv[0]), argv[1:]
    _die_with_parent(parent)
    from offbench.cli import main as cli_main

    sys.argv = ["offbench", *args]  # the records' "command" shows the real command
    cli_main(args=args, prog_name="offbench")


if __name__ == "__main__":
    main(sys.argv[1:])
