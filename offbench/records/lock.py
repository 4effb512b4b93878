"""The run directory's lock: an exclusive, non-blocking ``flock`` on ``<run dir>/.sweep.lock``.

A plain ``offbench run`` and a sweep job take the same lock, so two processes never write one run directory.
A sweep job's child process inherits its parent's lock; the parent names the directory it holds in
``$OFFBENCH_HELD_LOCK`` so the child does not try to take it a second time.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = ".sweep.lock"
HELD_ENV = "OFFBENCH_HELD_LOCK"


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self, tries: int = 20, wait_s: float = 0.1) -> bool:
        # A few tries: `offbench status` probes locks for a moment; another run holds them for its length.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for i in range(tries):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if i + 1 < tries:
                    time.sleep(wait_s)
        os.close(fd)
        return False

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def held_by_parent(run_dir: str | Path) -> bool:
    """This process is a sweep job's child and its parent holds ``run_dir``'s lock."""
    held = os.environ.get(HELD_ENV)
    return bool(held) and Path(held).resolve() == Path(run_dir).resolve()


def is_locked(run_dir: str | Path) -> bool:
    """Whether some process (a run, a sweep or its job) holds the run directory's lock right now."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
