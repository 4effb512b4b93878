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


def identify(
    algo: str,
    suite: str,
    dataset: str,
    results: str | Path,
    *,
    overrides: dict | None = None,
    steps: int,
    online_steps: int = 0,
    finetune: bool | None = None,
    seeds=(0,),
    name: str | None = None,
    preset: str | None = None,
    data_size: int | None = None,
) -> RunIdentity:
    """The identity of a run of ``algo`` on ``dataset`` of ``suite``. ``finetune`` defaults to ``online_steps > 0``
    (``--from`` fine-tunes too); ``data_size``: transitions of a rebuilt dataset built smaller than its recipe's
    (known once the data is resolved; it names the variant so a quick build never answers for a full one)."""
    algorithm = registry.get(algo)
    s = get_suite(suite)
    finetune = bool(online_steps) if finetune is None else bool(finetune)
    key = canonical_name(dataset)
    config = resolve(algorithm.default_config, algorithm.name, s.name, key, overrides or {}, finetune)
    base = resolve(algorithm.default_config, algorithm.name, s.name, key, {}, finetune)
    changed = store.changed_config(config, base)
    variant = store.variant_name(changed, steps, online_steps, name, preset, data_size)
    folder = results_name(s, dataset)
    directory = store.run_dir(results, s.name, folder, algo_dir(algorithm.name, finetune), variant)
    return RunIdentity(algorithm.name, s.name, key, folder, config, changed, variant, directory, tuple(seeds), finetune)
