"""The results as tidy pandas DataFrames (one observation per row, one variable per column), the shape
``pandas``/``seaborn``/``rliable`` take:

- :func:`curves_frame`: one row per run x seed x evaluation step (``offbench.results()``, the report's
  ``results_tidy.csv``); ``final`` marks the evaluation a finished run's score is (the headline), ``best`` the
  seed's highest evaluation (a different, optimistic number: CORL logs both; reported beside, never instead);
- :func:`runs_frame`: one row per run x seed: final and best score, wall time, training updates per second;
- :func:`rliable_scores`: ``{row: array (runs, datasets)}`` of final scores / 100, rliable's ``score_dict``.

Rows come from the report's cells (:mod:`offbench.report.collect`), so ``row`` names a run kind exactly as the
report does (``iql``, ``iql+online``, ``iql [expectile=0.8]``) and only comparable runs share it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from offbench.records.record import is_finished

CURVE_COLUMNS = (
    "row", "algorithm", "finetune", "variant", "suite", "dataset", "data", "data_label", "recipe_version",
    "preset", "seed", "status", "step", "phase", "env_steps", "score", "score_std", "return", "success",
    "episode_length", "final", "best", "eval_episodes", "steps", "online_steps", "wall_time_s", "train_s",
    "updates_per_s", "run_dir",
)  # fmt: skip
RUN_COLUMNS = (
    "row", "algorithm", "variant", "suite", "dataset", "data", "preset", "seed", "status", "final_score",
    "best_score", "best_step", "steps", "online_steps", "eval_episodes", "wall_time_s", "compile_s", "train_s",
    "updates_per_s", "run_dir",
)  # fmt: skip


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def updates(rec: dict) -> int:
    """Gradient updates of a record: its ``step`` (a fine-tuning run's counts offline and online updates)."""
    return int(rec.get("step") or 0)


def updates_per_s(rec: dict) -> float | None:
    """Training throughput: gradient updates per second of pure training time (``train_s``: neither
    compilation nor evaluation)."""
    t = _num(rec.get("train_s"))
    return round(updates(rec) / t, 1) if t else None


def best_point(rec: dict) -> dict | None:
    """The seed's highest finite evaluation (the first of equal ones)."""
    points = [p for p in rec.get("curve") or [] if _num(p.get("score")) is not None]
    return max(points, key=lambda p: p["score"]) if points else None


def _run_fields(c, rec: dict) -> dict:
    data = rec.get("data") or {}
    return {
        "row": c.row,
        "algorithm": c.algo,
        "finetune": c.finetune,
        "variant": c.variant,
        "suite": c.suite,
        "dataset": c.dataset,
        "data": data.get("kind") or ("rebuilt" if c.rebuilt else "original"),
        "data_label": c.data_label,
        "recipe_version": c.recipe_version,
        "preset": c.preset,
        "seed": rec.get("seed"),
        "status": rec.get("status"),
        "eval_episodes": c.episodes,
        "steps": c.steps,
        "online_steps": c.online_steps,
        "wall_time_s": _num(rec.get("elapsed_s")),
        "compile_s": _num(rec.get("compile_s")),
        "train_s": _num(rec.get("train_s")),
        "updates_per_s": updates_per_s(rec),
        "run_dir": rec.get("run_dir") or rec.get("path"),
    }


def _cells(groups: dict):
    for c in sorted(groups.values(), key=lambda c: (c.suite, c.task, c.row)):
        for rec in sorted(c.records, key=lambda r: r.get("seed", 0)):
            yield c, rec


def curves_frame(groups: dict) -> pd.DataFrame:
    """One row per run x seed x evaluation step (see the module)."""
    out = []
    for c, rec in _cells(groups):
        run = _run_fields(c, rec)
        curve = rec.get("curve") or []
        best = best_point(rec)
        finished = is_finished(rec)
        for i, p in enumerate(curve):
            out.append(
                {
                    **run,
                    "step": p.get("step"),
                    "phase": p.get("phase", "offline"),
                    "env_steps": p.get("env_steps"),
                    "score": _num(p.get("score")),
                    "score_std": _num(p.get("score_std")),
                    "return": _num(p.get("return_mean")),
                    "success": _num(p.get("success_rate")),
                    "episode_length": _num(p.get("episode_length")),
                    "final": finished and i == len(curve) - 1,
                    "best": p is best,
                }
            )
    return pd.DataFrame(out, columns=list(CURVE_COLUMNS))


def runs_frame(groups: dict) -> pd.DataFrame:
    """One row per run x seed: final score (finished runs only), best evaluation, wall time, updates/s."""
    out = []
    for c, rec in _cells(groups):
        best = best_point(rec)
        out.append(
            {
                **_run_fields(c, rec),
                "final_score": float(rec["final_score"]) if is_finished(rec) else None,
                "best_score": best["score"] if best else None,
                "best_step": best["step"] if best else None,
            }
        )
    return pd.DataFrame(out, columns=list(RUN_COLUMNS))


def rliable_scores(frame: pd.DataFrame, scale: float = 100.0) -> dict:
    """``{row: array (runs, datasets)}`` of the final scores / ``scale`` in a :func:`curves_frame`, for rliable's
    ``get_interval_estimates``: per row, only datasets where it has finished runs, and on each the same number
    of runs (the first seeds); rows without any dataset in common with the others are still returned."""
    final = frame[frame["final"]]
    out = {}
    for row, f in final.groupby("row", sort=False):
        per = {d: g.sort_values("seed")["score"].to_numpy() for d, g in f.groupby("dataset")}
        n = min(len(v) for v in per.values())
        out[row] = np.stack([per[d][:n] for d in sorted(per)], axis=1) / scale
    return out
