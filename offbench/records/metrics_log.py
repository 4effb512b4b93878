"""Training logs: the mean metrics that reach the host every ``log_every`` steps, written for every run as a tidy
CSV beside each seed's record, ``seed_<s>.metrics.csv`` (columns ``step``, ``seed``, then one per metric, sorted),
and passed on, with the evaluation scores, to the trackers a run asks for (``--log``,
:mod:`offbench.records.trackers`).

Offline, a row is the mean over one compiled training chunk (``log_every`` steps, or the steps left before an
evaluation): exactly what the training loop brings to the host. Online fine-tuning brings metrics to the host
every environment step; there a row is their update-weighted mean over ``log_every`` updates. Whatever is pending
is written when the run checkpoints, so a row never spans a checkpoint.

A kill loses nothing that a checkpoint kept: each row is one append of whole lines; the files are fsynced before
every checkpoint commits; a torn last line is ignored when read; and a run that starts (fresh, or resumed from a
checkpoint) first drops the rows after its starting step, so a resumed run's log equals an uninterrupted run's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

KEYS = ("step", "seed")  # the tidy columns before the metrics


def metrics_path(directory: str | Path, seed: int) -> Path:
    return Path(directory) / f"seed_{seed}.metrics.csv"


def read_rows(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows as strings) of one metrics log; a last line without its newline (a write cut by a kill) and
    lines of the wrong width are left out. A missing file is ([], [])."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return [], []
    lines = text.split("\n")
    lines = lines[:-1]  # after the last "\n": "" for a whole file, a torn line otherwise
    if not lines:
        return [], []
    header = lines[0].split(",")
    rows = [ln.split(",") for ln in lines[1:]]
    return header, [r for r in rows if len(r) == len(header)]


def _fmt(v: float) -> str:
    return repr(float(v))  # the shortest text that reads back as the same float ("nan", "inf" for the others)


class MetricsLog:
    """The metrics logs of the seeds of one run (one file per seed), and its trackers.

    ``note(step, metrics, n)`` after each ``n`` steps whose mean metrics (one value per seed) arrived at
    ``step``; ``resume(step)`` when the run continues from a checkpoint of ``step``; ``flush(curves)`` before
    each checkpoint; ``close()`` at the end."""

    def __init__(self, directory, seeds, log_every: int, trackers=None):
        self.directory, self.seeds = Path(directory), [int(s) for s in seeds]
        self.log_every = max(1, int(log_every))
        self.trackers = trackers  # an offbench.records.trackers.Trackers, or None
        self.base = 0  # rows after this step are dropped before this run writes (a fresh run: all of them)
        self.opened = False
        self.header: list[str] | None = None
        self.sums: dict[str, np.ndarray] = {}
        self.count = 0
        self.start = 0
        self.last = 0
        self.sent = {s: 0 for s in self.seeds}  # evaluation steps already passed to the trackers

    def resume(self, step: int) -> None:
        self.base, self.opened = int(step), False
        self.sent = {s: int(step) for s in self.seeds}

    def note(self, step: int, metrics: dict, n: int) -> None:
        if n < 1 or not metrics:
            return
        if self.count == 0:
            self.start, self.sums = int(step) - int(n), {}
        for k, v in metrics.items():
            v = np.asarray(v, np.float64).reshape(len(self.seeds))
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += int(n)
        self.last = int(step)
        if self.last - self.start >= self.log_every:
            self._write()

    def flush(self, curves=None) -> None:
        """Write the pending window, make the files durable, and pass new evaluation points to the trackers."""
        if self.count:
            self._write()
        if self.opened:
            for s in self.seeds:
                path = metrics_path(self.directory, s)
                if path.exists():
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        if curves is not None and self.trackers is not None:
            for s, curve in zip(self.seeds, curves):
                for point in curve:
                    if int(point["step"]) > self.sent[s]:
                        self.trackers.evaluation(s, int(point["step"]), point)
                        self.sent[s] = int(point["step"])

    def close(self) -> None:
        if self.trackers is not None:
            self.trackers.close()

    # -- writing ---------------------------------------------------------------------------------
    def _write(self) -> None:
        means = {k: v / self.count for k, v in sorted(self.sums.items())}
        step, self.count, self.sums = self.last, 0, {}
        names = list(means)
        if not self.opened:
            self._open(names)
        elif names != self.header[len(KEYS) :]:
            self._rewrite(lambda r: True, names)
        for i, s in enumerate(self.seeds):
            values = [means[k][i] if k in means else float("nan") for k in self.header[len(KEYS) :]]
            line = ",".join([str(step), str(s)] + [_fmt(v) for v in values]) + "\n"
            with open(metrics_path(self.directory, s), "a") as f:
                f.write(line)  # one write of one whole line
            if self.trackers is not None:
                self.trackers.metrics(s, step, dict(zip(self.header[len(KEYS) :], values)))

    def _open(self, names: list[str]) -> None:
        """Before the first row: keep only the rows up to the starting step (none for a fresh run)."""
        self._rewrite(lambda r: int(r[0]) <= self.base, names)
        self.opened = True
        if self.trackers is not None:
            self.trackers.open(self.base)

    def _rewrite(self, keep, names: list[str]) -> None:
        """Each seed's file rewritten atomically (temp file, rename) with the kept rows and the columns
        ``step, seed, *names`` (a metric a row lacks is empty)."""
        self.header = list(KEYS) + sorted(set(names) | set((self.header or [])[len(KEYS) :]))
        for s in self.seeds:
            path = metrics_path(self.directory, s)
            old_header, rows = read_rows(path)
            lines = [",".join(self.header)]
            for r in rows:
                if keep(r):
                    old = dict(zip(old_header, r))
                    lines.append(",".join(old.get(k, "") for k in self.header))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
