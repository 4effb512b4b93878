"""Verdicts of a protocol's claims from the run records.

Decision rules, per (claim, comparison). Delta = the mean over the claim's datasets of (mean score of A's seeds -
mean score of B's seeds), normalised points; d = the claim's null boundary (protocol.MARGINS: 0 for ">", +25 for
">>", -10 for ">=" (non-inferiority), 0 for "after>before"); p-values are one-sided exact stratified permutation
tests (``rules.two_sample_p``; paired sign-flip test ``rules.paired_p`` for "after>before"), level alpha (0.05):
- ``saturated``: every score of A and of B lies within the protocol's band (5 points) of the ceiling (100) or of
  the floor (0): the data cannot separate them, whatever the relation (checked first);
- ``pass``: H0: Delta <= d is rejected (p <= alpha): A beats B by more than the margin (">=": A is not worse
  than B by the margin or more);
- ``fail``: H0: Delta >= d is rejected (p_against <= alpha): the data show the claim's effect is absent;
- ``inconclusive``: neither.
Beside each row: the seeds per algorithm a rerun needs for 80% power at the observed Delta and pooled sd; beside
each claim: the seeds its stated expectation (``expect:`` effect and sd from its source) needs.
rliable's IQM and probability of improvement P(A > B), each with a stratified-bootstrap 95% CI (Agarwal et al.,
NeurIPS 2021), are reported for the figures; they do not decide.
A claim with several comparisons takes the worst verdict of its rows (fail < not run < saturated < inconclusive <
pass); missing or unfinished runs make it ``not run``."""

from __future__ import annotations

import numpy as np

from offbench.records.record import is_finished
from offbench.records.store import read_records
from offbench.validation.protocol import Claim, Protocol, dataset_key
from offbench.validation.rules import paired_p, seeds_for_power, two_sample_p

ORDER = {"fail": 0, "not run": 1, "saturated": 2, "inconclusive": 3, "pass": 4}
CEILING, FLOOR = 100.0, 0.0


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


def run_score(rec: dict, last_evals: int = 1) -> float | None:
    """The run's final score, or the mean of its last ``last_evals`` evaluations (of its last phase)."""
    if last_evals <= 1:
        return rec["final_score"]
    curve = rec.get("curve") or []
    phase = curve[-1].get("phase", "offline") if curve else "offline"
    scores = [c["score"] for c in curve if c.get("phase", "offline") == phase]
    return float(np.mean(scores[-last_evals:])) if len(scores) >= last_evals else None


def score_matrix(cells: dict, group: str, algo: str, datasets: list, seeds: int, before: bool = False, last: int = 1):
    """(seeds x datasets) of normalised scores (``run_score``), or None with the reason when runs are missing."""
    cols = []
    for d in datasets:
        cell = cells.get((group, algo, d), {})
        missing = [s for s in range(seeds) if s not in cell]
        if missing:
            return None, f"{algo} on {d}: seeds {missing} not finished"
        col = [offline_end_score(cell[s]) if before else run_score(cell[s], last) for s in range(seeds)]
        if any(v is None for v in col):
            return None, f"{algo} on {d}: no offline-phase score" if before else f"{algo} on {d}: < {last} evaluations"
        cols.append(col)
    return np.asarray(cols, dtype=float).T, ""


def data_label(cells: dict, group: str, algos: list, datasets: list) -> str:
    """What data the runs used: "original", or "rebuilt (recipe vN)", one entry per distinct kind."""
    seen = set()
    for algo in algos:
        for d in datasets:
            for rec in cells.get((group, algo, d), {}).values():
                data = rec.get("data") or {}
                if not data:
                    seen.add("unknown")
                elif data.get("rebuilt"):
                    seen.add(f"rebuilt (recipe v{data.get('recipe_version', 1)})")
                else:
                    seen.add(str(data.get("label") or data.get("kind") or "original"))
    return ", ".join(sorted(seen))


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


def saturated(a: np.ndarray, b: np.ndarray, band: float) -> bool:
    """Every score of both within ``band`` of the ceiling, or every score of both within ``band`` of the floor."""
    both = np.concatenate([np.ravel(a), np.ravel(b)])
    return bool(np.all(both >= CEILING - band) or np.all(both <= FLOOR + band))


def decision_stats(claim: Claim, a: np.ndarray, b: np.ndarray, alpha: float, power: float) -> dict:
    """Delta, the p-values for and against the claim, and the seeds for ``power`` at the observed effect."""
    paired = claim.relation == "after>before"
    test = paired_p if paired else two_sample_p
    pro, con = test(a, b, claim.null, greater=True), test(a, b, claim.null, greater=False)
    if paired:
        sd = float(np.std(np.ravel(a - b), ddof=1)) if a.size > 1 else 0.0
    else:
        resid = np.concatenate([np.ravel(a - a.mean(axis=0)), np.ravel(b - b.mean(axis=0))])
        dof = max(resid.size - 2 * a.shape[1], 1)
        sd = float(np.sqrt(np.sum(resid**2) / dof))
    need = seeds_for_power(pro["delta"], max(sd, 1e-6), claim.null, a.shape[1], alpha, power, paired)
    return {
        "delta": pro["delta"],
        "null": claim.null,
        "p": pro["p"],
        "p_against": con["p"],
        "exact": pro["exact"],
        "sd": sd,
        "seeds_for_power": need,
    }


def decide(st: dict, alpha: float, is_saturated: bool = False) -> str:
    if is_saturated:
        return "saturated"
    return "pass" if st["p"] <= alpha else "fail" if st["p_against"] <= alpha else "inconclusive"


def claim_rows(protocol: Protocol, claim: Claim, cells: dict) -> list[dict]:
    seeds = int(protocol.groups[claim.group]["seeds"])
    base = {
        "claim": claim.id,
        "statement": claim.claim,
        "source": claim.source,
        "datasets": ", ".join(claim.datasets),
        "seeds": seeds,
        "relation": claim.relation,
        "margin": claim.margin,
        "alpha": protocol.alpha,
        "planned_seeds": claim.planned_seeds(protocol.alpha, protocol.power),
    }
    pairs = [("after online", "before online")] if claim.relation == "after>before" else [(claim.a, b) for b in claim.b]
    rows = []
    for name_a, name_b in pairs:
        if claim.relation == "after>before":
            a, why_a = score_matrix(cells, claim.group, claim.a, claim.datasets, seeds, last=claim.last_evals)
            b, why_b = score_matrix(cells, claim.group, claim.a, claim.datasets, seeds, before=True)
            name_a, name_b = f"{claim.a} after online", f"{claim.a} before online"
        else:
            a, why_a = score_matrix(cells, claim.group, name_a, claim.datasets, seeds, last=claim.last_evals)
            b, why_b = score_matrix(cells, claim.group, name_b, claim.datasets, seeds, last=claim.last_evals)
        algos = [claim.a] if claim.relation == "after>before" else [claim.a, name_b]
        row = dict(base, a=name_a, b=name_b, data=data_label(cells, claim.group, algos, claim.datasets))
        if a is None or b is None:
            rows.append(dict(row, verdict="not run", note=why_a or why_b))
            continue
        st = {**compare(a, b, protocol.reps), **decision_stats(claim, a, b, protocol.alpha, protocol.power)}
        sat = saturated(a, b, protocol.saturation_band)
        rows.append(dict(row, **st, verdict=decide(st, protocol.alpha, sat), note=""))
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
