"""10%BC -- filtered behavioural cloning: BC on the transitions of the best episodes.

``preprocess`` ranks the dataset's episodes (boundaries from ``episode_ends``) by their undiscounted
return and keeps the transitions of the top ``fraction`` of them (at least one episode; ties broken by
dataset order); the update is BC's, unchanged. Returns are computed on the rewards the pipeline hands
over (after the suite's reward transform: a positive scale keeps the ranking; AntMaze's r - 1 ranks
equally long episodes as the raw rewards do).
"""
from __future__ import annotations

import math

import numpy as np
from offbench.algorithms.bc import DEFAULT_CONFIG as BC_CONFIG
from offbench.algorithms.bc import make as make_bc

from offbench.data.loaders import episode_ids, episode_returns
from offbench.errors import OffbenchError
from offbench.registry import register

DEFAULT_CONFIG = {**BC_CONFIG, "fraction": 0.1}


def top_episodes_mask(rewards: np.ndarray, episode_ends: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask over transitions: True for the transitions of the top ``fraction`` of episodes."""
    if not 0.0 < fraction <= 1.0:
        raise OffbenchError(f"fraction must be in (0, 1], got {fraction}; set e.g. --set fraction=0.1")
    returns = episode_returns(rewards, episode_ends)
    keep = max(1, math.ceil(fraction * len(returns)))
    best = np.argsort(-returns, kind="stable")[:keep]
    return np.isin(episode_ids(episode_ends), best)


def preprocess(data: dict, config: dict) -> dict:
    mask = top_episodes_mask(data["rewards"], data["episode_ends"], float(config["fraction"]))
    return {k: np.asarray(v)[mask] for k, v in data.items()}


register("filtered_bc", make=make_bc, default_config=DEFAULT_CONFIG, preprocess=preprocess, finetune=False,
         description="10%BC: BC on the top 10% of episodes by return (fraction configurable)")
