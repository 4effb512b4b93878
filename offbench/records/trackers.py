"""Experiment trackers for ``offbench run --log tensorboard|wandb``: the rows of the metrics log
(:mod:`offbench.records.metrics_log`) and the evaluation scores, written with each tracker's own library. Both
are optional extras (``pip install "offbench[tensorboard]"`` / ``"offbench[wandb]"``) and off by default; the
CSV metrics log is always written.

- TensorBoard (tensorboardX's ``SummaryWriter``, the writer d3rlpy uses): one event folder per seed,
  ``<run dir>/tensorboard/seed_<s>``; a resumed run purges the events after its checkpoint's step
  (``purge_step``), so its curves equal an uninterrupted run's.
- Weights & Biases (``wandb.init``): one W&B run per seed, grouped by the run directory, with the run's
  config; its id is derived from the run directory and seed, so ``--resume`` continues the same W&B run
  (``resume="allow"``). ``WANDB_MODE=offline`` logs without a network; ``WANDB_PROJECT`` picks the project
  (default ``offbench``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from offbench.errors import OffbenchError

KINDS = {"tensorboard": "tensorboardX", "wandb": "wandb"}  # --log value -> the module it needs
EVAL_KEYS = {"score": "score", "return_mean": "return", "success_rate": "success_rate"}


def check(kinds) -> tuple[str, ...]:
    """The ``--log`` values, checked (known, and their library installed) before anything trains."""
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in kinds if k and k.strip()))
    for k in kinds:
        if k not in KINDS:
            raise OffbenchError(
                f"--log {k}: unknown tracker; choose from {', '.join(KINDS)} (the CSV log is always on)"
            )
        try:
            __import__(KINDS[k])
        except ImportError as exc:
            raise OffbenchError(
                f'--log {k} needs {KINDS[k]} ({exc}); install it with: pip install "offbench[{k}]"'
            ) from exc
    return kinds


class _TensorBoard:
    def __init__(self, directory: Path, seeds, base: int, info: dict):
        from tensorboardX import SummaryWriter

        self.writers = {
            s: SummaryWriter(logdir=str(directory / "tensorboard" / f"seed_{s}"), purge_step=base or None)
            for s in seeds
        }
        for s, w in self.writers.items():
            if not base:
                w.add_text(
                    "run", f"{info.get('algo')} on {info.get('dataset')}, variant {info.get('variant')}, seed {s}"
                )

    def log(self, seed: int, step: int, values: dict, prefix: str) -> None:
        for k, v in values.items():
            self.writers[seed].add_scalar(f"{prefix}/{k}", float(v), step)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


class _WandB:
    def __init__(self, directory: Path, seeds, base: int, info: dict):
        import wandb

        self.runs = {}
        group = "/".join(str(info.get(k)) for k in ("suite", "dataset", "algo", "variant"))
        for s in seeds:
            rid = hashlib.sha256(f"{directory.resolve()}:{s}".encode()).hexdigest()[:16]
            self.runs[s] = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "offbench"),
                id=rid,
                resume="allow",
                group=group,
                name=f"{group}/seed_{s}",
                config={**(info.get("config") or {}), **{k: info.get(k) for k in ("suite", "dataset", "algo")}},
                dir=str(directory),
                reinit="create_new",
            )

    def log(self, seed: int, step: int, values: dict, prefix: str) -> None:
        self.runs[seed].log({f"{prefix}/{k}": float(v) for k, v in values.items()}, step=step)

    def close(self) -> None:
        for r in self.runs.values():
            r.finish()


class Trackers:
    """The trackers of one run (opened lazily, at the run's first log row; ``base``: the step it starts from)."""

    def __init__(self, kinds, directory, seeds, info: dict):
        self.kinds, self.directory, self.seeds, self.info = tuple(kinds), Path(directory), list(seeds), info
        self.open_ = []

    def open(self, base: int) -> None:
        self.close()
        makers = {"tensorboard": _TensorBoard, "wandb": _WandB}
        self.open_ = [makers[k](self.directory, self.seeds, base, self.info) for k in self.kinds]

    def metrics(self, seed: int, step: int, values: dict) -> None:
        for t in self.open_:
            t.log(seed, step, values, "train")

    def evaluation(self, seed: int, step: int, point: dict) -> None:
        values = {name: point[k] for k, name in EVAL_KEYS.items() if point.get(k) is not None}
        for t in self.open_:
            t.log(seed, step, values, "eval")

    def close(self) -> None:
        for t in self.open_:
            t.close()
        self.open_ = []


def make(kinds, directory, seeds, info: dict) -> Trackers | None:
    kinds = check(kinds)
    return Trackers(kinds, directory, seeds, info) if kinds else None
