"""Writing a rebuilt dataset as a real Minari dataset, so it is read through the same Minari loader
a downloaded dataset goes through."""

from __future__ import annotations

import json
import warnings

import numpy as np

from offbench.data.staging import Staging


def write_minari(
    dataset_id: str,
    episodes: list[dict],
    env,
    eval_env=None,
    *,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    description: str = "",
    provenance: dict | None = None,
    algorithm_name: str = "offbench-rebuild",
    recipe: str | None = None,
    recipe_version: int | None = None,
    size: int | None = None,
    default_size: int | None = None,
    references: dict | None = None,
):
    """Create Minari dataset ``dataset_id`` (replacing an existing one) from in-memory episodes.

    Each episode is a dict with ``observations`` (T+1 rows, or a dict of such arrays for dict spaces),
    ``actions`` (T, act_dim), ``rewards``, ``terminations``, ``truncations`` (T,). ``env``/``eval_env``
    are Gymnasium ids, specs or environments. ``provenance`` (JSON-serialisable: policy files, recipe,
    seed, behaviour returns, ...) is stored in the dataset's metadata together with ``rebuilt: true``, the
    recipe's name and version (``recipe``, ``recipe_version``: ``offbench data list`` marks a dataset whose
    version is older than its recipe's as stale; runs record it), the size built and the recipe's default
    size (``size``, ``default_size``), and the reference returns' spread and episode counts (``references``,
    JSON).
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for i, ep in enumerate(episodes):
        obs = ep["observations"]
        obs = {k: _as_array(v) for k, v in obs.items()} if isinstance(obs, dict) else _as_array(obs)
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=obs,
                actions=np.asarray(ep["actions"], np.float32),
                rewards=np.asarray(ep["rewards"], np.float64),
                terminations=np.asarray(ep["terminations"], bool),
                truncations=np.asarray(ep["truncations"], bool),
                infos=ep.get("infos") or {},
            )
        )
    stage = Staging(dataset_id)  # written in a hidden stage, renamed into place: a killed build leaves nothing
    with warnings.catch_warnings(), stage.active():
        warnings.simplefilter("ignore")
        ds = minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            eval_env=eval_env if eval_env is not None else env,
            algorithm_name=algorithm_name,
            author="offbench",
            author_email="offbench@localhost",
            code_permalink="offbench (local rebuild)",
            description=description or f"{dataset_id}, rebuilt locally",
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
        )
    if recipe is None and dataset_id.startswith("rebuilt/"):  # every recipe's build carries its version
        from offbench.recipes.recipes import get_recipe

        rec = get_recipe(dataset_id.split("/", 1)[1])
        if rec is not None:
            recipe, recipe_version = rec.name, rec.version if recipe_version is None else recipe_version
            default_size = rec.default_size if default_size is None else default_size
    meta = {"rebuilt": True, "provenance": json.dumps(provenance or {}, default=str)}
    if recipe is not None:
        meta["recipe"] = str(recipe)
    if recipe_version is not None:
        meta["recipe_version"] = int(recipe_version)
    if size is not None:
        meta["recipe_size"] = int(size)
    if default_size is not None:
        meta["recipe_default_size"] = int(default_size)
    if references:
        meta["references"] = json.dumps(references, default=float)
    ds.storage.update_metadata(meta)
    stage.publish()
    return minari.load_dataset(dataset_id)


def _as_array(x):
    if isinstance(x, dict):
        return {k: _as_array(v) for k, v in x.items()}
    a = np.asarray(x)
    return a.astype(np.float32) if a.dtype == np.float64 else a
