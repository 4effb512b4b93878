"""Writing a rebuilt dataset as a real Minari dataset, so it is read through the same Minari loader
a downloaded dataset goes through: :func:`write` (a recipe's build, with its name, version, provenance and
reference returns in the metadata) on top of :func:`write_minari`."""

from __future__ import annotations

import json
import warnings

import numpy as np

from offbench.data.staging import Staging
from offbench.envs import maze_files_private
from offbench.errors import OffbenchError
from offbench.recipes.common import episode_stats
from offbench.recipes.references import reference_summary


def write(name: str, episodes: list[dict], env, eval_env, refs: dict, provenance: dict, description: str) -> str:
    """Write ``rebuilt/<name>`` through :func:`write_minari` with the recipe's
    name and version (``recipe``, ``recipe_version``) in its metadata; returns the id."""
    from offbench.data.tasks import REBUILT_NAMESPACE
    from offbench.recipes.recipes import get_recipe

    if not episodes:
        raise OffbenchError(f"the recipe for {name} collected no episodes")
    dataset_id = f"{REBUILT_NAMESPACE}/{name}"
    prov = {
        "recipe": name,
        **provenance,
        "dataset_episodes": episode_stats(episodes),
        "reference": {k: v for k, v in refs.items()},
    }
    clean = [{k: v for k, v in e.items() if k not in ("return", "complete")} for e in episodes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = get_recipe(name)
        write_minari(
            dataset_id,
            clean,
            env,
            eval_env,
            ref_min_score=refs["ref_min_score"],
            ref_max_score=refs["ref_max_score"],
            description=description,
            provenance=prov,
            recipe=name,
            recipe_version=rec.version if rec is not None else None,
            size=provenance.get("requested_size", provenance.get("size")),
            default_size=rec.default_size if rec is not None else None,
            references=reference_summary(refs),
        )
    return dataset_id


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
    with warnings.catch_warnings(), stage.active(), maze_files_private():  # Minari makes the eval env, keeps its file
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
