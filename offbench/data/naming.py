"""What a ``--dataset`` names: its suite when ``--suite`` is not given, and one canonical identity per dataset.

The same data has several names: the D4RL name papers use (``hopper-medium-v2``), its Minari id
(``D4RL/door/human-v2``), the rebuilt id (``rebuilt/hopper-medium-v2``) and a D4RL-format file named after it
(``/data/hopper-medium-v2.hdf5``). :func:`canonical_name` maps each to the suite task's name, which keys the
config layers (``datasets:`` in ``configs/<algo>.yaml``), so a dataset gets the same settings whatever its name.
"""

from __future__ import annotations

from pathlib import Path

from offbench.data.suites import SUITES, Suite, own_suite
from offbench.errors import OffbenchError


def is_dataset_file(dataset) -> bool:
    """Whether ``--dataset`` names a D4RL-format file (by its suffix, or an existing file) rather than a dataset
    name or Minari id: the one test that ``offbench run``, sweeps, ``--from`` and validation share."""
    return str(dataset).endswith((".hdf5", ".h5")) or Path(dataset).is_file()


def dataset_name(dataset: str) -> str:
    """A D4RL-format file -> the task it is named after (its stem; d4rl's cache names such as ``hopper_medium-v2``
    read as ``hopper-medium-v2``, as :func:`offbench.data.sources.resolve` reads them); anything else unchanged."""
    from offbench.data.loaders import d4rl_task_name

    return d4rl_task_name(Path(dataset).stem) if is_dataset_file(dataset) else str(dataset)


def results_name(suite: Suite, dataset: str) -> str:
    """The dataset's folder in the results (``results/<suite>/<this>/<algo>/<variant>``), as
    :func:`offbench.data.sources.resolve` names the data: a file -> the task it is named after, a Minari id -> its
    suite task's name (else the id, "/" as "__"), a D4RL name -> the suite's task (an unknown one is an error)."""
    if is_dataset_file(dataset):
        return dataset_name(dataset)
    if "/" in dataset:
        task = next((t for t in suite.tasks if dataset in (t.minari_id, t.rebuilt_id)), None)
        return task.name if task else dataset.replace("/", "__")
    return suite.task(dataset).name


def _names(task) -> tuple:
    return (task.name, task.minari_id, task.rebuilt_id)


def canonical_name(dataset: str) -> str:
    """The suite task's name for any of the names of its data (D4RL name, Minari id, rebuilt id, a file named
    after it); otherwise the name itself (a file's stem)."""
    name = dataset_name(dataset)
    return next((t.name for s in SUITES.values() for t in s.tasks if name in _names(t)), name)


def suite_of(dataset: str) -> Suite:
    """The suite of a ``--dataset`` given without ``--suite``: the suite naming it, else, for a Minari id, a
    suite of its own (:func:`offbench.data.suites.own_suite`: its env spec, its reference returns)."""
    name = dataset_name(dataset)
    found = next((s for s in SUITES.values() if any(name in _names(t) for t in s.tasks)), None)
    if found is not None:
        return found
    if "/" in dataset and not is_dataset_file(dataset) and not Path(dataset).exists():
        return own_suite(dataset)
    raise OffbenchError(
        f"no suite names dataset {dataset!r}: pass --suite SUITE (see `offbench list suites`), or give a "
        "Minari id to run a dataset in a suite of its own"
    )
