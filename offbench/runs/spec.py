"""A run's spec as one value (issue 26): what ``offbench run``, the API, sweep planning, ``--from`` and ``validate``
ask for, built once and checked whole before anything is obtained or built. :func:`offbench.runs.identity.identify`
derives everything else from it (resolved config, hash, variant, dataset folder, run and checkpoint directories).

Nothing here touches a device or the data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from offbench.errors import OffbenchError


@dataclass(frozen=True)
class Schedule:
    """How long a run trains and how it is evaluated. ``None``: the suite's (``Suite.eval_schedule``,
    ``Suite.eval_episodes``, offbench/data/suites.py)."""

    steps: int  # offline gradient steps
    online_steps: int = 0  # environment steps of fine-tuning (0: offline only)
    eval_every: int | None = None
    eval_episodes: int | None = None

    def __post_init__(self):
        for name, least in (("steps", 0), ("online_steps", 0), ("eval_every", 1), ("eval_episodes", 1)):
            value = getattr(self, name)
            if value is None and name in ("eval_every", "eval_episodes"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                flag = "--" + name.replace("_", "-")
                raise OffbenchError(f"{flag} must be an integer >= {least} (got {value!r})")


@dataclass(frozen=True)
class RunSpec:
    """One run of ``algo`` on ``dataset`` of ``suite``: its seeds, ``--set`` overrides, schedule, preset, ``--name``
    and results root. ``from_run``: it continues an earlier offline run (``--from``), so it fine-tunes.
    ``data_size``: the transitions of a rebuilt dataset built smaller than its recipe's (known once the data is
    resolved; it names the variant, so a quick build never answers for a full one)."""

    algo: str
    suite: str
    dataset: str
    results: str | Path = "results"
    seeds: tuple = (0,)
    overrides: dict = field(default_factory=dict)
    schedule: Schedule = field(default_factory=lambda: Schedule(steps=1_000_000))
    preset: str | None = None
    name: str | None = None
    from_run: bool = False
    data_size: int | None = None

    def __post_init__(self):
        seeds = tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise OffbenchError(f"seeds must be integers >= 0 (got {list(seeds)})")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "overrides", dict(self.overrides or {}))

    @property
    def finetune(self) -> bool:
        """The run fine-tunes online (``--online-steps`` or ``--from``): its own algorithm folder and config layers."""
        return bool(self.schedule.online_steps or self.from_run)

    @classmethod
    def of(
        cls,
        algo: str,
        suite: str,
        dataset: str,
        results: str | Path = "results",
        *,
        steps: int,
        online_steps: int = 0,
        eval_every: int | None = None,
        eval_episodes: int | None = None,
        overrides: dict | None = None,
        seeds=(0,),
        name: str | None = None,
        preset: str | None = None,
        from_run: bool = False,
        data_size: int | None = None,
    ) -> RunSpec:
        """The spec from its parts, as the CLI, a sweep's plan and ``--from`` name them."""
        schedule = Schedule(int(steps), int(online_steps), eval_every, eval_episodes)
        return cls(
            algo, suite, dataset, results, tuple(seeds), overrides or {}, schedule, preset, name, from_run, data_size
        )

    @classmethod
    def from_options(cls, opts, data_size: int | None = None) -> RunSpec:
        """The spec of ``offbench run``'s options (offbench.training.prepare.RunOptions)."""
        return cls.of(
            opts.algo,
            opts.suite,
            opts.dataset,
            opts.results,
            steps=opts.steps,
            online_steps=opts.online_steps,
            eval_every=opts.eval_every,
            eval_episodes=opts.eval_episodes,
            overrides=opts.overrides,
            seeds=opts.seed_list,
            name=opts.name,
            preset=opts.preset,
            from_run=bool(opts.from_run),
            data_size=data_size,
        )

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)
