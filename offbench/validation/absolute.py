"""The second table of ``offbench validate`` (issue 28): offbench's absolute scores beside the published ones.

The verdicts (``verdicts.py``) test *relations* between algorithms run here; this table asks the other question a
reviewer asks: are offbench's own scores where the papers put them? One row per (run group, algorithm, dataset,
phase) and published source with a number for that algorithm and dataset (``results/reference/published_scores.csv``,
the sources in ``sources.csv``). Rules, in this order (the first that applies gives the row's ``comparison``):

- the runs used rebuilt data (``offbench data build``): "not comparable: rebuilt" -- other data, other scores;
- the runs used Minari-hosted data (a re-creation in Gymnasium(-Robotics), not D4RL's files): "not comparable:
  Minari-hosted data";
- the published number is on another version of the dataset (the IQL paper's AntMaze and Adroit are -v0, offbench
  runs -v2 / -v1): "not comparable: published on -vN";
- the runs are not the published run length (1M offline steps; fine-tuning 1M online steps, ``PAPER_STEPS``): "not
  comparable: N steps (published: 1M)";
- the source gives a mean only (no sd; the IQL paper's tables): "no published CI (mean only)", with the difference;
- otherwise the published 95% confidence interval of the mean, m +- t_{0.975, n-1} s / sqrt(n) (n the source's
  seeds, ``sources.csv``; s the published +-, taken as the sd over seeds): "within published CI" when offbench's
  mean over its seeds lies in it, else "outside published CI (above|below)". Beside it, Welch's two-sided t-test
  of equal means from both sides' mean, sd and seeds (Welch, Biometrika 34, 1947), which also counts offbench's own
  seed noise; it describes, the CI rule decides the column.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from offbench.report.collect import PAPER_STEPS
from offbench.report.reference import base_name, canon, load_reference, reference_dir
from offbench.validation.protocol import Protocol, dataset_key
from offbench.validation.verdicts import offline_end_score, select_records

LEVEL = 0.95  # the published interval's coverage
DATA_LABELS = {"d4rl": "D4RL's files", "minari": "Minari-hosted", "rebuilt": "rebuilt"}


def source_seeds(labels: dict) -> dict[str, int]:
    """Seeds per source from ``sources.csv``'s ``seeds`` column where it reads "N seeds" (CORL: "4 seeds")."""
    out = {}
    for src, row in labels.items():
        m = re.fullmatch(r"\s*(\d+)\s+seeds\s*", str(row.get("seeds") or ""))
        if m:
            out[src] = int(m.group(1))
    return out


def _version(name: str) -> str:
    m = re.search(r"-(v\d+)$", name)
    return m.group(1) if m else ""


def data_kind(recs: list[dict]) -> str:
    """ "rebuilt", "minari" (hosted, not rebuilt), "d4rl" (D4RL's hdf5: downloaded or a file), or "unknown"."""
    kinds = set()
    for r in recs:
        data = r.get("data") or {}
        meta = data.get("metadata") or {}
        if data.get("rebuilt"):
            kinds.add("rebuilt")
        elif meta.get("source") == "minari":
            kinds.add("minari")
        elif meta.get("source") == "d4rl-hdf5":
            kinds.add("d4rl")
        else:
            kinds.add("unknown")
    return kinds.pop() if len(kinds) == 1 else "mixed: " + ", ".join(sorted(kinds))


def published_ci(mean: float, sd: float, n: int) -> tuple[float, float]:
    from scipy.stats import t

    half = float(t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def welch_p(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float | None:
    """Two-sided p of Welch's t-test of equal means from summary statistics (None when undefined)."""
    from scipy.stats import t

    v1, v2 = s1**2 / n1, s2**2 / n2
    if n1 < 2 or n2 < 2 or v1 + v2 <= 0:
        return None
    stat = (m1 - m2) / math.sqrt(v1 + v2)
    dof = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    return float(2 * t.sf(abs(stat), dof))


def compare_row(mine: np.ndarray, pub: dict, n_pub: int | None, kind: str, steps: int, paper_steps: int) -> dict:
    """The comparison of offbench's scores ``mine`` (one per seed) with one published row."""
    m = float(np.mean(mine))
    sd = float(np.std(mine, ddof=1)) if len(mine) > 1 else None  # None, not NaN: verdicts.json is strict JSON
    p_mean = float(pub["score"])
    p_sd = float(pub["std"]) if str(pub.get("std") or "").strip() else None
    out = {"offbench_mean": m, "offbench_sd": sd, "published_mean": p_mean, "published_sd": p_sd}
    out.update(published_seeds=n_pub, ci_low=None, ci_high=None, welch_p=None, difference=m - p_mean)
    if kind == "rebuilt":
        return dict(out, comparison="not comparable: rebuilt")
    if kind == "minari":
        return dict(out, comparison="not comparable: Minari-hosted data")
    if kind != "d4rl":
        return dict(out, comparison=f"not comparable: data {kind}")
    if pub["_version_differs"]:
        return dict(out, comparison=f"not comparable: published on -{_version(pub['dataset'])}")
    if steps != paper_steps:
        return dict(out, comparison=f"not comparable: {steps:,} steps (published: {paper_steps:,})")
    if p_sd is None or not n_pub or n_pub < 2:
        return dict(out, comparison="no published CI (mean only)")
    lo, hi = published_ci(p_mean, p_sd, n_pub)
    out.update(
        ci_low=lo, ci_high=hi, welch_p=welch_p(m, sd, len(mine), p_mean, p_sd, n_pub) if sd is not None else None
    )
    where = "within published CI" if lo <= m <= hi else f"outside published CI ({'above' if m > hi else 'below'})"
    return dict(out, comparison=where)


def absolute_rows(protocol: Protocol, results, reference=None) -> list[dict]:
    """Every finished (group, algorithm, dataset[, phase]) of the protocol beside each published number for it."""
    pub_rows, labels = load_reference(reference or reference_dir(None, results))
    seeds_of = source_seeds(labels)
    cells = select_records(protocol, results)
    out = []
    for g, spec in protocol.groups.items():
        online = int(spec.get("online_steps") or 0)
        n_seeds = int(spec["seeds"])
        for algo in spec["algos"]:
            for d in (dataset_key(x) for x in spec["datasets"]):
                cell = cells.get((g, algo, d), {})
                recs = [cell[s] for s in range(n_seeds) if s in cell]
                if len(recs) < n_seeds:
                    continue  # not all seeds finished: the table shows complete runs only
                finals = [r["final_score"] for r in recs]
                phases = [("offline", finals, int(spec["steps"]))]
                if online:  # fine-tuning: the score at the end of the offline phase, and after the online one
                    phases = [("offline", [offline_end_score(r) for r in recs], int(spec["steps"]))]
                    phases.append(("online", finals, online))
                kind = data_kind(recs)
                for phase, scores, steps in phases:
                    if any(v is None for v in scores):
                        continue
                    cand = [
                        r
                        for r in pub_rows
                        if base_name(r["dataset"]) == base_name(d)
                        and canon(r["method"]) == canon(algo)
                        and r["phase"] == phase
                    ]
                    for pub in cand:
                        pub = dict(pub, _version_differs=_version(pub["dataset"]) != _version(d))
                        row = compare_row(
                            np.asarray(scores, float), pub, seeds_of.get(pub["source"]), kind, steps, PAPER_STEPS
                        )
                        out.append(
                            {
                                "group": g,
                                "dataset": d,
                                "algo": algo,
                                "phase": phase,
                                "steps": steps,
                                "seeds": len(scores),
                                "data": kind,
                                "source": labels.get(pub["source"], {}).get("label", pub["source"]),
                                "published_dataset": pub["dataset"],
                                **row,
                            }
                        )
    return out


def _f(v, fmt=".1f") -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def absolute_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": r["dataset"],
                "algorithm": r["algo"],
                "phase": r["phase"],
                "steps": f"{r['steps']:,}",
                "data": DATA_LABELS.get(r["data"], r["data"]),
                "offbench mean ± sd (n)": f"{r['offbench_mean']:.1f} ± {_f(r['offbench_sd']) or '—'} ({r['seeds']})",
                "source": r["source"],
                "published (dataset)": f"{r['published_mean']:.1f}"
                + (f" ± {r['published_sd']:.1f}" if r["published_sd"] is not None else "")
                + (f", n={r['published_seeds']}" if r["published_seeds"] else "")
                + f" ({r['published_dataset']})",
                f"published {LEVEL:.0%} CI": f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
                if r["ci_low"] is not None
                else "",
                "Welch p": _f(r["welch_p"], ".3f"),
                "comparison": r["comparison"],
            }
            for r in rows
        ]
    )
