"""10%BC -- filtered behavioural cloning: BC on the transitions of the best episodes.

``preprocess`` ranks the dataset's episodes (boundaries from ``episode_ends``) by their undiscounted return
on the dataset's *own* rewards (``dataset_rewards``, handed over by the pipeline before any training
reward transform, so AntMaze's r - 1 cannot promote short episodes) and keeps the best of them; the
update is BC's, unchanged. Two selection rules (``filter_rule``):

  timesteps (default) -- Decision Transformer's %BC (kzl/decision-transformer, gym/experiment.py, pct_traj):
      budget = max(int(fraction * N_timesteps), 1); the best episode is always kept, then the next best
      are added while the kept timesteps stay <= budget (stopping at the first that does not fit).
      The IQL paper's 10%BC column (Table 1) comes from this rule.
  episodes -- CORL's BC-10 (algorithms/offline/any_percent_bc.py, keep_best_trajectories):
      the top max(1, int(fraction * N_episodes)) episodes by return.

Ties are broken by dataset order (earlier episode first).
"""

from __future__ import annotations

import numpy as np
from offbench.algorithms.bc import DEFAULT_CONFIG as BC_CONFIG
from offbench.algorithms.bc import RANGES as BC_RANGES
from offbench.algorithms.bc import make as make_bc

from offbench.data.loaders import episode_ids, episode_returns
from offbench.errors import OffbenchError
from offbench.registry import register

DEFAULT_CONFIG = {
    **BC_CONFIG,
    "fraction": 0.1,  # DT %BC / IQL Table 1: 10%
    "filter_rule": "timesteps",  # DT gym/experiment.py (timesteps); "episodes": CORL any_percent_bc.py
}
RANGES = {**BC_RANGES, "fraction": "(0, 1]"}  # DT %BC: a fraction of the data
FILTER_RULES = ("timesteps", "episodes")


def top_episodes_mask(
    rewards: np.ndarray, episode_ends: np.ndarray, fraction: float, rule: str = "timesteps"
) -> np.ndarray:
    """Boolean mask over transitions: True for the transitions of the kept best episodes."""
    if not 0.0 < fraction <= 1.0:
        raise OffbenchError(f"fraction must be in (0, 1], got {fraction}; set e.g. --set fraction=0.1")
    if rule not in FILTER_RULES:
        raise OffbenchError(f"filter_rule must be one of {', '.join(FILTER_RULES)}, got {rule!r}")
    returns = episode_returns(rewards, episode_ends)
    best_first = np.argsort(-returns, kind="stable")
    ids = episode_ids(episode_ends)
    if rule == "episodes":
        keep = best_first[: max(1, int(fraction * len(returns)))]
    else:
        lengths = np.bincount(ids, minlength=len(returns))[best_first]
        budget = max(int(fraction * len(rewards)), 1)
        fits = np.cumsum(lengths)[1:] <= budget  # monotone: once over the budget, it stays over
        keep = best_first[: 1 + int(fits.sum())]
    return np.isin(ids, keep)


def preprocess(data: dict, config: dict) -> dict:
    ranked = data.get("dataset_rewards", data["rewards"])
    mask = top_episodes_mask(ranked, data["episode_ends"], float(config["fraction"]), str(config["filter_rule"]))
    return {k: np.asarray(v)[mask] for k, v in data.items()}


register(
    "filtered_bc",
    make=make_bc,
    default_config=DEFAULT_CONFIG,
    preprocess=preprocess,
    finetune=False,
    description="10%BC: BC on the best episodes filling 10% of the timesteps (Decision Transformer's %BC)",
    ranges=RANGES,
)
