"""Checkpoints of a whole run state (any pytree of arrays), as a NumPy ``.npz`` of the flattened leaves
plus a JSON manifest. Restoring needs a template pytree of the same structure (built by ``init``), so
the format does not depend on the network library. Writes are atomic (temp file + rename).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import numpy as np

from offbench.errors import OffbenchError


def save(directory: str | Path, tree, info: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(tree)
    arrays = {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    tmp = directory / "state.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, directory / "state.npz")
    manifest = dict(info, n_leaves=len(leaves), treedef=str(jax.tree_util.tree_structure(tree)))
    write_json_atomic(directory / "checkpoint.json", manifest)


def load(directory: str | Path, template, hint: str = "start without --resume"):
    directory = Path(directory)
    info = read_json(directory / "checkpoint.json")
    treedef = jax.tree_util.tree_structure(template)
    tleaves = jax.tree_util.tree_leaves(template)
    with np.load(directory / "state.npz") as z:
        leaves = [z[f"leaf_{i:05d}"] for i in range(len(z.files))]
    if len(leaves) != len(tleaves):
        raise OffbenchError(f"checkpoint {directory} does not match this run's state ({len(leaves)} arrays, "
                            f"expected {len(tleaves)}); {hint}")
    for a, t in zip(leaves, tleaves):
        if a.shape != np.shape(t):
            raise OffbenchError(f"checkpoint {directory} has an array of shape {a.shape} where this run has "
                                f"{np.shape(t)}; {hint}")
    leaves = [np.asarray(a, dtype=t.dtype) if hasattr(t, "dtype") else a for a, t in zip(leaves, tleaves)]
    return jax.tree_util.tree_unflatten(treedef, leaves), info


def exists(directory: str | Path) -> bool:
    d = Path(directory)
    return (d / "checkpoint.json").exists() and (d / "state.npz").exists()


def write_json_atomic(path: str | Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str | Path):
    with open(path) as f:
        return json.load(f)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
