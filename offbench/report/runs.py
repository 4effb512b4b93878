"""The report's per-run views: final and best score, wall time and training throughput per cell (the records'
``elapsed_s``, ``train_s`` and ``step``), the tidy CSVs (:mod:`offbench.report.tidy`), and the training logs
(``seed_<s>.metrics.csv`` beside each record, :mod:`offbench.records.metrics_log`) for the loss / value curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from offbench.records.metrics_log import metrics_path, read_rows
from offbench.report.render import Table, frame, mean_std, pm
from offbench.report.tidy import best_point, runs_frame, updates_per_s

# the metrics drawn from the training logs, in this order, when a run logs them (others stay in the CSV)
LOGGED = ("critic_loss", "value_loss", "actor_loss", "q", "v", "adv", "td_loss")  # algorithms/*.py metrics


def _duration(s: float | None) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def runs_table(groups, suites, rows, tasks) -> Table:
    """Per (dataset, row): seeds, final score (the headline), best evaluation, wall time and updates/s."""
    lines = []
    for s in suites:
        for t in tasks[s]:
            for r in rows:
                c = groups.get((s, t, r))
                if c is None or not c.finished:
                    continue
                best = [best_point(x) for x in c.finished]
                best_scores = np.array([b["score"] for b in best if b])
                wall = [x.get("elapsed_s") for x in c.finished if isinstance(x.get("elapsed_s"), (int, float))]
                speed = [v for v in (updates_per_s(x) for x in c.finished) if v]
                lines.append(
                    [
                        t,
                        r,
                        str(len(c.finished)),
                        pm(*mean_std(c.scores)),
                        pm(*mean_std(best_scores)) if len(best_scores) else "–",
                        _duration(float(np.mean(wall)) if wall else None),
                        f"{np.mean(speed):,.0f}" if speed else "–",
                    ]
                )
    return Table(
        "runs",
        "Final and best score, wall time and training speed per run",
        frame(["Dataset", "Row", "Seeds", "Final (headline)", "Best evaluation", "Wall time", "Updates/s"], lines),
        [
            "Final: the last evaluation, the score every other table uses. Best: each seed's highest evaluation "
            "during training (an optimistic number, shown beside the final one as CORL logs both; never ranked).",
            "Wall time: the run's process from start to its last record (compilation and evaluations included; "
            "a resumed run counts from its resume). Updates/s: gradient updates per second of pure training "
            "time (neither compilation nor evaluation), averaged over seeds; seeds of a run train together.",
        ],
        None,
    )


def tidy_csvs(groups, curves_frame) -> dict[str, str]:
    """``results_tidy.csv`` (one row per run x seed x evaluation step) and ``runs.csv`` (one per run x seed)."""
    return {"results_tidy": curves_frame.to_csv(index=False), "runs": runs_frame(groups).to_csv(index=False)}


def training_logs(groups, rows) -> dict:
    """{suite: {metric: {row: (steps, mean over seeds and datasets)}}} from the runs' metrics logs, for the
    metrics in :data:`LOGGED`; each row on the steps all its logs share."""
    out: dict = {}
    for c in groups.values():
        for rec in c.finished:
            run_dir = rec.get("run_dir") or str(Path(rec.get("path", "")).parent)
            header, lines = read_rows(metrics_path(run_dir, rec.get("seed")))
            if not lines:
                continue
            df = pd.DataFrame(lines, columns=header).apply(pd.to_numeric, errors="coerce")
            for m in (m for m in LOGGED if m in df.columns):
                out.setdefault(c.suite, {}).setdefault(m, {}).setdefault(c.row, []).append(df.set_index("step")[m])
    panels = {}
    for suite, metrics in out.items():
        panels[suite] = {}
        for m, per_row in metrics.items():
            panels[suite][m] = {}
            for r in [r for r in rows if r in per_row]:
                joined = pd.concat(per_row[r], axis=1, join="inner")
                if len(joined):
                    panels[suite][m][r] = (joined.index.to_numpy(), joined.mean(axis=1).to_numpy())
    return panels


ISSUE_ORDER = {"unfinished": 0, "diverged": 1, "no score": 2, "missing seeds": 3, "missing run": 4, "unreadable": 5}
ISSUE_KEYS = ("kind", "suite", "dataset", "algo", "seed", "detail", "path")


def issues_table(issues: list[dict]) -> Table:
    issues = sorted(
        issues, key=lambda i: (ISSUE_ORDER.get(i["kind"], 9), i["suite"], i["dataset"], i["algo"], str(i["seed"]))
    )
    lines = [
        [
            i["kind"],
            i["suite"],
            i["dataset"],
            i["algo"],
            "" if i["seed"] in (None, "") else str(i["seed"]),
            i["detail"],
            i["path"],
        ]
        for i in issues
    ]
    return Table(
        "not_averaged",
        "Runs not averaged (unfinished, diverged, missing)",
        frame(["Kind", "Suite", "Dataset", "Row", "Seed", "Detail", "Record"], lines),
        [] if lines else ["None: every dataset x row has the same number of finished seeds."],
        pd.DataFrame([{k: i[k] for k in ISSUE_KEYS} for i in issues], columns=list(ISSUE_KEYS)),
        numeric=False,
    )


def compact_missing(issues: list[dict]) -> list[dict]:
    """The "missing run" issues (a row without a run on a dataset other rows have: by design when rows cover
    different datasets) folded into one line per (suite, row) listing the datasets; other issues as they are."""
    out, missing = [], {}
    for i in issues:
        if i["kind"] == "missing run":
            missing.setdefault((i["suite"], i["algo"]), []).append(i["dataset"])
        else:
            out.append(i)
    for (suite, row), datasets in missing.items():
        detail = f"no run on {len(datasets)} dataset(s) other rows have: {', '.join(datasets)}"
        out.append(dict(kind="missing run", suite=suite, dataset="", algo=row, seed="", detail=detail, path=""))
    return out


def _count(n) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k" if n >= 1e3 else str(n)


def protocol_notes(groups) -> list[str]:
    """One sentence per suite and kind of run that is not the protocol's: the preset (and what to expect from
    it, configs/presets.yaml), evaluation episodes, run length and rebuilt-data size where they differ."""
    from offbench import presets
    from offbench.data.suites import SUITES
    from offbench.recipes.recipes import get_recipe
    from offbench.report.collect import PAPER_STEPS

    notes: dict[tuple, list[str]] = {}
    for c in sorted(groups.values(), key=lambda c: (c.suite, c.row)):
        parts = []
        if c.steps is not None and c.steps != PAPER_STEPS:
            parts.append(f"{_count(c.steps)} steps (protocol: {_count(PAPER_STEPS)})")
        suite = SUITES.get(c.suite)
        if suite is not None and c.episodes is not None and c.episodes != suite.eval_episodes:
            parts.append(f"{c.episodes} evaluation episodes (protocol: {suite.eval_episodes})")
        recipe = get_recipe(c.recipe) if c.recipe else None
        sizes = {(r.get("data") or {}).get("size") for r in c.records} - {None}
        if recipe is not None and sizes and max(sizes) < recipe.default_size:
            parts.append(f"rebuilt data of {_count(max(sizes))} transitions (recipe: {_count(recipe.default_size)})")
        if not parts and not c.preset:
            continue
        head = f"preset {c.preset}" if c.preset else "not the protocol"
        key = (c.suite, head, "; ".join(parts))
        notes.setdefault(key, [])
        if c.row not in notes[key]:
            notes[key].append(c.row)
    out, said = [], {}
    for (suite, head, what), rows in notes.items():
        out.append(f"{suite} ({', '.join(rows)}): {head}" + (f": {what}." if what else "."))
        if head.startswith("preset "):
            try:  # what the preset is for and what to expect from it (configs/presets.yaml), once per text
                note = presets.resolve(head[7:], suite)["note"].rstrip(".") + "."
            except Exception:  # a preset this installation does not know (an older record)
                continue
            said.setdefault(note, []).extend([] if suite in said.get(note, []) else [suite])
    return out + [f"Preset on {', '.join(suites)}: {note}" for note, suites in said.items()]


MIN_SCORES = 10  # below this many scores (runs x datasets) a row's aggregate CI is marked uninformative
UNINFORMATIVE = (
    f"‡: CI from fewer than {MIN_SCORES} scores (runs × datasets): a percentile bootstrap over so few is about "
    "their range, not an interval estimate to read; more seeds or datasets make it one."
)


def few_scores(ss) -> dict:
    """{row: number of scores} of the rows of a ScoreSet whose CI carries no information (:data:`MIN_SCORES`)."""
    return {r: int(v.size) for r, v in ss.scores.items() if v.size < MIN_SCORES}


def mark_uninformative(table: Table, agg: dict) -> None:
    """The aggregates table's CIs of rows with too few scores marked ‡ (cells and CSV), with the note."""
    marked = {(scope.name, r) for scope, (ss, _, _) in agg.items() for r in few_scores(ss)}
    if not marked:
        return
    f = table.frame
    for i in range(len(f)):
        if (f.iat[i, 0], f.iat[i, 1]) in marked:
            for j in range(4, f.shape[1]):
                f.iat[i, j] = f"{f.iat[i, j]} ‡"
    if table.tidy is not None and len(table.tidy):
        keys = list(zip(table.tidy["scope"], table.tidy["algo"]))
        table.tidy["ci_informative"] = [k not in marked for k in keys]
    table.notes.append(UNINFORMATIVE)
