"""What scripts/calibrate_antmaze.py and scripts/calibrate_kitchen.py share: the table they write
(results/reference/rebuilt_bc.csv, whose columns are the ones the data card reads: offbench.data.card.REBUILT_BC_FIELDS),
the exact mean of a clipped, noisy action (their conditional-mean proxies) and a candidate recipe's constants
(``--set MODULE.CONST=VALUE``, also read by scripts/kitchen_pool.py)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from offbench.data.card import REBUILT_BC_FIELDS, data_seeds, steps_number

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "results" / "reference" / "rebuilt_bc.csv"
ROW_KEY = ("dataset", "recipe_version", "steps", "seeds", "eval_episodes", "data_seeds", "obs_dim")


def _with_data_seeds(row: dict) -> dict:
    """The row with its data seeds written out (a BC row from before the column: seed 0; card.data_seeds)."""
    return {**row, "data_seeds": " ".join(data_seeds(row))}


def write_row(row: dict, table: Path = TABLE):
    """Insert or replace the row with the same (dataset, recipe_version, steps, seeds, eval_episodes, data_seeds);
    other rows are kept; the file is replaced in one step. A BC row without ``data_seeds`` ran on one build of
    data seed 0 (what ``offbench run`` builds)."""
    row = _with_data_seeds(row)
    key = lambda r: tuple(str(r.get(k, "")) for k in ROW_KEY)  # noqa: E731
    rows = []
    if table.exists():
        with open(table, newline="") as f:
            rows = [r for r in map(_with_data_seeds, csv.DictReader(f)) if key(r) != key(row)]
    rows.append({k: row.get(k, "") for k in REBUILT_BC_FIELDS})
    # CSV rows are text, the script's row is not: sort steps as numbers (the card picks its row by content)
    rows.sort(key=lambda r: (str(r["dataset"]), str(r["recipe_version"]), steps_number(r)))
    tmp = table.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=REBUILT_BC_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, table)


def set_constants(items, modules: dict) -> list[str]:
    """Set each ``MODULE.CONST=VALUE`` of ``items`` on ``modules`` (name -> module): numeric upper-case constants
    only, an int one to a whole number. Returns "MODULE.CONST value" per item; ValueError names a bad item."""
    done = []
    for item in items:
        key, _, value = item.partition("=")
        module, _, const = key.partition(".")
        old = getattr(modules.get(module), const, None) if const.isupper() else None
        try:
            new = float(value)
            ok = isinstance(old, (int, float)) and (isinstance(old, float) or new.is_integer())
        except ValueError:
            ok = False
        if not ok:
            names = " or ".join(modules)
            raise ValueError(f"--set {item}: expected MODULE.CONST=VALUE, a numeric constant of {names}")
        setattr(modules[module], const, new := type(old)(new))
        done.append(f"{key} {new}")
    return done


def expected_clip(a: np.ndarray, sigma: float) -> np.ndarray:
    """E[clip(a + e, -1, 1)], e ~ N(0, sigma^2), elementwise and exact (moments of a clipped normal)."""
    from scipy.special import ndtr

    a = np.asarray(a, np.float64)
    if sigma <= 0:
        return np.clip(a, -1.0, 1.0)
    lo, hi = (-1.0 - a) / sigma, (1.0 - a) / sigma
    pdf = lambda z: np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    inside = a * (ndtr(hi) - ndtr(lo)) + sigma * (pdf(lo) - pdf(hi))
    return -ndtr(lo) + (1.0 - ndtr(hi)) + inside
