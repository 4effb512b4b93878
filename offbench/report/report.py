"""``offbench report``: tables, rliable statistics and plots from run records.

Follows the protocol of Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical Precipice", the
``rliable`` library): final normalised scores divided by 100, interquartile mean (IQM), median, mean and
optimality gap with stratified-bootstrap 95% confidence intervals, performance profiles and probability of
improvement; learning curves show the IQM over seeds with bootstrap bands.

Only finished, non-diverged runs with a finite final score are averaged; unfinished, diverged and
unreadable runs, and datasets x algorithms with fewer seeds than others, are listed instead. Scores on
rebuilt datasets are labelled "(rebuilt)" and kept apart from runs on the original data; published numbers
(``--reference``) live in their own columns, labelled by source.

matplotlib and rliable are imported inside functions so that ``offbench --help`` stays fast.
"""
from __future__ import annotations

import csv
import dataclasses
import html
import json
import math
import re
import warnings
from collections import defaultdict
from pathlib import Path

import click
import numpy as np

from offbench.errors import OffbenchError

FORMATS = ("md", "csv", "tex", "html")
METRICS = ("IQM", "Median", "Mean", "Optimality gap")
SUITE_ORDER = ("locomotion", "antmaze", "kitchen", "adroit")


# --------------------------------------------------------------------------------------------------
# Collecting runs

@dataclasses.dataclass
class Group:
    """All records of one (suite, dataset, data kind, algorithm)."""

    suite: str
    dataset: str
    rebuilt: bool
    algo: str
    records: list = dataclasses.field(default_factory=list)
    data_label: str = "rebuilt"   # the recipe's label of rebuilt data ("rebuilt", "rebuilt (scripted)")

    @property
    def label(self) -> str:
        return f"{self.dataset} ({self.data_label})" if self.rebuilt else self.dataset

    @property
    def key(self) -> tuple:
        return (self.suite, self.label, self.algo)

    @property
    def finished(self) -> list[dict]:
        """Records that count: finished, not diverged, finite final score; sorted by seed."""
        return sorted((r for r in self.records if usable(r)), key=lambda r: r.get("seed", 0))

    @property
    def scores(self) -> np.ndarray:
        return np.array([float(r["final_score"]) for r in self.finished], dtype=np.float64)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.get("seed") for r in self.records if r.get("seed") is not None)


def usable(rec: dict) -> bool:
    score = rec.get("final_score")
    return (rec.get("status") == "finished" and not rec.get("diverged") and score is not None
            and math.isfinite(float(score)))


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def collect(results: Path, suites=(), algos=(), datasets=(), skip=()) -> tuple[dict, list[dict]]:
    """Groups keyed by (suite, dataset label, algo) and the list of issues (runs not averaged)."""
    from offbench.records.store import read_records

    if not results.is_dir():
        raise OffbenchError(f"results folder {results} does not exist; pass --results DIR (where `offbench run` "
                            "wrote its records)")
    recs = [r for r in read_records(results) if not any(_inside(Path(r["path"]), s) for s in skip)]
    if not recs:
        raise OffbenchError(f"no run records under {results}; run e.g. `offbench run --algo iql --suite locomotion "
                            "--dataset NAME` first, or pass --results DIR")
    issues = []
    for r in recs:
        if r.get("status") == "unreadable":
            issues.append({"kind": "unreadable", "suite": "", "dataset": "", "algo": "", "seed": "",
                           "detail": r.get("error", ""), "path": r["path"]})
    recs = [r for r in recs if r.get("status") != "unreadable"]
    if not recs:
        raise OffbenchError(f"no readable run record under {results} ({issues[0]['path']}: {issues[0]['detail']}); "
                            "rerun `offbench run` for those runs")
    present = {k: sorted({str(r.get(k)) for r in recs}) for k in ("suite", "algo", "dataset")}
    for name, wanted, key in (("--suite", suites, "suite"), ("--algos", algos, "algo"), ("--datasets", datasets, "dataset")):
        unknown = [w for w in wanted if w not in present[key]]
        if unknown:
            raise OffbenchError(f"{name} {', '.join(unknown)}: no records under {results}; records exist for "
                                f"{', '.join(present[key])}")
    recs = [r for r in recs if (not suites or r.get("suite") in suites) and (not algos or r.get("algo") in algos)
            and (not datasets or r.get("dataset") in datasets)]
    if not recs:
        raise OffbenchError("no records match the --suite/--algos/--datasets filters together; relax one of them")
    groups: dict[tuple, Group] = {}
    for r in recs:
        data = r.get("data") or {}
        g = Group(str(r.get("suite")), str(r.get("dataset")), bool(data.get("rebuilt")), algo_label(r),
                  data_label=rebuilt_label(data))
        groups.setdefault(g.key, g).records.append(r)
    issues += run_issues(groups)
    return groups, issues


def rebuilt_label(data: dict) -> str:
    """The label of rebuilt data as its recipe names it ("rebuilt", "rebuilt (scripted)")."""
    label = str(data.get("label") or "")
    return label if label.startswith("rebuilt") else "rebuilt"


def strip_rebuilt(label: str) -> str:
    """The dataset name of a table label ("kitchen-complete-v0 (rebuilt (scripted))" -> "kitchen-complete-v0")."""
    return re.sub(r" \(rebuilt.*\)$", "", label)


def algo_label(record: dict) -> str:
    """Fine-tuned runs (offline then online) are their own row, never pooled with offline-only runs."""
    algo = str(record.get("algo"))
    return f"{algo}+online" if record.get("finetune") else algo


def run_issues(groups: dict) -> list[dict]:
    """Unfinished, diverged and score-less runs; missing seeds and missing runs."""
    out = []
    for g in groups.values():
        for r in sorted(g.records, key=lambda r: r.get("seed", 0)):
            base = {"suite": g.suite, "dataset": g.label, "algo": g.algo, "seed": r.get("seed"), "path": r.get("path", "")}
            score = r.get("final_score")
            if r.get("status") != "finished":
                out.append(dict(base, kind="unfinished",
                                detail=f"status {r.get('status')}, step {r.get('step')} of {r.get('steps')}"))
            elif r.get("diverged") or (score is not None and not math.isfinite(float(score))):
                out.append(dict(base, kind="diverged", detail=f"final score {score}"))
            elif score is None:
                out.append(dict(base, kind="no score", detail="finished without an evaluation"))
    if not groups:
        return out
    all_seeds = sorted({s for g in groups.values() for s in g.seeds})
    most = max(len(set(g.seeds)) for g in groups.values())
    for g in sorted(groups.values(), key=lambda g: g.key):
        have = set(g.seeds)
        if len(have) < most:
            missing = [s for s in all_seeds if s not in have]
            out.append({"kind": "missing seeds", "suite": g.suite, "dataset": g.label, "algo": g.algo, "seed": "",
                        "path": "", "detail": f"{len(have)} seed(s) {sorted(have)}, others have {most}; missing "
                                              f"{missing[:max(0, most - len(have))] or '?'}"})
    algos = sorted({g.algo for g in groups.values()})
    for suite, label in sorted({(g.suite, g.label) for g in groups.values()}):
        for a in algos:
            if (suite, label, a) not in groups:
                out.append({"kind": "missing run", "suite": suite, "dataset": label, "algo": a, "seed": "", "path": "",
                            "detail": "no record for this algorithm on this dataset (other algorithms have one)"})
    return out


def suite_sort_key(suite: str):
    return (SUITE_ORDER.index(suite) if suite in SUITE_ORDER else len(SUITE_ORDER), suite)


def ordered(groups: dict):
    suites = sorted({g.suite for g in groups.values()}, key=suite_sort_key)
    algos = sorted({g.algo for g in groups.values()}, key=lambda a: (a != "iql", a))  # IQL first, as the focus
    datasets = {s: sorted({g.label for g in groups.values() if g.suite == s}) for s in suites}
    return suites, algos, datasets


# --------------------------------------------------------------------------------------------------
# Statistics (rliable)

def aggregate_func(scores: np.ndarray) -> np.ndarray:
    """IQM, median, mean and optimality gap of a (runs x tasks) matrix, with rliable's own functions."""
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_median(scores),
                     metrics.aggregate_mean(scores), metrics.aggregate_optimality_gap(scores)])


def _quiet():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", FutureWarning)  # arch's random_state deprecation inside rliable
    warnings.simplefilter("ignore", RuntimeWarning)
    return ctx


def interval_estimates(score_dict: dict, func, reps: int, seed: int = 0):
    """``rly.get_interval_estimates`` (stratified bootstrap, percentile 95% CIs), reproducible for a given
    ``seed`` (numpy's global generator is seeded for the call and restored afterwards)."""
    from rliable import library as rly

    ctx = _quiet()
    state = np.random.get_state()
    np.random.seed(seed)  # rliable's stratified resampling draws from numpy's global generator
    try:
        return rly.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(state)
        ctx.__exit__(None, None, None)


def aggregates(score_dict: dict, reps: int, seed: int = 0):
    """Point estimates and CIs of :data:`METRICS` for each algorithm's (runs x tasks) matrix (scores / 100)."""
    return interval_estimates(score_dict, aggregate_func, reps, seed)


def probability_of_improvement(score_dict: dict, pairs: list[tuple[str, str]], reps: int, seed: int = 0):
    """P(X > Y) with stratified independent bootstrap CIs, keyed ``"X,Y"``."""
    from rliable import metrics

    pair_dict = {f"{x},{y}": (score_dict[x], score_dict[y]) for x, y in pairs}
    return interval_estimates(pair_dict, metrics.probability_of_improvement, reps, seed)


def performance_profiles(score_dict: dict, taus: np.ndarray, reps: int, seed: int = 0):
    """Score distributions (fraction of runs with score > tau) with CIs, via ``rly.create_performance_profile``."""
    from rliable import library as rly

    ctx = _quiet()
    state = np.random.get_state()
    np.random.seed(seed)  # rliable's stratified resampling draws from numpy's global generator
    try:
        return rly.create_performance_profile(score_dict, taus, reps=reps)
    finally:
        np.random.set_state(state)
        ctx.__exit__(None, None, None)


def iqm_per_step(scores: np.ndarray) -> np.ndarray:
    """IQM over runs x tasks at every step of a (runs x tasks x steps) array: ``metrics.aggregate_iqm`` of
    each step's slice, vectorised (one ``trim_mean`` call)."""
    from scipy.stats import trim_mean

    return np.atleast_1d(trim_mean(scores.reshape(-1, scores.shape[-1]), proportiontocut=0.25, axis=0))


@dataclasses.dataclass
class ScoreSet:
    """A rectangular score matrix per algorithm over common tasks, and what was left out."""

    tasks: list
    scores: dict          # algo -> (runs x tasks), normalised score / 100
    excluded: list        # (task label, reason)
    truncated: list       # (algo, task label, seeds dropped)


def score_set(groups: dict, algos: list[str], suite: str | None) -> ScoreSet:
    """Final scores of the tasks (datasets) that every algorithm has finished runs on; each algorithm uses
    the same number of runs on every task (its smallest count; the extra seeds are reported)."""
    tasks, excluded = [], []
    labels = sorted({(g.suite, g.label) for g in groups.values() if suite is None or g.suite == suite},
                    key=lambda t: (suite_sort_key(t[0]), t[1]))
    for s, label in labels:
        lacking = [a for a in algos if not ((s, label, a) in groups and len(groups[(s, label, a)].finished))]
        if lacking:
            excluded.append((label, f"no finished run of {', '.join(lacking)}"))
        else:
            tasks.append((s, label))
    scores, truncated = {}, []
    for a in algos:
        if not tasks:
            break
        cols = [groups[(s, label, a)].scores for s, label in tasks]
        n = min(len(c) for c in cols)
        for (s, label), c in zip(tasks, cols):
            if len(c) > n:
                truncated.append((a, label, [r.get("seed") for r in groups[(s, label, a)].finished[n:]]))
        scores[a] = np.stack([c[:n] for c in cols], axis=1) / 100.0
    return ScoreSet([t[1] if suite else f"{t[0]}/{t[1]}" for t in tasks], scores, excluded, truncated)


# --------------------------------------------------------------------------------------------------
# Learning curves

def curve_points(rec: dict) -> list[tuple[float, str, float]]:
    """(x, phase, score) of a record's curve; x is gradient steps, continued after the offline phase if
    the online phase counts its steps from zero."""
    pts, offset, last_offline = [], 0.0, None
    for p in rec.get("curve") or []:
        phase = p.get("phase", "offline")
        x = float(p.get("step", 0))
        if phase == "offline":
            last_offline = x
        elif last_offline is not None and offset == 0.0 and x <= last_offline:
            offset = last_offline
        score = p.get("score")
        pts.append((x + (offset if phase != "offline" else 0.0), phase,
                    float("nan") if score is None else float(score)))
    return pts


@dataclasses.dataclass
class Curve:
    steps: np.ndarray
    point: np.ndarray       # IQM over runs (x tasks)
    low: np.ndarray
    high: np.ndarray
    online_from: float | None
    runs: int


def curve_matrix(recs_per_task: list[list[dict]]) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(runs x tasks x steps) scores on the steps common to every run of every task."""
    per_task = [[curve_points(r) for r in recs] for recs in recs_per_task]
    common = None
    online_from = None
    for task in per_task:
        for pts in task:
            xs = {x for x, _, _ in pts}
            common = xs if common is None else common & xs
            on = [x for x, ph, _ in pts if ph != "offline"]
            if on:
                online_from = min(on) if online_from is None else min(online_from, min(on))
    steps = np.array(sorted(common or ()))
    n = min(len(t) for t in per_task)
    out = np.full((n, len(per_task), len(steps)), np.nan)
    for j, task in enumerate(per_task):
        for i, pts in enumerate(task[:n]):
            d = {x: s for x, _, s in pts}
            out[i, j] = [d[x] for x in steps]
    return out, steps, online_from


def learning_curve(recs_per_task: list[list[dict]], reps: int, seed: int = 0) -> Curve | None:
    mat, steps, online_from = curve_matrix(recs_per_task)
    if len(steps) == 0 or mat.shape[0] == 0 or not np.all(np.isfinite(mat)):
        return None
    point, ci = interval_estimates({"c": mat}, iqm_per_step, reps, seed)
    return Curve(steps, point["c"], ci["c"][0], ci["c"][1], online_from, mat.shape[0])


def learning_curves(groups: dict, suites, algos, datasets, reps: int, seed: int = 0) -> dict:
    """{suite: {panel: {algo: Curve}}}; panel is a dataset label or ``"<suite> (IQM over datasets)"``."""
    out = {}
    for s in suites:
        panels = {}
        for label in datasets[s]:
            panel = {}
            for a in algos:
                g = groups.get((s, label, a))
                if g is not None and g.finished:
                    c = learning_curve([g.finished], reps, seed)
                    if c is not None:
                        panel[a] = c
            if panel:
                panels[label] = panel
        if len(datasets[s]) > 1:
            agg = {}
            for a in algos:
                per_task = [groups[(s, lb, a)].finished for lb in datasets[s]
                            if (s, lb, a) in groups and groups[(s, lb, a)].finished]
                if len(per_task) == len(datasets[s]):
                    c = learning_curve(per_task, reps, seed)
                    if c is not None and len(c.steps) > 0:
                        agg[a] = c
            if agg:
                panels = {f"{s} (IQM over {len(datasets[s])} datasets)": agg, **panels}
        if panels:
            out[s] = panels
    return out


# --------------------------------------------------------------------------------------------------
# Tables

@dataclasses.dataclass
class Table:
    name: str                    # file stem
    title: str
    columns: list
    rows: list                   # list of lists of str
    bold: set = dataclasses.field(default_factory=set)   # (row, col)
    notes: list = dataclasses.field(default_factory=list)
    tidy: list | None = None     # rows (dicts) for the CSV; default: the cells
    rules: set = dataclasses.field(default_factory=set)  # row indices with a rule above them
    numeric: bool = True         # right-align every column but the first

    def md(self) -> str:
        def cell(i, j, v):
            return f"**{v}**" if (i, j) in self.bold and v else v.replace("|", "\\|")
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join(" --- " if j == 0 or not self.numeric else " ---: " for j in range(len(self.columns)))
                 + "|"]
        lines += ["| " + " | ".join(cell(i, j, v) for j, v in enumerate(row)) + " |" for i, row in enumerate(self.rows)]
        if not self.rows:
            lines = lines[:2]
        lines += [""] + [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        return "\n".join(lines)

    def html(self) -> str:
        def cell(i, j, v):
            v = html.escape(v)
            return f"<td><b>{v}</b></td>" if (i, j) in self.bold and v else f"<td>{v}</td>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(f"<tr{' class=rule' if i in self.rules else ''}>" + "".join(cell(i, j, v) for j, v in enumerate(r))
                       + "</tr>" for i, r in enumerate(self.rows))
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        if not self.rows:
            return f"<h3 id='{self.name}'>{html.escape(self.title)}</h3><ul class=notes>{notes}</ul>"
        return (f"<h3 id='{self.name}'>{html.escape(self.title)}</h3><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>" + (f"<ul class=notes>{notes}</ul>" if notes else ""))

    def tex(self) -> str:
        def cell(i, j, v):
            v = tex_escape(v)
            return f"\\textbf{{{v}}}" if (i, j) in self.bold and v else v
        spec = "l" + "r" * (len(self.columns) - 1)
        lines = ["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{tex_escape(self.title)}}}",
                 f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
                 " & ".join(tex_escape(c) for c in self.columns) + " \\\\", "\\midrule"]
        for i, row in enumerate(self.rows):
            if i in self.rules and i > 0:
                lines.append("\\midrule")
            lines.append(" & ".join(cell(i, j, v) for j, v in enumerate(row)) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        if self.notes:
            lines.append("\\par\\footnotesize " + " ".join(tex_escape(n) for n in self.notes))
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            if self.tidy is not None:
                keys = list(self.tidy[0]) if self.tidy else ["empty"]
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(self.tidy)
            else:
                w = csv.writer(f)
                w.writerow(self.columns)
                w.writerows(self.rows)


def tex_escape(s: str) -> str:
    s = str(s)
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"),
                 ("$", "\\$"), ("{", "\\{"), ("}", "\\}")):
        s = s.replace(a, b)
    return (s.replace("±", "$\\pm$").replace("→", "$\\rightarrow$").replace("≥", "$\\geq$")
            .replace("×", "$\\times$").replace("†", "$^\\dagger$"))


def fmt(x, digits=1) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def mean_std(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.std(x))


def per_dataset_table(groups, suites, algos, datasets) -> Table:
    """IQL-paper Table 1 layout: datasets x algorithms, mean ± std over seeds, suite totals and averages."""
    rows, bold, tidy, rules = [], set(), [], set()
    most = max(len(g.finished) for g in groups.values()) if groups else 0
    dagger = False
    for s in suites:
        rules.add(len(rows))
        sums = {a: [] for a in algos}
        for label in datasets[s]:
            row, means = [label], {}
            for a in algos:
                g = groups.get((s, label, a))
                sc = g.scores if g is not None else np.array([])
                if len(sc):
                    m, sd = mean_std(sc)
                    means[a] = m
                    sums[a].append(m)
                    mark = "†" if len(sc) < most else ""
                    dagger |= bool(mark)
                    row.append(f"{m:.1f} ± {sd:.1f}{mark}")
                else:
                    row.append("–")
                tidy.append({"suite": s, "dataset": g.dataset if g else strip_rebuilt(label),
                             "data": "rebuilt" if strip_rebuilt(label) != label else "original", "algo": a,
                             "n_seeds": len(sc), "seeds": " ".join(str(r.get("seed")) for r in g.finished) if g else "",
                             "mean": fmt(float(np.mean(sc)), 4) if len(sc) else "",
                             "std": fmt(float(np.std(sc)), 4) if len(sc) else "", "best": False})
            _mark_best(rows, row, means, algos, bold, tidy[-len(algos):])
            rows.append(row)
        n = len(datasets[s])
        complete = {a: len(v) == n for a, v in sums.items()}
        for what, f in (("total", sum), ("average", lambda v: sum(v) / len(v))):
            row, vals = [f"{s} {what}"], {}
            for a in algos:
                v = sums[a]
                if not v:
                    row.append("–")
                    continue
                x = f(v)
                if complete[a]:
                    vals[a] = x
                row.append(f"{x:.1f}" + ("" if complete[a] else f" ({len(v)}/{n})"))
            _mark_best(rows, row, vals, algos, bold, None)
            if what == "total":
                rules.add(len(rows))
            rows.append(row)
    notes = ["Final D4RL-normalised score, mean ± standard deviation over seeds (numpy std, ddof=0); only "
             "finished, non-diverged runs. Best mean per row in bold.",
             "A total/average marked (k/n) covers only k of the suite's n datasets and is not ranked.",
             "'(rebuilt …)': dataset rebuilt by `offbench data build`, normalised with its own reference returns; "
             "not comparable with published D4RL scores."]
    if dagger:
        notes.append(f"†: fewer seeds than the {most} of the best-covered cell (see 'Runs not averaged').")
    return Table("per_dataset", "Final normalised score per dataset", ["Dataset"] + algos, rows, bold, notes, tidy, rules)


def _mark_best(rows, row, means, algos, bold, tidy_rows):
    if not means:
        return
    best = max(means.values())
    for j, a in enumerate(algos):
        if a in means and means[a] >= best - 1e-9:
            bold.add((len(rows), j + 1))
            if tidy_rows is not None:
                tidy_rows[j]["best"] = True


def aggregates_table(results: dict) -> Table:
    """results: {scope: (ScoreSet, point, interval)}"""
    rows, tidy, rules = [], [], set()
    for scope, (ss, point, ci) in results.items():
        rules.add(len(rows))
        for a in ss.scores:
            row = [scope, a, str(ss.scores[a].shape[0]), str(len(ss.tasks))]
            for m, name in enumerate(METRICS):
                row.append(f"{point[a][m]:.3f} [{ci[a][0][m]:.3f}, {ci[a][1][m]:.3f}]")
                tidy.append({"scope": scope, "algo": a, "metric": name, "point": f"{point[a][m]:.6f}",
                             "ci_low": f"{ci[a][0][m]:.6f}", "ci_high": f"{ci[a][1][m]:.6f}",
                             "runs_per_task": ss.scores[a].shape[0], "tasks": len(ss.tasks)})
            rows.append(row)
    notes = ["Normalised score / 100 (rliable convention): IQM, median and mean (higher is better) and optimality "
             "gap (lower is better) over runs x datasets, with 95% stratified-bootstrap percentile CIs.",
             "Each scope uses only datasets on which every algorithm has finished runs; per algorithm the same "
             "number of runs per dataset (see notes below the figures for what was left out)."]
    return Table("aggregates", "Aggregate metrics (rliable) with 95% CIs",
                 ["Scope", "Algorithm", "Runs/dataset", "Datasets"] + [f"{m} [95% CI]" for m in METRICS],
                 rows, set(), notes, tidy, rules)


def poi_table(results: dict) -> Table:
    rows, tidy = [], []
    for scope, (point, ci) in results.items():
        for pair in point:
            x, y = pair.split(",")
            p, lo, hi = float(np.squeeze(point[pair])), float(np.squeeze(ci[pair][0])), float(np.squeeze(ci[pair][1]))
            rows.append([scope, x, y, f"{p:.3f} [{lo:.3f}, {hi:.3f}]"])
            tidy.append({"scope": scope, "x": x, "y": y, "p_x_better": f"{p:.6f}", "ci_low": f"{lo:.6f}",
                         "ci_high": f"{hi:.6f}"})
    return Table("probability_of_improvement", "Probability of improvement P(X > Y)",
                 ["Scope", "X", "Y", "P(X > Y) [95% CI]"], rows, set(),
                 ["Mann-Whitney U statistic per dataset averaged over datasets (rliable), stratified independent "
                  "bootstrap 95% CIs. P > 0.5 with a CI above 0.5: X is likely better than Y."], tidy)


def finetune_table(groups, suites, algos, datasets) -> Table | None:
    rows, tidy = [], []
    for s in suites:
        for label in datasets[s]:
            for a in algos:
                g = groups.get((s, label, a))
                if g is None:
                    continue
                recs = [r for r in g.finished if r.get("online_score") is not None]
                if not recs:
                    continue
                vals = {}
                for k in ("offline_score", "online_score", "regret"):
                    x = np.array([float(r[k]) for r in recs if r.get(k) is not None and math.isfinite(float(r[k]))])
                    vals[k] = (float(x.mean()), float(x.std())) if len(x) else None
                cell = lambda v, d=1: "–" if v is None else f"{v[0]:.{d}f} ± {v[1]:.{d}f}"
                off, on = vals["offline_score"], vals["online_score"]
                rows.append([label, a, str(len(recs)), f"{cell(off)} → {cell(on)}",
                             "–" if off is None or on is None else f"{on[0] - off[0]:+.1f}", cell(vals["regret"], 3)])
                tidy.append({"suite": s, "dataset": label, "algo": a, "n_seeds": len(recs),
                             **{f"{k}_{st}": ("" if vals[k] is None else f"{vals[k][i]:.6f}")
                                for k in vals for i, st in enumerate(("mean", "std"))}})
    if not rows:
        return None
    return Table("offline_to_online", "Offline → online fine-tuning",
                 ["Dataset", "Algorithm", "Seeds", "offline → online (mean ± std)", "Δ", "regret (mean ± std)"],
                 rows, set(), ["Scores after the offline phase and at the end of online fine-tuning (records' "
                               "offline_score / online_score); regret as recorded by the run."], tidy)


def issues_table(issues: list[dict]) -> Table:
    order = {"unfinished": 0, "diverged": 1, "no score": 2, "missing seeds": 3, "missing run": 4, "unreadable": 5}
    issues = sorted(issues, key=lambda i: (order.get(i["kind"], 9), i["suite"], i["dataset"], i["algo"], str(i["seed"])))
    rows = [[i["kind"], i["suite"], i["dataset"], i["algo"], "" if i["seed"] in (None, "") else str(i["seed"]),
             i["detail"], i["path"]] for i in issues]
    return Table("not_averaged", "Runs not averaged (unfinished, diverged, missing)",
                 ["Kind", "Suite", "Dataset", "Algorithm", "Seed", "Detail", "Record"], rows, set(),
                 [] if rows else ["None: every dataset x algorithm has the same number of finished seeds."],
                 [{k: i[k] for k in ("kind", "suite", "dataset", "algo", "seed", "detail", "path")} for i in issues]
                 if issues else None, numeric=False)


# --------------------------------------------------------------------------------------------------
# Published reference numbers

def canon(name: str) -> str:
    """Method names compared across sources: lower-case letters and digits ('TD3+BC' -> 'td3bc')."""
    s = re.sub(r"[^a-z0-9]", "", name.lower())
    return {"bc10": "10bc", "percentbc": "10bc", "filteredbc": "10bc", "onesteprl": "onestep"}.get(s, s)


def base_name(dataset: str) -> str:
    return re.sub(r"-v\d+$", "", dataset)


def reference_dir(option: str | None, results: Path) -> Path:
    if option:
        p = Path(option)
        if not (p / "published_scores.csv").exists():
            raise OffbenchError(f"--reference-dir {p} has no published_scores.csv")
        return p
    for p in (results / "reference", Path("results") / "reference"):
        if (p / "published_scores.csv").exists():
            return p
    from offbench.resources import reference_dir as packaged
    return packaged()


def load_reference(folder: Path) -> tuple[list[dict], dict]:
    with open(folder / "published_scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = {}
    if (folder / "sources.csv").exists():
        with open(folder / "sources.csv", newline="") as f:
            labels = {r["source"]: r for r in csv.DictReader(f)}
    return rows, labels


def reference_tables(groups, suites, algos, datasets, ref_rows, labels) -> list[Table]:
    """One table per source with its own numbers for the report's datasets, and one side-by-side table
    (offbench on original data | offbench on rebuilt data | each source) per algorithm x dataset."""
    ours = {canon(a): a for a in algos}
    by_source = defaultdict(list)
    for r in ref_rows:
        by_source[r["source"]].append(r)
    labels_ = [(s, lb) for s in suites for lb in datasets[s]]
    names = sorted({strip_rebuilt(lb) for _, lb in labels_})
    tables = []

    def match(rows, name):
        exact = [r for r in rows if r["dataset"] == name]
        return exact or [r for r in rows if base_name(r["dataset"]) == base_name(name)]

    def cell(r, with_version_of=None):
        v = f"{float(r['score']):.1f}" + (f" ± {float(r['std']):.1f}" if r.get("std") else "")
        if with_version_of and r["dataset"] != with_version_of:
            v += f" [{r['dataset'][len(base_name(r['dataset'])) + 1:]}]"
        return v

    for src, rows in by_source.items():
        title = labels.get(src, {}).get("label", src)
        cite = labels.get(src, {}).get("citation", src)
        finetune = any(r["phase"] == "online" for r in rows)
        methods = list(dict.fromkeys(r["method"] for r in rows))
        out = []
        for name in names:
            m = match(rows, name)
            if not m:
                continue
            ds = m[0]["dataset"]
            vals = {(r["method"], r["phase"]): r for r in m if r["dataset"] == ds}
            row = [ds]
            for k in methods:
                off, on = vals.get((k, "offline")), vals.get((k, "online"))
                if finetune:
                    row.append(f"{cell(off) if off else '?'} → {cell(on) if on else '?'}" if off or on else "–")
                else:
                    row.append(cell(off) if off else "–")
            out.append(row)
        if not out:
            continue
        cols = ["Dataset (as published)"] + [f"{k} ✓" if canon(k) in ours else k for k in methods]
        what = " (offline → after online fine-tuning)" if finetune and "fine-tuning" not in title else ""
        tables.append(Table(f"reference_{src}", f"Published: {title}{what}", cols, out, set(),
                            [f"Source: {cite}. Published numbers, not offbench runs. ✓: an algorithm in this "
                             "report."], [dict(zip(cols, r), source=src) for r in out]))
    # side by side: offline scores; then offline -> online scores
    off_srcs = [s for s in by_source if not any(r["phase"] == "online" for r in by_source[s])]
    ft_srcs = [s for s in by_source if s not in off_srcs]
    side = []
    for kind, srcs in (("offline", off_srcs), ("finetune", ft_srcs)):
        rows, tidy = [], []
        for s, lb in labels_:
            for a in algos:
                g = groups.get((s, lb, a))
                if g is None or not len(g.scores):
                    continue
                if kind == "offline":
                    m, sd = mean_std(g.scores)
                    mine = f"{m:.1f} ± {sd:.1f} (n={len(g.scores)})"
                else:
                    recs = [r for r in g.finished if r.get("online_score") is not None and r.get("offline_score") is not None]
                    if not recs:
                        continue
                    off = np.array([float(r["offline_score"]) for r in recs])
                    on = np.array([float(r["online_score"]) for r in recs])
                    mine = f"{off.mean():.1f} ± {off.std():.1f} → {on.mean():.1f} ± {on.std():.1f} (n={len(recs)})"
                row = [g.dataset, a, "" if g.rebuilt else mine, mine if g.rebuilt else ""]
                for src in srcs:
                    cand = [r for r in match(by_source[src], g.dataset) if canon(r["method"]) == canon(a)]
                    off = [r for r in cand if r["phase"] == "offline"]
                    on = [r for r in cand if r["phase"] == "online"]
                    if kind == "offline":
                        row.append(cell(off[0], g.dataset) if off else "")
                    else:
                        row.append(f"{cell(off[0]) if off else '?'} → {cell(on[0], g.dataset) if on else '?'}"
                                   if off or on else "")
                if kind == "finetune" and not any(row[4:]) and not row[2] and not row[3]:
                    continue
                rows.append(row)
                tidy.append({"dataset": g.dataset, "algo": a, "offbench_original": row[2], "offbench_rebuilt": row[3],
                             **{src: v for src, v in zip(srcs, row[4:])}})
        if not rows:
            continue
        used = [k for k in range(len(srcs)) if any(r[4 + k] for r in rows)]  # sources with a number here
        rows = [r[:4] + [r[4 + k] for k in used] for r in rows]
        srcs = [srcs[k] for k in used]
        tidy = [{k: v for k, v in t.items() if k in ("dataset", "algo", "offbench_original", "offbench_rebuilt")
                 or k in srcs} for t in tidy]
        cols = ["Dataset", "Algorithm", "offbench, original data", "offbench, REBUILT data (not comparable)"] + \
               [f"published: {labels.get(s, {}).get('label', s)}" for s in srcs]
        name, title = (("reference_side_by_side", "offbench beside published numbers (offline)") if kind == "offline"
                       else ("reference_finetune_side_by_side", "offbench beside published numbers (offline → online)"))
        side.append(Table(name, title, cols, rows, set(), [
            "offbench's own scores (finished seeds, mean ± std) in the first two columns: runs on the original D4RL "
            "data and runs on datasets rebuilt by `offbench data build` are never in the same column. The other "
            "columns are published numbers, one column per source; [vN] marks a published dataset version that "
            "differs from offbench's."], tidy))
    return side + tables


# --------------------------------------------------------------------------------------------------
# The report

@dataclasses.dataclass
class Options:
    results: Path
    out: Path
    formats: tuple
    suites: tuple = ()
    algos: tuple = ()
    datasets: tuple = ()
    target: str | None = None  # None: iql when present
    pairs: tuple = ()
    reps: int = 2000
    seed: int = 0
    reference: bool = False
    reference_dir: str | None = None


def parse_formats(text: str) -> tuple:
    fs = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in fs if f not in FORMATS]
    if bad or not fs:
        raise OffbenchError(f"unknown --format {', '.join(bad) or repr(text)}; choose from {','.join(FORMATS)}")
    return fs


def parse_pairs(pairs, algos) -> list[tuple[str, str]]:
    out = []
    for p in pairs:
        parts = re.split(r"[,:]", p)
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise OffbenchError(f"--pair {p!r}: write two different algorithms as X,Y (probability that X beats Y)")
        unknown = [x for x in parts if x not in algos]
        if unknown:
            raise OffbenchError(f"--pair {p!r}: no finished runs of {', '.join(unknown)} in this report; "
                                f"algorithms: {', '.join(algos)}")
        out.append((parts[0], parts[1]))
    return out


def build(opts: Options, say=lambda m: None) -> dict:
    """Write the report; returns {'files': [...], 'issues': [...], ...}."""
    if opts.reps < 1:
        raise OffbenchError("--reps must be at least 1 (bootstrap replications; 2000 is a good default)")
    skip = [opts.results / "reference", opts.out]
    groups, issues = collect(opts.results, opts.suites, opts.algos, opts.datasets, skip)
    suites, algos, datasets = ordered(groups)
    pairs = parse_pairs(opts.pairs, algos)
    target = opts.target or ("iql" if "iql" in algos else None)
    if target is not None and target not in algos:
        raise OffbenchError(f"--target {target}: no records of it in this report; algorithms: {', '.join(algos)}")
    if target is not None:
        pairs = [(target, a) for a in algos if a != target] + pairs
    pairs = list(dict.fromkeys(pairs))
    reference = load_reference(reference_dir(opts.reference_dir, opts.results)) if opts.reference else None
    opts.out.mkdir(parents=True, exist_ok=True)
    from offbench.report import plots

    tables = {"not_averaged": issues_table(issues), "per_dataset": per_dataset_table(groups, suites, algos, datasets)}
    figures = []        # (section, title, stem, notes)
    scopes = [(s, s) for s in suites] + ([("all suites", None)] if len(suites) > 1 else [])
    agg_results, poi_results, notes_by_scope = {}, {}, {}
    for scope, suite in scopes:
        ss = score_set(groups, algos, suite)
        notes = [f"{scope}: dataset {lb} left out of the aggregates ({why})" for lb, why in ss.excluded]
        notes += [f"{scope}: {a} on {lb}: seeds {dropped} left out so every dataset has the same number of runs"
                  for a, lb, dropped in ss.truncated]
        notes_by_scope[scope] = notes
        if not ss.scores:
            notes_by_scope[scope].append(f"{scope}: no dataset on which every algorithm has a finished run; "
                                         "no aggregates")
            continue
        say(f"aggregates for {scope}: {len(ss.tasks)} dataset(s), {len(ss.scores)} algorithm(s)")
        point, ci = aggregates(ss.scores, opts.reps, opts.seed)
        agg_results[scope] = (ss, point, ci)
        stem = f"aggregates_{_slug(scope)}"
        plots.interval_plot(point, ci, list(ss.scores), METRICS, opts.out / stem,
                            f"{scope}: {len(ss.tasks)} datasets")
        figures.append(("aggregates", f"Aggregate metrics, {scope}", stem, []))
        lo = min(0.0, float(min(v.min() for v in ss.scores.values())))
        taus = np.linspace(lo, max(1.0, float(max(v.max() for v in ss.scores.values())) * 1.05), 81)
        prof, prof_ci = performance_profiles(ss.scores, taus, opts.reps, opts.seed)
        stem = f"performance_profile_{_slug(scope)}"
        plots.profile_plot(prof, prof_ci, taus, opts.out / stem, f"Performance profile, {scope}")
        figures.append(("profiles", f"Performance profile, {scope}", stem, []))
        ps = [p for p in pairs if p[0] in ss.scores and p[1] in ss.scores]
        if ps:
            pp, pci = probability_of_improvement(ss.scores, ps, opts.reps, opts.seed)
            poi_results[scope] = (pp, pci)
            stem = f"probability_of_improvement_{_slug(scope)}"
            plots.poi_plot(pp, pci, opts.out / stem, f"Probability of improvement, {scope}")
            figures.append(("poi", f"Probability of improvement, {scope}", stem, []))
    if agg_results:
        tables["aggregates"] = aggregates_table(agg_results)
        tables["aggregates"].notes += [n for ns in notes_by_scope.values() for n in ns]
    else:
        issues_note = [n for ns in notes_by_scope.values() for n in ns]
        tables["per_dataset"].notes += issues_note
    if poi_results:
        tables["probability_of_improvement"] = poi_table(poi_results)
    curves = learning_curves(groups, suites, algos, datasets, opts.reps, opts.seed)
    for s, panels in curves.items():
        stem = f"learning_curves_{_slug(s)}"
        plots.curves_plot(panels, opts.out / stem, f"Learning curves, {s}")
        figures.append(("curves", f"Learning curves, {s}", stem,
                        ["IQM over seeds (first panel: over seeds x datasets) with 95% bootstrap bands; shaded "
                         "background: online fine-tuning."]))
    ft = finetune_table(groups, suites, algos, datasets)
    if ft is not None:
        tables["offline_to_online"] = ft
    ref_tables = reference_tables(groups, suites, algos, datasets, *reference) if reference else []
    files = write_outputs(opts, tables, ref_tables, figures, groups, algos, suites, datasets)
    return {"files": files, "issues": issues, "tables": tables, "reference_tables": ref_tables,
            "aggregates": agg_results, "poi": poi_results, "curves": curves, "figures": figures}


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_")


SECTIONS = (("not_averaged", None), ("per_dataset", None), ("aggregates", "aggregates"),
            (None, "profiles"), ("probability_of_improvement", "poi"), (None, "curves"), ("offline_to_online", None))

CSS = ("body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;"
       "margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child,th:first-child"
       "{text-align:left}tr.rule td{border-top:2px solid #333}img{max-width:100%;border:1px solid #eee}"
       ".notes{font-size:90%;color:#444}")


def write_outputs(opts, tables, ref_tables, figures, groups, algos, suites, datasets) -> list[Path]:
    out = opts.out
    files = []
    all_tables = list(tables.values()) + ref_tables
    for t in all_tables:
        if "csv" in opts.formats:
            t.write_csv(out / f"{t.name}.csv")
            files.append(out / f"{t.name}.csv")
        if "tex" in opts.formats:
            (out / f"{t.name}.tex").write_text(t.tex())
            files.append(out / f"{t.name}.tex")
    n_runs = sum(len(g.records) for g in groups.values())
    n_fin = sum(len(g.finished) for g in groups.values())
    summary = (f"{n_runs} run records ({n_fin} finished and averaged) under {opts.results}: suites "
               f"{', '.join(suites)}; algorithms {', '.join(algos)}; {sum(len(v) for v in datasets.values())} "
               f"dataset(s). Bootstrap: {opts.reps} replications, seed {opts.seed}.")
    headings = {"not_averaged": "Runs not averaged", "per_dataset": "Per-dataset scores", "aggregates":
                "Aggregate metrics (rliable)", "profiles": "Performance profiles", "poi": "Probability of improvement",
                "probability_of_improvement": "Probability of improvement", "curves": "Learning curves",
                "offline_to_online": "Offline → online"}
    md, ht = ["# offbench report", "", summary, ""], [f"<!doctype html><html><head><meta charset='utf-8'><title>offbench "
                                                       f"report</title><style>{CSS}</style></head><body>",
                                                       "<h1>offbench report</h1>", f"<p>{html.escape(summary)}</p>"]
    for tname, fsec in SECTIONS:
        t = tables.get(tname) if tname else None
        figs = [f for f in figures if f[0] == fsec] if fsec else []
        if t is None and not figs:
            continue
        head = headings[tname or fsec]
        md += [f"## {head}", ""]
        ht.append(f"<h2>{html.escape(head)}</h2>")
        if t is not None:
            md.append(t.md())
            ht.append(t.html())
        for _, title, stem, notes in figs:
            md += [f"**{title}** ([PDF]({stem}.pdf))", "", f"![{title}]({stem}.png)", ""]
            md += [f"- {n}" for n in notes] + ([""] if notes else [])
            ht.append(f"<figure><img src='{stem}.png' alt='{html.escape(title)}'><figcaption>{html.escape(title)} "
                      f"(<a href='{stem}.pdf'>PDF</a>)</figcaption></figure>")
            if notes:
                ht.append("<ul class=notes>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if ref_tables:
        head = "Published reference numbers (not offbench runs)"
        md += [f"## {head}", ""] + [t.md() for t in ref_tables]
        ht.append(f"<h2>{head}</h2>" + "".join(t.html() for t in ref_tables))
    ht.append("</body></html>")
    if "md" in opts.formats:
        (out / "README.md").write_text("\n".join(md) + "\n")
        files.append(out / "README.md")
        for t in all_tables:
            (out / f"{t.name}.md").write_text(t.md() + "\n")
            files.append(out / f"{t.name}.md")
    if "html" in opts.formats:
        (out / "index.html").write_text("\n".join(ht) + "\n")
        files.append(out / "index.html")
    for _, _, stem, _ in figures:
        files += [out / f"{stem}.png", out / f"{stem}.pdf"]
    (out / "report.json").write_text(json.dumps({"summary": summary, "files": [str(f.name) for f in files]}, indent=1))
    return files


# --------------------------------------------------------------------------------------------------
# The command

def _split(values) -> tuple:
    return tuple(v.strip() for x in values for v in x.split(",") if v.strip())


@click.command("report")
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Results folder written by `offbench run`.")
@click.option("--suite", "suites", multiple=True, help="Only these suites (repeatable or comma-separated).")
@click.option("--algos", "algos", multiple=True, help="Only these algorithms (repeatable or comma-separated).")
@click.option("--datasets", "datasets", multiple=True, help="Only these datasets (repeatable or comma-separated).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder  [default: RESULTS/report]")
@click.option("--format", "formats", default=",".join(FORMATS), show_default=True,
              help="Comma-separated output formats: md, csv, tex, html (figures are always PNG and PDF).")
@click.option("--target", default=None,
              help="Probability of improvement of this algorithm over every other one  [default: iql]")
@click.option("--pair", "pairs", multiple=True, metavar="X,Y", help="Also P(X > Y) for this pair; repeatable.")
@click.option("--reps", default=2000, show_default=True, type=int, help="Bootstrap replications for the CIs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed of the bootstrap.")
@click.option("--reference", is_flag=True, help="Add published numbers (IQL paper, CORL) in separate, labelled tables.")
@click.option("--reference-dir", default=None, type=click.Path(file_okay=False),
              help="Folder with published_scores.csv  [default: results/reference]")
def report_command(results, suites, algos, datasets, out, formats, target, pairs, reps, seed, reference, reference_dir):
    """Tables, rliable aggregates (IQM, median, mean, optimality gap with bootstrap CIs), performance
    profiles, probability of improvement and learning curves from the run records under RESULTS."""
    import matplotlib

    matplotlib.use("Agg")
    results = Path(results)
    opts = Options(results=results, out=Path(out) if out else results / "report", formats=parse_formats(formats),
                   suites=_split(suites), algos=_split(algos), datasets=_split(datasets), target=target,
                   pairs=tuple(pairs), reps=reps, seed=seed, reference=reference,
                   reference_dir=reference_dir)
    res = build(opts, say=lambda m: click.echo(m, err=True))
    listed = [i for i in res["issues"]]
    for i in listed:
        click.echo(f"not averaged: {i['kind']}: {i['suite']} {i['dataset']} {i['algo']}"
                   + (f" seed {i['seed']}" if i["seed"] not in (None, "") else "") + f" ({i['detail']})", err=True)
    main = opts.out / ("index.html" if "html" in opts.formats else "README.md")
    click.echo(f"report: {len(res['files'])} files in {opts.out}" + (f"; open {main}" if main.exists() else ""))
