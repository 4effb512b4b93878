"""Run records: one JSON file per seed under ``results/<suite>/<dataset>/<algo>/<variant>/``.

A run directory is keyed by algorithm, dataset and a readable *variant* name: ``default`` for the
algorithm's config at the default run length, else the config values ``--set`` changed and the run length
(``expectile=0.8__steps=25k``), or the user's ``--name``. Variants never share a directory, and seeds are
added to a directory, never replaced (see :mod:`offbench.training.offline`).

A record is written atomically as strict JSON. While a run is going its status is ``running`` and it has no
``final_score``; only a run that reached its last step gets ``status: finished`` and a final score.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import re
import time
from importlib import metadata
from pathlib import Path

from offbench.errors import OffbenchError
from offbench.records.jsonio import read_json, write_json_atomic
from offbench.records.record import SCHEMA, SCHEMA_VERSION, RunRecord

PACKAGES = (
    "offbench",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "numpy",
    "gymnasium",
    "gymnasium-robotics",
    "mujoco",
    "minari",
    "dm-haiku",
)


def versions() -> dict:
    """Package versions and device (read once per process; every record carries a copy)."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    try:
        import jax

        out["device"] = str(jax.devices()[0].device_kind)
    except Exception:
        pass
    return out


DEFAULT_STEPS = 1_000_000  # `offbench run --steps` default: the papers' run length
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,99}$")
SEPARATOR = "__"  # between a variant's parts: no "," (rliable joins pairs of rows with it) and no "+"


def _count(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _value(v) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(_value(x) for x in v)
    return str(v)


def variant_name(
    changed: dict,
    steps: int,
    online_steps: int = 0,
    name: str | None = None,
    preset: str | None = None,
    data_size: int | None = None,
) -> str:
    """The run directory's variant: ``name`` if given, else ``default`` or the changed config values, the run
    length, the preset and the size of a rebuilt dataset built smaller than its recipe's, e.g.
    ``expectile=0.8__steps=25k`` or ``steps=5k__data=20k__preset=quick`` (long names end in a hash of the whole):
    a quick look never shares a directory with a full run. (Evaluation settings are not in the name; a record of
    other settings is refused rather than taken as this run's: ``offbench.training.identity``.)"""
    if name is not None:
        if not _NAME_OK.match(name) or name in (".", ".."):
            raise OffbenchError(f"--name {name!r}: use letters, digits and . _ = - (at most 100 characters)")
        return name
    parts = [f"{k}={_value(v)}" for k, v in sorted(changed.items())]
    if steps != DEFAULT_STEPS:
        parts.append(f"steps={_count(int(steps))}")
    if online_steps:
        parts.append(f"online={_count(int(online_steps))}")
    if data_size is not None:
        parts.append(f"data={_count(int(data_size))}")
    if preset is not None:
        parts.append(f"preset={preset}")
    text = SEPARATOR.join(re.sub(r"[^A-Za-z0-9.=-]", "_", part) for part in parts) or "default"
    if len(text) > 80:
        text = text[:68] + "~" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return text


def changed_config(config: dict, base: dict) -> dict:
    """The keys whose value in ``config`` differs from ``base`` (the config without ``--set``)."""
    return {k: v for k, v in config.items() if base.get(k) != v}


RUN_DIRS = "*/*/*/*"  # a results folder's run directories: <suite>/<dataset>/<algo>/<variant> (run_dir)
CHECKPOINTS = "checkpoint-seeds*"  # a run directory's checkpoints, one per set of seeds (checkpoint_dir)


def run_dir(results: str | Path, suite: str, dataset: str, algo: str, variant: str = "default") -> Path:
    return Path(results) / suite / dataset / algo / variant


def run_dir_parts(results: str | Path, directory: str | Path, previous: bool = False) -> dict:
    """The parts of :func:`run_dir` (suite, dataset, algo, variant) of a run directory under ``results``, ``"?"``
    where the path has none; a directory of the layout before variants (``<suite>/<dataset>/<algo>``) is given
    ``previous=True`` and has variant ``"-"``."""
    d, root = Path(directory).resolve(), Path(results).resolve()
    parts = list(d.relative_to(root).parts if d.is_relative_to(root) else d.parts)
    if previous:
        parts.append("-")
    parts = ["?"] * max(0, 4 - len(parts)) + parts[-4:]
    return dict(zip(("suite", "dataset", "algo", "variant"), parts))


def checkpoint_dir(directory: str | Path, seeds: list[int]) -> Path:
    """Where a run of ``seeds`` keeps its checkpoint: one per set of seeds, so runs of seeds 0-4 and 5-9 in
    one run directory never touch each other's."""
    seeds = list(seeds)
    if seeds != list(range(seeds[0], seeds[-1] + 1)):  # seeds added around finished ones: e.g. seeds0_2
        return Path(directory) / f"checkpoint-seeds{'_'.join(map(str, seeds))}"
    return Path(directory) / f"checkpoint-seeds{seeds[0]}-{seeds[-1]}"


def checkpoint_differences(
    info: dict, mine: dict, config: dict | None = None, where: str = "the checkpoint"
) -> list[str]:
    """The one checkpoint compatibility check: what differs between a checkpoint's bookkeeping ``info`` and the
    run that would continue it (``mine``: algo, seeds, fingerprint, steps, online_steps, evaluation schedule,
    config_hash; a sweep job passes the keys it knows). Config keys are named when ``config`` is given."""
    diffs = []
    for key, value in mine.items():
        if key != "config_hash" and info.get(key) != value:
            diffs.append(f"{key.replace('_', ' ')} {info.get(key)!r} in {where}, {value!r} now")
    if "config_hash" in mine and info.get("config_hash") != mine["config_hash"]:
        old = info.get("config") or {}
        keys = sorted(k for k in set(old) | set(config or {}) if old.get(k) != (config or {}).get(k)) if config else []
        diffs.append(
            "config ("
            + ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in keys[:5])
            + (", ..." if len(keys) > 5 else "")
            + ")"
            if keys
            else "config"
        )
    return diffs


def record_path(directory: Path, seed: int) -> Path:
    return Path(directory) / f"seed_{seed}.json"


def write_record(directory: Path, seed: int, record: RunRecord | dict) -> dict:
    """Write one seed's record (:class:`offbench.records.record.RunRecord`) atomically as strict JSON; returns it as
    written (as a reader sees it)."""
    from offbench.records.jsonio import strict

    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(record, RunRecord):
        record = strict(record.replace(schema_version=SCHEMA_VERSION, updated_at=now).to_json())
    else:  # a record as a dict (tests, tools): written with the same schema fields
        record = strict(dict(record, schema=SCHEMA, schema_version=SCHEMA_VERSION, updated_at=now))
    write_json_atomic(record_path(directory, seed), record)
    return record


def read_record(directory: Path, seed: int) -> dict | None:
    """One seed's record, or None where there is none (or it cannot be read)."""
    try:
        return read_json(record_path(directory, seed))
    except (OSError, ValueError):
        return None


def read_records(results: str | Path) -> list[dict]:
    """Every run record under a results folder (with its path)."""
    out = []
    for path in sorted(Path(results).glob("**/seed_*.json")):
        try:
            rec = read_json(path)
        except Exception as exc:
            out.append({"path": str(path), "status": "unreadable", "error": str(exc)})
            continue
        if rec.get("schema") == SCHEMA:
            rec["path"] = str(path)
            out.append(rec)
    return out
