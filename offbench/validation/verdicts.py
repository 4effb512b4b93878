"""Verdicts of a protocol's claims from the run records: rliable IQM and probability of improvement, each with
a 95% stratified-bootstrap CI (Agarwal et al., NeurIPS 2021; rliable ``library.get_interval_estimates``).

Decision rules, per (claim, comparison), with P = P(A > B) (rliable ``probability_of_improvement``, paired by task):
- ``>=`` (A at least as good): fail if the CI of P lies below 0.5; pass if P >= 0.5; else inconclusive.
- ``>`` (A better): pass if the CI of P lies above 0.5; fail if its upper end is <= 0.5; else inconclusive.
- ``>>`` (A much better): pass if A's IQM CI lies above B's and the CI of P lies above 0.5; fail if P <= 0.5;
  else inconclusive.
- ``after>before`` (fine-tuning helps): ``>`` with A = the score after the online phase and B = the score at the
  end of the offline phase, of the same runs.
A claim with several comparisons takes the worst verdict of its rows (fail < inconclusive < pass); missing or
unfinished runs make it ``not run``."""

from __future__ import annotations

import numpy as np

from offbench.records.store import is_finished, read_records
from offbench.validation.protocol import Claim, Protocol, dataset_key

ORDER = {"fail": 0, "not run": 1, "inconclusive": 2, "pass": 3}


def select_records(protocol: Protocol, results) -> dict:
    """(group, algo, dataset) -> {seed: record} of finished runs at the group's run length."""
    out: dict = {}
    groups = protocol.groups
    for rec in read_records(results):
        for g, spec in groups.items():
            if (
                rec.get("algo") in spec["algos"]
                and rec.get("dataset") in {dataset_key(d) for d in spec["datasets"]}
                and int(rec.get("steps") or 0) == int(spec["steps"])
                and int(rec.get("online_steps") or 0) == int(spec.get("online_steps") or 0)
                and is_finished(rec)
            ):
                cell = out.setdefault((g, rec["algo"], rec["dataset"]), {})
                seed = int(rec["seed"])
                if seed in cell:
                    raise ValueError(
                        f"two finished records of seed {seed} for {rec['algo']} on {rec['dataset']} "
                        f"({cell[seed]['path']}, {rec['path']}); keep one"
                    )
                cell[seed] = rec
    return out


def offline_end_score(rec: dict) -> float | None:
    off = [c["score"] for c in rec.get("curve") or [] if c.get("phase", "offline") == "offline"]
    return off[-1] if off else None


def score_matrix(cells: dict, group: str, algo: str, datasets: list, seeds: int, before: bool = False):
    """(seeds x datasets) of final normalised scores, or None with the reason when runs are missing."""
    cols = []
    for d in datasets:
        cell = cells.get((group, algo, d), {})
        missing = [s for s in range(seeds) if s not in cell]
        if missing:
            return None, f"{algo} on {d}: seeds {missing} not finished"
        col = [offline_end_score(cell[s]) if before else cell[s]["final_score"] for s in range(seeds)]
        if any(v is None for v in col):
            return None, f"{algo} on {d}: no offline-phase score"
        cols.append(col)
    return np.asarray(cols, dtype=float).T, ""


def _iqm(x):
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(x)])


def compare(a: np.ndarray, b: np.ndarray, reps: int, seed: int = 0) -> dict:
    """IQM of A and B and P(A > B), each with its stratified-bootstrap 95% CI; reproducible for ``seed``
    (the report's seeded rliable call: rliable resamples from numpy's global generator)."""
    from rliable import metrics

    from offbench.report.stats import interval_estimates

    pts, cis = interval_estimates({"a": a, "b": b}, _iqm, reps, seed)
    ppt, pci = interval_estimates({"ab": (a, b)}, metrics.probability_of_improvement, reps, seed)
    return {
        "iqm_a": float(pts["a"][0]),
        "iqm_a_ci": [float(x) for x in cis["a"][:, 0]],
        "iqm_b": float(pts["b"][0]),
        "iqm_b_ci": [float(x) for x in cis["b"][:, 0]],
        "poi": float(ppt["ab"]),
        "poi_ci": [float(x) for x in np.ravel(pci["ab"])],
    }


def decide(relation: str, st: dict) -> str:
    p, (lo, hi) = st["poi"], st["poi_ci"]
    if relation == ">=":
        return "fail" if hi < 0.5 else "pass" if p >= 0.5 else "inconclusive"
    if relation in (">", "after>before"):
        return "pass" if lo > 0.5 else "fail" if hi <= 0.5 else "inconclusive"
    if relation == ">>":
        separated = st["iqm_a_ci"][0] > st["iqm_b_ci"][1]
        return "pass" if separated and lo > 0.5 else "fail" if p <= 0.5 else "inconclusive"
    raise ValueError(relation)


def claim_rows(protocol: Protocol, claim: Claim, cells: dict) -> list[dict]:
    seeds = int(protocol.groups[claim.group]["seeds"])
    base = {
        "claim": claim.id,
        "statement": claim.claim,
        "source": claim.source,
        "datasets": ", ".join(claim.datasets),
        "seeds": seeds,
        "relation": claim.relation,
    }
    pairs = [("after online", "before online")] if claim.relation == "after>before" else [(claim.a, b) for b in claim.b]
    rows = []
    for name_a, name_b in pairs:
        if claim.relation == "after>before":
            a, why_a = score_matrix(cells, claim.group, claim.a, claim.datasets, seeds)
            b, why_b = score_matrix(cells, claim.group, claim.a, claim.datasets, seeds, before=True)
            name_a, name_b = f"{claim.a} after online", f"{claim.a} before online"
        else:
            a, why_a = score_matrix(cells, claim.group, name_a, claim.datasets, seeds)
            b, why_b = score_matrix(cells, claim.group, name_b, claim.datasets, seeds)
        row = dict(base, a=name_a, b=name_b)
        if a is None or b is None:
            rows.append(dict(row, verdict="not run", note=why_a or why_b))
            continue
        st = compare(a, b, protocol.reps)
        rows.append(dict(row, **st, verdict=decide(claim.relation, st), note=""))
    return rows


def all_rows(protocol: Protocol, results) -> list[dict]:
    cells = select_records(protocol, results)
    return [r for c in protocol.claims for r in claim_rows(protocol, c, cells)]


def claim_verdicts(rows: list[dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in rows:
        v = out.get(r["claim"])
        out[r["claim"]] = r["verdict"] if v is None or ORDER[r["verdict"]] < ORDER[v] else v
    return out
