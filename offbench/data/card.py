"""The data card of a dataset (``offbench data info NAME``, ``scripts/data_card.py``): how close a rebuild is
to the data its D4RL name stands for.

Fields: transitions, episodes, episode lengths (mean / min / max), the fractions of transitions that are
terminals and that end an episode by a timeout/truncation, the fraction of rewarded steps (reward > 0), the
fraction of successful episodes (sparse-reward suites: an episode with a positive reward; Kitchen: all its
tasks done; none for dense-reward suites), and the behaviour's score: the mean episode return normalised with
the dataset's own reference returns and with D4RL's (``d4rl/infos.py``); success-scored suites (AntMaze,
pointmaze) score the behaviour as success fraction x 100.
"""

from __future__ import annotations

import json

import numpy as np

from offbench.data.loaders import Dataset


def _norm(ret: float, lo, hi):
    if lo is None or hi is None or hi == lo:
        return None
    return 100.0 * (ret - lo) / (hi - lo)


def card(ds: Dataset, task=None, suite=None) -> dict:
    """The data card of ``ds`` (``task``/``suite``: the suite's task of the same name, for D4RL's references)."""
    slices = ds.episode_slices()
    lengths = np.array([s.stop - s.start for s in slices])
    returns = ds.episode_returns()
    n = len(ds)
    term = ds.terminals > 0
    timeouts = ds.episode_ends & ~term
    score_kind = getattr(suite, "score", "return")
    success = None
    if suite is not None and suite.name in ("antmaze", "pointmaze", "maze2d"):
        success = float(np.mean([ds.rewards[s].max() > 0 for s in slices]))
    elif suite is not None and suite.name == "kitchen":
        n_tasks = len((task.env_kwargs or {}).get("tasks_to_complete", [])) if task is not None else 4
        success = float(np.mean([ds.rewards[s].max() >= n_tasks for s in slices]))
    meta = ds.metadata
    own = (meta.get("ref_min_score"), meta.get("ref_max_score"))
    d4rl = (task.ref_min_score, task.ref_max_score) if task is not None else (None, None)
    mean_ret = float(returns.mean())
    refs = meta.get("references")
    refs = json.loads(refs) if isinstance(refs, str) else (refs or {})
    out = {
        "transitions": int(n),
        "episodes": int(len(slices)),
        "episode_length_mean": float(lengths.mean()),
        "episode_length_min": int(lengths.min()),
        "episode_length_max": int(lengths.max()),
        "terminal_fraction": float(term.mean()),
        "timeout_fraction": float(timeouts.mean()),
        "rewarded_step_fraction": float((ds.rewards > 0).mean()),
        "success_fraction": success,
        "return_mean": mean_ret,
        "return_std": float(returns.std()),
        "score_own_refs": None,
        "score_d4rl_refs": None,
        "score_kind": score_kind,
        "ref_min_score": own[0],
        "ref_max_score": own[1],
        "d4rl_ref_min": d4rl[0],
        "d4rl_ref_max": d4rl[1],
        "ref_min_std": refs.get("ref_min_std"),
        "ref_max_std": refs.get("ref_max_std"),
        "ref_min_episodes": refs.get("ref_min_episodes"),
        "ref_max_episodes": refs.get("ref_max_episodes"),
        "recipe": meta.get("recipe"),
        "recipe_version": meta.get("recipe_version"),
    }
    if score_kind == "success" and success is not None:
        out["score_own_refs"] = out["score_d4rl_refs"] = 100.0 * success
    else:
        out["score_own_refs"], out["score_d4rl_refs"] = _norm(mean_ret, *own), _norm(mean_ret, *d4rl)
    return out


def _fmt(v, pct=False):
    if v is None:
        return "n/a"
    if pct:
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def format_card(name: str, c: dict) -> list[str]:
    """Human-readable lines of a card."""
    lines = [
        f"{name}" + (f" (recipe {c['recipe']} version {c['recipe_version']})" if c.get("recipe") else ""),
        f"  transitions        {c['transitions']:,}",
        f"  episodes           {c['episodes']:,}  (length mean {c['episode_length_mean']:.1f}, "
        f"min {c['episode_length_min']}, max {c['episode_length_max']})",
        f"  terminals          {_fmt(c['terminal_fraction'], True)} of transitions",
        f"  timeouts           {_fmt(c['timeout_fraction'], True)} of transitions",
        f"  rewarded steps     {_fmt(c['rewarded_step_fraction'], True)}",
        f"  successful eps     {_fmt(c['success_fraction'], True)}",
        f"  episode return     {c['return_mean']:,.1f} +- {c['return_std']:,.1f}",
    ]
    own = f"  behaviour score    {_fmt(c['score_own_refs'])} on its own references"
    if c["ref_min_score"] is not None:
        own += f" (random {c['ref_min_score']:,.1f}"
        if c.get("ref_min_std") is not None:
            own += f" +- {c['ref_min_std']:,.1f}, {c['ref_min_episodes']} eps"
        own += f"; expert {c['ref_max_score']:,.1f}"
        if c.get("ref_max_std") is not None:
            own += f" +- {c['ref_max_std']:,.1f}, {c['ref_max_episodes']} eps"
        own += ")"
    lines.append(own)
    lines.append(
        f"  behaviour score    {_fmt(c['score_d4rl_refs'])} on D4RL's references"
        + (f" ({c['d4rl_ref_min']:,.1f} / {c['d4rl_ref_max']:,.1f})" if c["d4rl_ref_min"] is not None else "")
    )
    return lines
