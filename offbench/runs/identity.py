"""One run's identity, derived in one place (issue 26): the resolved config and its hash, the variant, the dataset's
canonical name (the config layers' key) and results folder, the run directory and the checkpoint directory.

``offbench run`` (offbench.training.prepare), sweep planning (offbench.sweeps.sweep), ``--from``
(offbench.training.from_run) and the validation protocol all call :func:`identify`, so a sweep plans exactly the
directory a run writes. Nothing here touches a device or the data: it is computed before anything is obtained.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from offbench import registry
from offbench.config import config_hash, resolve
from offbench.data.naming import canonical_name, results_name
from offbench.data.suites import get_suite
from offbench.records import store
from offbench.runs.spec import RunSpec


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    algo: str
    suite: str
    dataset: str  # the canonical dataset name (offbench.data.naming.canonical_name): the config layers' key
    folder: str  # the dataset's folder in the results (offbench.data.naming.results_name)
    config: dict  # the resolved config (algorithm defaults < configs/<algo>.yaml layers < --set)
    changed: dict  # the keys --set changed from the config without it (they name the variant)
    variant: str
    run_dir: Path
    seeds: tuple
    finetune: bool

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def checkpoint_dir(self) -> Path:
        """Where this run's seeds keep their checkpoint (offbench.records.store.checkpoint_dir)."""
        return store.checkpoint_dir(self.run_dir, list(self.seeds))


def algo_dir(algo: str, finetune: bool) -> str:
    """The algorithm's folder: a fine-tuning run is its own (``iql-online``), never beside offline runs."""
    return algo + ("-online" if finetune else "")


def identify(spec: RunSpec) -> RunIdentity:
    """The identity of the run ``spec`` (offbench.runs.spec.RunSpec) describes: the one place it is derived."""
    algorithm = registry.get(spec.algo)
    s = get_suite(spec.suite)
    key = canonical_name(spec.dataset)
    config = resolve(algorithm.default_config, algorithm.name, s.name, key, spec.overrides, spec.finetune)
    base = resolve(algorithm.default_config, algorithm.name, s.name, key, {}, spec.finetune)
    changed = store.changed_config(config, base)
    sched = spec.schedule
    variant = store.variant_name(changed, sched.steps, sched.online_steps, spec.name, spec.preset, spec.data_size)
    folder = results_name(s, spec.dataset)
    directory = store.run_dir(spec.results, s.name, folder, algo_dir(algorithm.name, spec.finetune), variant)
    return RunIdentity(
        algorithm.name, s.name, key, folder, config, changed, variant, directory, spec.seeds, spec.finetune
    )
