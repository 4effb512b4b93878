"""Statistics of the report, with rliable's own functions (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"): final normalised scores / 100, IQM, median, mean and optimality gap with
stratified-bootstrap 95% CIs, performance profiles, probability of improvement, and IQM learning curves.

Aggregates are taken per scope: a suite (or all suites), original and rebuilt data never together
(issue 13.8), offline rows and fine-tuning rows apart (a fine-tuning row never removes datasets from the
offline rows' aggregates, issue 19.1).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from offbench.report.collect import suite_sort_key

METRICS = ("IQM", "Median", "Mean", "Optimality gap")


def aggregate_func(scores: np.ndarray) -> np.ndarray:
    """IQM, median, mean and optimality gap of a (runs x tasks) matrix, with rliable's own functions."""
    from rliable import metrics

    return np.array(
        [
            metrics.aggregate_iqm(scores),
            metrics.aggregate_median(scores),
            metrics.aggregate_mean(scores),
            metrics.aggregate_optimality_gap(scores),
        ]
    )


class _Seeded:
    """numpy's global generator seeded for the call (rliable's stratified resampling draws from it) and restored
    afterwards; rliable's FutureWarnings (arch's random_state) silenced."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.warn = warnings.catch_warnings()
        self.warn.__enter__()
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        self.state = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc):
        np.random.set_state(self.state)
        self.warn.__exit__(*exc)


def interval_estimates(score_dict: dict, func, reps: int, seed: int = 0):
    """``rly.get_interval_estimates`` (stratified bootstrap, percentile 95% CIs), reproducible for ``seed``."""
    from rliable import library as rly

    with _Seeded(seed):
        return rly.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(seed))


def aggregates(score_dict: dict, reps: int, seed: int = 0):
    """Point estimates and CIs of :data:`METRICS` for each row's (runs x tasks) matrix (scores / 100)."""
    return interval_estimates(score_dict, aggregate_func, reps, seed)


def probability_of_improvement(score_dict: dict, pairs: list[tuple[str, str]], reps: int, seed: int = 0):
    """P(X > Y) with stratified independent bootstrap CIs, keyed ``"X,Y"``."""
    from rliable import metrics

    pair_dict = {f"{x},{y}": (score_dict[x], score_dict[y]) for x, y in pairs}
    return interval_estimates(pair_dict, metrics.probability_of_improvement, reps, seed)


def performance_profiles(score_dict: dict, taus: np.ndarray, reps: int, seed: int = 0):
    """Score distributions (fraction of runs with score > tau) with CIs, via ``rly.create_performance_profile``."""
    from rliable import library as rly

    with _Seeded(seed):
        return rly.create_performance_profile(score_dict, taus, reps=reps)


def iqm_per_step(scores: np.ndarray) -> np.ndarray:
    """IQM over runs x tasks at every step of a (runs x tasks x steps) array: ``metrics.aggregate_iqm`` of each
    step's slice, vectorised (one ``trim_mean`` call)."""
    from scipy.stats import trim_mean

    return np.atleast_1d(trim_mean(scores.reshape(-1, scores.shape[-1]), proportiontocut=0.25, axis=0))


# --------------------------------------------------------------------------------------------------
# Scopes and their score matrices


@dataclasses.dataclass(frozen=True)
class Scope:
    suite: str | None  # None: all suites
    rebuilt: bool
    finetune: bool

    @property
    def name(self) -> str:
        name = (self.suite or "all suites") + (" (rebuilt data)" if self.rebuilt else "")
        return name + (", offline → online" if self.finetune else "")

    @property
    def slug(self) -> str:
        return "_".join(
            [(self.suite or "all_suites")]
            + (["rebuilt"] if self.rebuilt else [])
            + (["online"] if self.finetune else [])
        )

    def holds(self, cell) -> bool:
        return (
            (self.suite is None or cell.suite == self.suite)
            and cell.rebuilt == self.rebuilt
            and cell.finetune == self.finetune
        )


def scopes(groups: dict) -> list[Scope]:
    """Each suite, and all suites when there are several; per data kind (original / rebuilt) and per family
    (offline / fine-tuning) present."""
    out = []
    for finetune in (False, True):
        for rebuilt in (False, True):
            suites = sorted(
                {c.suite for c in groups.values() if c.rebuilt == rebuilt and c.finetune == finetune},
                key=suite_sort_key,
            )
            out += [Scope(s, rebuilt, finetune) for s in suites]
            if len(suites) > 1:
                out.append(Scope(None, rebuilt, finetune))
    return out


@dataclasses.dataclass
class ScoreSet:
    """A rectangular score matrix per row over common tasks, and what was left out."""

    tasks: list
    scores: dict  # row -> (runs x tasks), normalised score / 100
    excluded: list  # (what, reason)
    truncated: list  # (row, task label, seeds dropped)


def score_set(groups: dict, scope: Scope, rows: list[str]) -> ScoreSet:
    """Final scores on the tasks every kept row has finished runs on. Rows and tasks are chosen to keep the most
    row x task cells (a row on few datasets is left out rather than removing datasets from every other row);
    a dataset rebuilt by an older recipe than another of its builds in the report is left out; each row uses
    the same number of runs on every task (its smallest count; the extra seeds are reported)."""
    cells = [c for c in groups.values() if scope.holds(c) and c.finished]
    newest = {}
    for c in cells:
        newest[(c.suite, c.dataset)] = max(newest.get((c.suite, c.dataset), -1), _version(c))
    old = sorted({c.task for c in cells if _version(c) < newest[(c.suite, c.dataset)]})
    excluded = [(t, "rebuilt by an older recipe than another build of it in this report") for t in old]
    cover = {r: {(c.suite, c.task) for c in cells if c.row == r and c.task not in old} for r in rows}
    keep = [r for r in rows if cover[r]]

    def size(rs):
        return len(rs) * len(set.intersection(*(cover[r] for r in rs))) if rs else 0

    gone = []
    while len(keep) > 1:  # greedily drop the row whose removal keeps the most row x task cells
        best = max(keep, key=lambda r: (size([k for k in keep if k != r]), -len(cover[r]), rows.index(r)))
        if size([k for k in keep if k != best]) <= size(keep):
            break
        keep.remove(best)
        gone.append(best)
    tasks = sorted(
        set.intersection(*(cover[r] for r in keep)) if keep else set(), key=lambda t: (suite_sort_key(t[0]), t[1])
    )
    all_tasks = sorted({(c.suite, c.task) for c in cells if c.task not in old})
    excluded += [(r, f"finished runs on {len(cover[r])} of the scope's {len(all_tasks)} datasets") for r in gone]
    excluded += [
        (t[1], f"no finished run of {', '.join(r for r in keep if t not in cover[r])}")
        for t in all_tasks
        if t not in tasks and keep
    ]
    scores, truncated = {}, []
    for r in keep if tasks else []:
        cols = [groups[(s, t, r)] for s, t in tasks]
        n = min(len(c.scores) for c in cols)
        for c in cols:
            if len(c.scores) > n:
                truncated.append((r, c.task, [x.get("seed") for x in c.finished[n:]]))
        scores[r] = np.stack([c.scores[:n] for c in cols], axis=1) / 100.0
    labels = [t[1] if scope.suite else f"{t[0]}/{t[1]}" for t in tasks]
    return ScoreSet(labels, scores, excluded, truncated)


def _version(cell) -> int:
    return -1 if cell.recipe_version is None else int(cell.recipe_version)


# --------------------------------------------------------------------------------------------------
# Learning curves


def curve_points(rec: dict) -> list[tuple[float, str, float]]:
    """(x, phase, score) of a record's curve; x is gradient steps, continued after the offline phase if the
    online phase counts its steps from zero."""
    pts, offset, last_offline = [], 0.0, None
    for p in rec.get("curve") or []:
        phase = p.get("phase", "offline")
        x = float(p.get("step", 0))
        if phase == "offline":
            last_offline = x
        elif last_offline is not None and offset == 0.0 and x <= last_offline:
            offset = last_offline
        score = p.get("score")
        pts.append(
            (x + (offset if phase != "offline" else 0.0), phase, float("nan") if score is None else float(score))
        )
    return pts


def offline_end(rec: dict) -> float | None:
    """Where a record's online phase begins: the end of its offline phase (``offline_steps``; else its last
    offline evaluation), not its first online evaluation (issue 19.8)."""
    if not any(p.get("phase", "offline") != "offline" for p in rec.get("curve") or []):
        return None
    if rec.get("offline_steps") is not None:
        return float(rec["offline_steps"])
    off = [x for x, ph, _ in curve_points(rec) if ph == "offline"]
    return max(off) if off else min(x for x, ph, _ in curve_points(rec) if ph != "offline")


@dataclasses.dataclass
class Curve:
    steps: np.ndarray
    point: np.ndarray  # IQM over runs (x tasks)
    low: np.ndarray
    high: np.ndarray
    online_from: float | None
    runs: int


def curve_matrix(recs_per_task: list[list[dict]]) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(runs x tasks x steps) scores at the steps every run of every task was evaluated at."""
    per_task = [[{x: s for x, _, s in curve_points(r)} for r in recs] for recs in recs_per_task]
    common = set.intersection(*(set(d) for task in per_task for d in task)) if per_task else set()
    ends = [e for recs in recs_per_task for e in map(offline_end, recs) if e is not None]
    steps = np.array(sorted(common))
    n = min(len(t) for t in per_task)
    out = np.full((n, len(per_task), len(steps)), np.nan)
    for j, task in enumerate(per_task):
        for i, d in enumerate(task[:n]):
            out[i, j] = [d[x] for x in steps]
    return out, steps, (min(ends) if ends else None)


def learning_curve(recs_per_task: list[list[dict]], reps: int, seed: int = 0) -> Curve | None:
    mat, steps, online_from = curve_matrix(recs_per_task)
    if len(steps) == 0 or mat.shape[0] == 0 or not np.all(np.isfinite(mat)):
        return None
    point, ci = interval_estimates({"c": mat}, iqm_per_step, reps, seed)
    return Curve(steps, point["c"], ci["c"][0], ci["c"][1], online_from, mat.shape[0])


def learning_curves(groups: dict, rows, reps: int, seed: int = 0) -> tuple[dict, list[str]]:
    """({scope: {panel: {row: Curve}}}, notes) per suite and data kind; a panel is a dataset or
    ``"<scope> (IQM over N datasets)"``. A row's datasets are pooled only where they were evaluated at the same
    steps (otherwise the pooled curve would shrink to the few common steps)."""
    out, notes = {}, []
    kinds = sorted({(c.suite, c.rebuilt) for c in groups.values()}, key=lambda k: (k[1], suite_sort_key(k[0])))
    for scope in [Scope(s, rebuilt, False) for s, rebuilt in kinds]:
        cells = [c for c in groups.values() if c.suite == scope.suite and c.rebuilt == scope.rebuilt and c.finished]
        tasks = sorted({c.task for c in cells})
        panels = {}
        for t in tasks:
            panel = {}
            for r in rows:
                c = groups.get((scope.suite, t, r))
                if c is not None and c.finished:
                    curve = learning_curve([c.finished], reps, seed)
                    if curve is not None:
                        panel[r] = curve
            if panel:
                panels[t] = panel
        agg = {}
        for r in rows if len(tasks) > 1 else []:
            per_task = [
                groups[(scope.suite, t, r)].finished
                for t in tasks
                if (scope.suite, t, r) in groups and groups[(scope.suite, t, r)].finished
            ]
            if len(per_task) != len(tasks):
                continue
            grids = {tuple(x for x, _, _ in curve_points(rec)) for recs in per_task for rec in recs}
            if len(grids) > 1:
                notes.append(f"{scope.name}: {r} has no pooled curve: its datasets were evaluated at different steps")
                continue
            curve = learning_curve(per_task, reps, seed)
            if curve is not None:
                agg[r] = curve
        if agg:
            panels = {f"{scope.name} (IQM over {len(tasks)} datasets)": agg, **panels}
        if panels:
            out[scope] = panels
    return out, notes
