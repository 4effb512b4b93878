"""The report's tables: per-dataset scores, aggregates, probability of improvement and fine-tuning, each a
:class:`offbench.report.render.Table` (rendered to CSV, Markdown, LaTeX and HTML there)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from offbench.report.collect import PAPER_STEPS
from offbench.report.render import Table, frame, mean_std, pm
from offbench.report.stats import METRICS
from offbench.report.tidy import best_point


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def cell_fields(c) -> dict:
    """What makes a cell's runs comparable, as CSV columns."""
    return {
        "algorithm": c.algo,
        "finetune": c.finetune,
        "variant": c.variant,
        "steps": c.steps,
        "online_steps": c.online_steps,
        "eval_episodes": c.episodes,
        "eval_backend": c.backend,
        "preset": c.preset,
        "config_hash": c.config_hash,
        "data_fingerprint": c.fingerprint,
        "data_label": c.data_label,
        "recipe": c.recipe,
        "recipe_version": c.recipe_version,
    }


def kinds_of(groups, suite, tasks):
    """The suite's tasks split by data kind: [(title prefix, tasks)], original first."""
    out = []
    for rebuilt in (False, True):
        ts = [
            t for t in tasks if any(c.rebuilt == rebuilt for c in groups.values() if c.suite == suite and c.task == t)
        ]
        if ts:
            out.append((suite + (" (rebuilt data)" if rebuilt else ""), ts))
    return out


def per_dataset_table(groups, suites, rows, tasks) -> Table:
    """IQL-paper Table 1 layout: datasets x rows, mean ± std over seeds, totals and averages per suite and data
    kind (rebuilt and original data are never summed together)."""
    lines, bold, tidy, rules = [], set(), [], set()
    most = max((len(c.finished) for c in groups.values()), default=0)
    dagger = False
    for s in suites:
        for prefix, ts in kinds_of(groups, s, tasks[s]):
            rules.add(len(lines))
            sums = {r: [] for r in rows}
            for t in ts:
                line, means = [t], {}
                for j, r in enumerate(rows):
                    c = groups.get((s, t, r))
                    sc = c.scores if c is not None else np.array([])
                    if len(sc):
                        m, sd = mean_std(sc)
                        means[j] = m
                        sums[r].append(m)
                        dagger |= len(sc) < most
                        line.append(pm(m, sd) + ("†" if len(sc) < most else ""))
                    else:
                        line.append("–")
                    if c is not None:
                        tidy.append(
                            {
                                "suite": s,
                                "dataset": c.dataset,
                                "data": "rebuilt" if c.rebuilt else "original",
                                "algo": r,
                                **cell_fields(c),
                                "n_seeds": len(sc),
                                "mean": round(mean_std(sc)[0], 4) if len(sc) else None,
                                "std": round(mean_std(sc)[1], 4) if len(sc) > 1 else None,
                                **{f"seed_{x.get('seed')}": float(x["final_score"]) for x in c.finished},
                                "best_eval_mean": _best_mean(c.finished) if len(sc) else None,  # beside "mean"
                                "highest_mean": False,  # the bold cell of its dataset line
                                "_line": len(lines),
                                "_col": j,
                            }
                        )
                _mark_best(len(lines), means, bold)
                lines.append(line)
            n = len(ts)
            for what, f in (("total", sum), ("average", lambda v: sum(v) / len(v))):
                line, vals = [f"{prefix} {what}"], {}
                for j, r in enumerate(rows):
                    v = sums[r]
                    if v:
                        x = f(v)
                        vals.update({j: x} if len(v) == n else {})
                    line.append("–" if not v else f"{f(v):.1f}" + ("" if len(v) == n else f" ({len(v)}/{n})"))
                _mark_best(len(lines), vals, bold)
                rules.update({len(lines)} if what == "total" else set())
                lines.append(line)
    for t in tidy:
        t["highest_mean"] = (t.pop("_line"), t.pop("_col") + 1) in bold
    notes = [
        "Final D4RL-normalised score (the last evaluation), mean ± sample standard deviation over seeds (ddof=1, "
        "as pandas); only finished, non-diverged runs. Best mean per row in bold. The CSV has one column per seed.",
        "A column pools only comparable runs: same algorithm, data (and recipe version), config, variant, run "
        "length and evaluation; anything that differs is its own column, named by what differs.",
        "A total/average marked (k/n) covers only k of the n datasets and is not ranked.",
        "'(rebuilt …)': dataset rebuilt by `offbench data build`, normalised with its own reference returns; "
        "not comparable with published D4RL scores, and totalled apart from original data.",
    ]
    notes += run_length_notes(groups, rows)
    if dagger:
        notes.append(f"†: fewer seeds than the {most} of the best-covered cell (see 'Runs not averaged').")
    tidy = pd.DataFrame(tidy)
    seeds = sorted((k for k in tidy.columns if k.startswith("seed_")), key=lambda k: int(k[5:]))
    return Table(
        "per_dataset",
        "Final normalised score per dataset",
        frame(["Dataset"] + rows, lines),
        notes,
        tidy[[k for k in tidy.columns if k not in seeds] + seeds],
        bold,
        rules,
    )


def _best_mean(recs) -> float:
    """Mean over seeds of each seed's highest evaluation (``best``; the headline stays the final score)."""
    return round(float(np.mean([b["score"] for b in map(best_point, recs) if b])), 4)


def run_length_notes(groups, rows) -> list[str]:
    """Rows trained for another length than the papers' 1M offline steps say so (issue 15 / 19.1)."""
    other = []
    for r in rows:
        lengths = sorted({c.steps for c in groups.values() if c.row == r}, key=str)
        if lengths != [PAPER_STEPS]:
            other.append(f"{r}: {', '.join(str(x) for x in lengths)}")
    return (
        [f"Run length (offline gradient steps) other than the papers' {PAPER_STEPS:,}: " + "; ".join(other)]
        if other
        else []
    )


def _mark_best(line: int, means: dict, bold: set) -> None:
    if means:
        best = max(means.values())
        bold.update((line, j + 1) for j, m in means.items() if m >= best - 1e-9)


def aggregates_table(results: dict) -> Table:
    """results: {Scope: (ScoreSet, point, interval)}"""
    lines, tidy, rules = [], [], set()
    for scope, (ss, point, ci) in results.items():
        rules.add(len(lines))
        for r in ss.scores:
            line = [scope.name, r, str(ss.scores[r].shape[0]), str(len(ss.tasks))]
            for m, name in enumerate(METRICS):
                line.append(f"{point[r][m]:.3f} [{ci[r][0][m]:.3f}, {ci[r][1][m]:.3f}]")
                tidy.append(
                    {
                        "scope": scope.name,
                        "algo": r,
                        "metric": name,
                        "point": round(float(point[r][m]), 6),
                        "ci_low": round(float(ci[r][0][m]), 6),
                        "ci_high": round(float(ci[r][1][m]), 6),
                        "runs_per_task": ss.scores[r].shape[0],
                        "tasks": len(ss.tasks),
                        "rebuilt_data": scope.rebuilt,
                        "finetune": scope.finetune,
                    }
                )
            lines.append(line)
    notes = [
        "Normalised score / 100 (rliable convention): IQM, median and mean (higher is better) and optimality "
        "gap (lower is better) over runs x datasets, with 95% stratified-bootstrap percentile CIs.",
        "Scopes never pool original and rebuilt data, nor offline and fine-tuning rows. Each scope uses only "
        "datasets on which every one of its rows has finished runs; per row the same number of runs per dataset.",
    ]
    return Table(
        "aggregates",
        "Aggregate metrics (rliable) with 95% CIs",
        frame(["Scope", "Row", "Runs/dataset", "Datasets"] + [f"{m} [95% CI]" for m in METRICS], lines),
        notes,
        pd.DataFrame(tidy),
        rules=rules,
    )


def poi_table(results: dict) -> Table:
    lines, tidy = [], []
    for scope, (point, ci) in results.items():
        for pair in point:
            x, y = pair.split(",")
            p, lo, hi = float(np.squeeze(point[pair])), float(np.squeeze(ci[pair][0])), float(np.squeeze(ci[pair][1]))
            lines.append([scope.name, x, y, f"{p:.3f} [{lo:.3f}, {hi:.3f}]"])
            tidy.append(
                {
                    "scope": scope.name,
                    "x": x,
                    "y": y,
                    "p_x_better": round(p, 6),
                    "ci_low": round(lo, 6),
                    "ci_high": round(hi, 6),
                }
            )
    return Table(
        "probability_of_improvement",
        "Probability of improvement P(X > Y)",
        frame(["Scope", "X", "Y", "P(X > Y) [95% CI]"], lines),
        [
            "Mann-Whitney U statistic per dataset averaged over datasets (rliable), stratified independent "
            "bootstrap 95% CIs. P > 0.5 with a CI above 0.5: X is likely better than Y."
        ],
        pd.DataFrame(tidy),
    )


def finetune_table(groups, suites, rows, tasks) -> Table | None:
    lines, tidy = [], []
    for s in suites:
        for t in tasks[s]:
            for r in rows:
                c = groups.get((s, t, r))
                recs = [x for x in c.finished if x.get("online_score") is not None] if c is not None else []
                if not recs:
                    continue
                vals = {}
                for k in ("offline_score", "online_score", "corl_regret"):
                    x = np.array([float(rec[k]) for rec in recs if _finite(rec.get(k))])
                    vals[k] = mean_std(x) if len(x) else None
                off, on = vals["offline_score"], vals["online_score"]
                lines.append(
                    [
                        t,
                        r,
                        str(len(recs)),
                        f"{_ms(off)} → {_ms(on)}",
                        "–" if off is None or on is None else f"{on[0] - off[0]:+.1f}",
                        _ms(vals["corl_regret"], 3),
                    ]
                )
                tidy.append(
                    {
                        "suite": s,
                        "dataset": t,
                        "algo": r,
                        **cell_fields(c),
                        "n_seeds": len(recs),
                        **{
                            f"{k}_{st}": (None if vals[k] is None else round(vals[k][i], 6))
                            for k in vals
                            for i, st in enumerate(("mean", "std"))
                        },
                    }
                )
    if not lines:
        return None
    return Table(
        "offline_to_online",
        "Offline → online fine-tuning",
        frame(["Dataset", "Row", "Seeds", "offline → online (mean ± std)", "Δ", "CORL regret (mean ± std)"], lines),
        [
            "Scores after the offline phase and at the end of online fine-tuning (records' offline_score / "
            "online_score); CORL regret: mean of 1 − success over the online exploration episodes, as CORL computes it."
        ],
        pd.DataFrame(tidy),
    )


def _ms(v, d=1) -> str:
    return "–" if v is None else pm(v[0], v[1], d)
