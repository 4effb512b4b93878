"""Checkpoints of a whole run state (any pytree of arrays) with the run's bookkeeping, as one atomic unit.

A checkpoint folder holds units ``unit-<n>/`` (``state.npz``: the flattened leaves; ``checkpoint.json``: the
bookkeeping plus the tree structure, and every leaf's shape and dtype) and ``LATEST``, naming the unit in force.
A save writes a new unit under a temporary name, fsyncs its files and the folder, renames it into place, and
only then switches ``LATEST`` (an atomic rename) and removes older units: a process killed at any moment
leaves the previous checkpoint or the new one, never a mix of the two. Restoring needs a template pytree of
the same structure (built by ``init``) and checks structure, shapes and dtypes against the stored ones; any
mismatch or a damaged file is one :class:`OffbenchError` naming the checkpoint.

(``orbax-checkpoint`` does the same with a tensorstore backend; a few NumPy files keep the format readable
without it, restore synchronously and leave the write moment a test can interrupt: ``faults.point``.)
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import jax
import numpy as np

from offbench.errors import OffbenchError
from offbench.records import faults
from offbench.records.jsonio import read_json, unwritable, write_json_atomic

LATEST = "LATEST"
HINT = "--overwrite deletes it and starts the run over"  # what a damaged checkpoint's error tells the user
_BAD = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _paths(tree) -> list[str]:
    """The tree's structure as its leaves' key paths (stable across processes, unlike ``str(treedef)``,
    which shows the addresses of static functions)."""
    return [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _latest(root: Path) -> str | None:
    try:
        return str(read_json(root / LATEST)["unit"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(root: str | Path, tree, info: dict) -> None:
    root = Path(root)
    leaves = jax.tree_util.tree_leaves(tree)
    arrays = {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    manifest = dict(
        info,
        n_leaves=len(leaves),
        paths=_paths(tree),
        shapes=[list(a.shape) for a in arrays.values()],
        dtypes=[str(a.dtype) for a in arrays.values()],
    )
    prev = _latest(root)
    n = int(prev.split("-")[1]) + 1 if prev else 1
    name = f"unit-{n:06d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with open(tmp / "state.npz", "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        write_json_atomic(tmp / "checkpoint.json", manifest)
        _fsync(tmp)
        shutil.rmtree(root / name, ignore_errors=True)  # a unit written but never committed
        os.rename(tmp, root / name)
        _fsync(root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise unwritable(root, exc) from exc
    faults.point("checkpoint-written")
    write_json_atomic(root / LATEST, {"unit": name})
    _fsync(root)
    for old in root.iterdir():
        if old.name != name and (old.name.startswith("unit-") or old.name.startswith(".tmp-")):
            shutil.rmtree(old, ignore_errors=True)


def exists(root: str | Path) -> bool:
    root = Path(root)
    unit = _latest(root)
    return unit is not None and (root / unit / "checkpoint.json").exists() and (root / unit / "state.npz").exists()


def read_info(root: str | Path, hint: str = HINT) -> dict:
    """The bookkeeping of the checkpoint in force."""
    root = Path(root)
    unit = _latest(root)
    if unit is None:
        raise OffbenchError(f"no checkpoint in {root} (its {LATEST} file is missing or damaged); {hint}")
    try:
        return read_json(root / unit / "checkpoint.json")
    except _BAD as exc:
        raise OffbenchError(f"checkpoint {root / unit} cannot be read ({type(exc).__name__}); {hint}") from exc


def load(root: str | Path, template, hint: str = HINT):
    """``(tree, info)`` of the checkpoint in force, with ``template``'s structure, shapes and dtypes."""
    root = Path(root)
    return _load_leaves(root, read_info(root, hint), template, hint)


def _load_leaves(root: Path, info: dict, template, hint: str, index: list[int] | None = None):
    """``template`` filled with the stored leaves ``index`` (default: all), checked against ``info``."""
    where = root / _latest(root)
    leaves_t, treedef = jax.tree_util.tree_flatten(template)
    index = list(range(len(leaves_t))) if index is None else index
    paths = _paths(template)
    if info.get("paths") != paths:
        stored = info.get("paths") or []
        first = next((f"{a} vs {b}" for a, b in zip(stored, paths) if a != b), f"{len(stored)} vs {len(paths)} arrays")
        raise OffbenchError(f"checkpoint {where} holds another state structure (first difference: {first}); {hint}")
    try:
        with np.load(where / "state.npz") as z:
            leaves = [z[f"leaf_{i:05d}"] for i in index]
    except _BAD as exc:
        raise OffbenchError(
            f"checkpoint {where} is damaged ({type(exc).__name__}: {exc}); {hint}".splitlines()[0]
        ) from exc
    for i, (a, t) in enumerate(zip(leaves, leaves_t)):
        if a.shape != tuple(np.shape(t)) or str(a.dtype) != str(np.dtype(t.dtype)):
            raise OffbenchError(
                f"checkpoint {where}: array {i} is {a.dtype}{list(a.shape)} where this run has "
                f"{np.dtype(t.dtype)}{list(np.shape(t))}; {hint}"
            )
    return jax.tree_util.tree_unflatten(treedef, leaves), info


def load_part(root: str | Path, name: str, template, hint: str = HINT):
    """``(subtree, info)``: the entry ``name`` of the checkpoint in force (e.g. ``"states"`` of a fine-tuning
    checkpoint, which also holds its replay rows), checked against ``template`` as :func:`load` checks all."""
    root = Path(root)
    info = read_info(root, hint)
    prefix = f"[{name!r}]"
    stored = info.get("paths") or []
    index = [i for i, p in enumerate(stored) if p.startswith(prefix)]
    part = {
        **info,
        "paths": [stored[i] for i in index],
        "n_leaves": len(index),
        **{k: [info[k][i] for i in index] for k in ("shapes", "dtypes") if isinstance(info.get(k), list)},
    }
    tree, _ = _load_leaves(root, part, {name: template}, hint, index)
    return tree[name], info


def damage(root: str | Path) -> str | None:
    """What is damaged in the checkpoint folder ``root``, in words, or ``None``: intact, no folder, or nothing
    committed yet (a process killed during its first save leaves no ``LATEST`` and at most ``unit-000001``: the
    run had no checkpoint). Damaged: an unreadable ``LATEST``, a missing one beside later units, or a unit in
    force without a readable ``checkpoint.json`` / ``state.npz``."""
    root = Path(root)
    if not root.is_dir():
        return None
    unit = _latest(root)
    units = sorted(p.name for p in root.glob("unit-*"))
    if unit is None and not (root / LATEST).exists() and set(units) <= {"unit-000001"}:
        return None  # the first save never committed: save() writes LATEST only after its unit is complete
    if unit is None:
        return f"its {LATEST} file is missing or unreadable" + (f"; it holds {', '.join(units)}" if units else "")
    if not (root / unit).is_dir():
        return f"{LATEST} names {unit}, which is missing"
    for name in ("checkpoint.json", "state.npz"):
        if not (root / unit / name).is_file():
            return f"{unit} has no {name}"
    try:
        read_json(root / unit / "checkpoint.json")
    except _BAD:
        return f"{unit}/checkpoint.json cannot be read"
    if not zipfile.is_zipfile(root / unit / "state.npz"):
        return f"{unit}/state.npz is not a readable archive"
    return None
