"""What the report lists beside its tables instead of averaging: runs it left out and why (unfinished, diverged,
without a score, unreadable, not included), and the gaps in the table (missing seeds, missing runs)."""

from __future__ import annotations

from collections import defaultdict

from offbench.records.record import is_finished


def issue(kind, suite="", dataset="", algo="", seed="", detail="", path="") -> dict:
    return {
        "kind": kind,
        "suite": suite,
        "dataset": dataset,
        "algo": algo,
        "seed": seed,
        "detail": detail,
        "path": path,
    }


def run_issues(groups: dict) -> list[dict]:
    """Unfinished, diverged and score-less runs; cells with fewer seeds than their row's others; missing runs."""
    out = []
    for c in groups.values():
        for r in sorted(c.records, key=lambda r: r.get("seed", 0)):
            if is_finished(r):
                continue
            base = dict(suite=c.suite, dataset=c.task, algo=c.row, seed=r.get("seed"), path=r.get("path", ""))
            if r.get("status") != "finished":
                out.append(
                    issue(
                        "unfinished",
                        detail=f"status {r.get('status')}, step {r.get('step')} of {r.get('steps')}",
                        **base,
                    )
                )
            elif r.get("diverged") or r.get("final_score") is not None:
                out.append(
                    issue(
                        "diverged",
                        detail=f"final score {r.get('final_score')}"
                        + (f" ({r['final_score_reason']})" if r.get("final_score_reason") else ""),
                        **base,
                    )
                )
            else:
                out.append(issue("no score", detail="finished without an evaluation", **base))
    rows = defaultdict(list)
    for c in groups.values():
        rows[c.row].append(c)
    for row, cs in sorted(rows.items()):
        most = max(len(set(c.seeds)) for c in cs)
        all_seeds = sorted({s for c in cs for s in c.seeds}, key=str)
        for c in sorted(cs, key=lambda c: c.key):
            have = set(c.seeds)
            if len(have) < most:
                missing = [s for s in all_seeds if s not in have]
                out.append(
                    issue(
                        "missing seeds",
                        c.suite,
                        c.task,
                        row,
                        detail=f"{len(have)} seed(s) {sorted(have)}, "
                        f"this row has {most} elsewhere; missing {missing[: most - len(have)] or '?'}",
                    )
                )
    for suite in sorted({c.suite for c in groups.values()}):
        tasks = sorted({c.task for c in groups.values() if c.suite == suite})
        for row in sorted({c.row for c in groups.values() if c.suite == suite}):
            for t in tasks:
                if (suite, t, row) not in groups:
                    out.append(
                        issue(
                            "missing run",
                            suite,
                            t,
                            row,
                            detail="no record of this row on this dataset (other rows have one)",
                        )
                    )
    return out
