"""The one JSON atomic write (temp file in the same folder, fsync, rename) and strict JSON.

Records and state files are strict JSON (RFC 8259): no ``NaN`` or ``Infinity``. A number that is not finite is
written as ``null``; in a mapping, a ``<key>_reason`` string beside it says why (unless one is there already).
No JAX here: sweep drivers and Ray workers import this module without starting a backend.
"""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import numpy as np

from offbench.errors import OffbenchError


def strict(obj, reason: str = "not a finite number"):
    """``obj`` with every non-finite float replaced by ``None`` (and ``<key>_reason`` added in mappings)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if _nonfinite(v):
                out[k] = None
                rk = f"{k}_reason"
                if rk not in obj:
                    out[rk] = f"{reason} ({_plain(v)})"
            else:
                out[k] = strict(v, reason)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if _nonfinite(v) else strict(v, reason) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist(), reason)
    if isinstance(obj, np.generic):
        return strict(obj.item(), reason)
    return obj


def _nonfinite(v) -> bool:
    return isinstance(v, (float, np.floating)) and not math.isfinite(float(v))


def _plain(v) -> str:
    return str(float(v)).lower()


def write_json_atomic(path: str | Path, obj, *, reason: str = "not a finite number") -> None:
    """Write ``obj`` as strict JSON to ``path`` atomically; an unwritable or full folder is one OffbenchError."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(strict(obj, reason), indent=1, default=_json_default, allow_nan=False)
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with _quiet():
            tmp.unlink()
        raise unwritable(path, exc) from exc


def unwritable(path: Path, exc: OSError) -> OffbenchError:
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.EPERM: "permission denied",
    }.get(exc.errno, exc.strerror or str(exc))
    return OffbenchError(f"cannot write {path}: {what}; choose another --results folder or free space")


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def read_json(path: str | Path):
    with open(path) as f:
        return json.load(f)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
