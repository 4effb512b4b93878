"""Run records: one JSON file per seed under ``results/<suite>/<dataset>/<algo>/``.

A record is written atomically. While a run is going its status is ``running`` and it has no
``final_score``; only a run that reached its last step gets ``status: finished`` and a final score.
"""
from __future__ import annotations

import functools
import math
import platform
import time
from importlib import metadata
from pathlib import Path

from offbench.records.checkpoint import read_json, write_json_atomic

SCHEMA = "offbench-run/1"
PACKAGES = ("offbench", "jax", "jaxlib", "flax", "optax", "numpy", "gymnasium", "gymnasium-robotics", "mujoco",
            "minari", "dm-haiku")


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


def run_dir(results: str | Path, suite: str, dataset: str, algo: str) -> Path:
    return Path(results) / suite / dataset / algo


def record_path(directory: Path, seed: int) -> Path:
    return Path(directory) / f"seed_{seed}.json"


def write_record(directory: Path, seed: int, record: dict) -> dict:
    """Write one seed's record atomically; returns it as written."""
    record = dict(record, schema=SCHEMA, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json_atomic(record_path(directory, seed), record)
    return record


def is_finished(record: dict | None) -> bool:
    """The one definition of a finished run's record: it reached its last step, did not diverge, and has a
    finite final score. The report, sweeps and status all use this."""
    if not record or record.get("status") != "finished" or record.get("diverged"):
        return False
    score = record.get("final_score")
    return isinstance(score, (int, float)) and math.isfinite(score)


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
