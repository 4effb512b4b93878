"""Resolving ``--dataset`` to data, an evaluation environment and reference returns.

``--dataset`` may be
* a path to a D4RL-format hdf5 file: the suite's conventions apply; reference returns and the
  environment come from the suite's task of the same name (file stem), or from ``--set env_id=...
  ref_min_score=... ref_max_score=...``;
* a Minari id (``D4RL/door/human-v2``, ``rebuilt/hopper-medium-v2``): loaded through Minari;
* a D4RL name as papers use it (``hopper-medium-v2``): the original data when present locally (Minari id
  or hdf5 under ``$OFFBENCH_DATA_DIR``), else the dataset rebuilt by ``offbench data build`` (said once).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from offbench import envs
from offbench.data import hosted
from offbench.data import loaders as datamod
from offbench.data.naming import dataset_name, is_dataset_file
from offbench.data.suites import Suite, hdf5_path
from offbench.data.tasks import FROM_SPEC, Task, env_family
from offbench.errors import OffbenchError


@dataclasses.dataclass
class Source:
    dataset: datamod.Dataset
    name: str  # the name records are filed under (the D4RL name when known)
    kind: str  # original | rebuilt | file
    task: Task | None
    env_id: str
    env_kwargs: dict
    max_episode_steps: int | None
    eval_env_spec: str | None  # Minari eval env spec (JSON) when the dataset carries one
    ref_min: float
    ref_max: float
    ref_source: str
    obs_keys: tuple | None
    note: str = ""
    env_family: str = "gymnasium"  # gymnasium | gymnasium-robotics | d4rl (tasks.env_family)
    recipe: str | None = None  # rebuilt data: the recipe's name (metadata ``recipe``)
    recipe_version: int | None = None  # rebuilt data: the recipe version it was built by (``recipe_version``)
    recipe_size: int | None = None  # rebuilt data: transitions built when not the recipe's default size
    env_note: str = ""  # why the evaluation env differs from the suite's map or the dataset's eval_env_spec

    def env_factory(self):
        if self.eval_env_spec:
            return lambda: envs.make_env_from_spec(self.eval_env_spec)
        return lambda: envs.make_env(self.env_id, self.env_kwargs, self.max_episode_steps)

    @property
    def built_env_kwargs(self) -> dict:
        """The kwargs of the env :meth:`env_factory` builds: the stored spec's when the dataset has one (a rebuilt
        dataset's, e.g. Kitchen's ``robot_noise_ratio``), else :attr:`env_kwargs`."""
        return hosted.spec_kwargs(self.eval_env_spec) if self.eval_env_spec else dict(self.env_kwargs or {})

    @property
    def rebuilt(self) -> bool:
        return self.kind == "rebuilt"

    @property
    def label(self) -> str:
        """How scores on this data are labelled: the recipe's label for rebuilt data ("rebuilt",
        "rebuilt (scripted)"), else the kind (original / file)."""
        if not self.rebuilt:
            return self.kind
        from offbench.recipes.recipes import get_recipe

        recipe = get_recipe(self.task.name) if self.task is not None else None
        return recipe.label if recipe is not None else "rebuilt"


def _refs(task: Task | None, meta: dict, config: dict, kind: str) -> tuple[float, float, str]:
    if config.get("ref_min_score") is not None and config.get("ref_max_score") is not None:
        return float(config["ref_min_score"]), float(config["ref_max_score"]), "--set"
    if meta.get("ref_min_score") is not None and meta.get("ref_max_score") is not None:
        return float(meta["ref_min_score"]), float(meta["ref_max_score"]), f"dataset metadata ({kind})"
    if task is not None and math.isfinite(task.ref_min_score) and math.isfinite(task.ref_max_score):
        return task.ref_min_score, task.ref_max_score, "D4RL infos.py"
    raise OffbenchError(
        "no reference returns for this dataset (its metadata has no ref_min_score/ref_max_score): pass "
        "--set ref_min_score=R_RANDOM ref_max_score=R_EXPERT"
    )


def resolve(suite: Suite, dataset: str, config: dict, download: bool = False) -> Source:
    path = Path(dataset)
    if is_dataset_file(dataset):
        ds = datamod.load_d4rl_hdf5(path)
        stem = dataset_name(dataset)  # d4rl's cache names (hopper_medium-v2) -> hopper-medium-v2
        task = next((t for t in suite.tasks if t.name == stem), None)
        return _finish(ds, stem, "file", task, config)
    if "/" in dataset:  # Minari id
        task = next((t for t in suite.tasks if dataset in (t.minari_id, t.rebuilt_id)), None)
        kind = "rebuilt" if task is not None and dataset == task.rebuilt_id else "original"
        ds = datamod.load_minari(dataset, task.obs_keys_for(kind) if task else None, download=download)
        if ds.metadata.get("rebuilt") and kind != "rebuilt":
            kind = "rebuilt"
            if task is not None and task.obs_keys_for(kind) != task.obs_keys:  # the suite's view of rebuilt data
                ds = datamod.load_minari(dataset, task.obs_keys_for(kind))
        return _finish(ds, task.name if task else dataset.replace("/", "__"), kind, task, config)
    task = suite.task(dataset)
    local = datamod.minari_local_ids()
    if task.minari_id and task.minari_id in local:
        ds = datamod.load_minari(task.minari_id, task.obs_keys)
        return _finish(ds, task.name, "original", task, config)
    if hdf5_path(task).exists():
        return _finish(datamod.load_d4rl_hdf5(hdf5_path(task)), task.name, "original", task, config)
    if task.rebuilt_id in local:
        ds = datamod.load_minari(task.rebuilt_id, task.obs_keys_for("rebuilt"))
        return _finish(
            ds,
            task.name,
            "rebuilt",
            task,
            config,
            note=f"using the rebuilt dataset {task.rebuilt_id} (D4RL's original is not present)",
        )
    how = []
    if task.minari_id or task.url:
        how.append(f"download it with `offbench data download {task.name}` (needs a network)")
    from offbench.recipes.recipes import get_recipe, unbuildable_reason

    if get_recipe(task.name) is not None:
        how.append(f"rebuild it with `offbench data build {task.name}`")
    else:
        how.append(f"it cannot be rebuilt here ({unbuildable_reason(task.name)})")
    raise OffbenchError(f"dataset {task.name!r} is not available locally: " + "; or ".join(how))


def _finish(ds, name, kind, task, config, note="") -> Source:
    meta = ds.metadata
    # Minari stores env_spec as eval_env_spec when a dataset names no eval env (minari/utils.py L283-289)
    spec = meta.get("eval_env_spec") or meta.get("env_spec") or None
    goals = getattr(ds, "goals", None)
    env_note = ""
    if config.get("env_id"):
        env_id, kwargs, steps, spec = config["env_id"], {}, None, None
    elif task is not None and task.env_id != FROM_SPEC:
        # the suite's task (walker2d: v4 for D4RL's data, v5 for rebuilt), never the hosted eval_env_spec:
        # Minari's Kitchen spec keeps completed tasks rewarding for 450 steps, its umaze spec is another maze
        env_id, kwargs, _family = task.eval_env(kind, meta.get("source"))
        steps = task.max_episode_steps
        if kind == "rebuilt":  # a rebuilt dataset's eval_env_spec is the suite's env, written here: it is kept
            spec = meta.get("eval_env_spec") or None
        else:  # spec: what Minari's recover_environment(eval_env=True) builds; said where it differs
            env_note, spec = hosted.spec_note(spec, env_id, kwargs, steps), None
        if kind != "rebuilt" and goals is not None and "maze_map" in kwargs:  # hosted maze data: its own task
            maze = hosted.maze_task(task, goals, meta)
            kwargs, env_note = {**kwargs, "maze_map": maze.maze_map}, maze.note
            if maze.relabel:
                ds.rewards = hosted.relabel(ds.rewards, goals["achieved"], maze.goal_xy)
                meta["relabelled_goal_xy"] = [float(v) for v in maze.goal_xy]
    elif spec:  # the dataset's own env (the mujoco suite, a Minari dataset in a suite of its own)
        desc = envs.env_description(spec)
        env_id, kwargs, steps = desc.get("env_id"), hosted.spec_kwargs(spec), desc.get("max_episode_steps")
        env_note = "evaluating in the dataset's " + ("eval_env_spec" if meta.get("eval_env_spec") else "env_spec")
    else:
        raise OffbenchError(
            f"no evaluation environment known for dataset {name!r} (it has no env spec): pass --set env_id=ENV"
        )
    ref_min, ref_max, ref_source = _refs(task, meta, config, kind)
    if isinstance(spec, dict):
        spec = json.dumps(spec)
    recipe, version, size = None, None, None
    if kind == "rebuilt":
        from offbench.recipes.recipes import built_version

        recipe, version = meta.get("recipe") or (task.name if task else None), built_version(meta)
        if meta.get("recipe_size") is not None and meta.get("recipe_size") != meta.get("recipe_default_size"):
            size = int(meta["recipe_size"])
        default, n = meta.get("recipe_default_size"), len(ds)
        if default and n < 0.9 * int(default):  # e.g. a --size or --preset quick build used by a full run
            note = (note + "; " if note else "") + (
                f"this build has {n:,} transitions; the recipe's full size is {int(default):,}"
            )
    return Source(
        ds,
        name,
        kind,
        task,
        env_id,
        kwargs,
        steps,
        spec,
        ref_min,
        ref_max,
        ref_source,
        task.obs_keys_for(kind) if task else None,
        note,
        env_family(env_id),
        recipe,
        version,
        size,
        env_note,
    )


def available_datasets(suite) -> list[str]:
    """The suite's datasets present locally (Minari id, rebuilt id, or D4RL hdf5 file)."""
    local = datamod.minari_local_ids()
    return [t.name for t in suite.tasks if (t.minari_id in local) or t.rebuilt_id in local or hdf5_path(t).exists()]
