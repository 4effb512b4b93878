"""offbench's Python API (re-exported lazily by ``import offbench``): the CLI's ``run`` as a function, a trained
run's policy as a callable, its evaluation on a dataset's task, and the results as tidy pandas DataFrames.

    import offbench
    recs = offbench.run("iql", "locomotion", "hopper-medium-v2", steps=5000, seeds=2)
    policy = offbench.load_policy(recs[0]["run_dir"], seed=0)
    offbench.evaluate(policy, episodes=10)         # on the policy's own dataset's task
    df = offbench.results("results")               # one row per run x seed x evaluation step

Messages go to the ``offbench`` logger (``logging.basicConfig(level=logging.INFO)`` shows them); progress
bars are tqdm's (``progress=False`` turns them off).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from offbench.errors import OffbenchError

log = logging.getLogger("offbench")
_NOT_OPTIONS = {"algo", "suite", "dataset", "preset"}


def run(
    algo: str,
    suite: str,
    datasets=(),
    *,
    preset=None,
    fetch=True,
    rebuild=True,
    build_size=None,
    build_workers=None,
    **options,
):
    """``offbench run`` as a function: trains ``algo`` on ``datasets`` of ``suite`` (a name or several; default
    every dataset of the suite) and returns the final records of all seeds (dicts, as written). ``options`` are
    :class:`offbench.training.prepare.RunOptions` fields, named as the CLI's options: ``steps``, ``seeds``,
    ``seed``, ``eval_every``, ``eval_episodes``, ``overrides`` (a dict, or ``["key=value", ...]`` as
    ``--set``), ``results``, ``name``, ``resume``, ``overwrite``, ``online_steps``, ``from_run``, ``progress``,
    ``eval_workers``, ``eval_backend``, ``log`` (``["tensorboard"]``/``["wandb"]``). ``preset``, ``fetch``,
    ``rebuild``, ``build_size``, ``build_workers`` as ``--preset``, ``--no-fetch``, ``--no-rebuild``,
    ``--build-size``, ``--build-workers``."""
    from offbench import presets, registry
    from offbench.config import parse_overrides, resolve
    from offbench.data.suites import get_suite
    from offbench.records.trackers import check as check_trackers
    from offbench.training.checks import check_config
    from offbench.training.prepare import RunOptions
    from offbench.training.run import run as run_one

    known = {f.name for f in dataclasses.fields(RunOptions)} - _NOT_OPTIONS
    unknown = sorted(set(options) - known)
    if unknown:
        raise OffbenchError(
            f"offbench.run(): unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    algorithm, s = registry.get(algo), get_suite(suite)
    overrides = options.pop("overrides", None) or {}
    options["overrides"] = parse_overrides(overrides) if isinstance(overrides, (list, tuple)) else dict(overrides)
    finetune = bool(options.get("online_steps") or options.get("from_run"))
    check_config(
        resolve(algorithm.default_config, algo, s.name, None, options["overrides"], finetune), algorithm.ranges
    )
    options["log"] = check_trackers(options.get("log") or ())
    datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets or ())
    length = {
        k: options.get(k, getattr(RunOptions, k, None)) for k in ("steps", "eval_every", "eval_episodes", "seeds")
    }
    given = {k for k in presets.KEYS if k in options} | ({"datasets"} if datasets else set())
    given |= {"build_size"} if build_size is not None else set()
    chosen, note = presets.apply(preset, s.name, dict(length, build_size=build_size, datasets=datasets), given)
    if note:
        log.warning(note)
    options.update({k: chosen[k] for k in length})
    datasets = tuple(chosen["datasets"] or ())
    if fetch:
        from offbench.data.fetch import obtain

        progress = options.get("progress", True)
        size, workers = chosen["build_size"], build_workers
        datasets = obtain(s, datasets, size=size, workers=workers, progress=progress, say=log.info, rebuild=rebuild)
    if not datasets:
        from offbench.data.sources import available_datasets

        datasets = available_datasets(s)
        if not datasets:
            raise OffbenchError(f"no dataset of suite {s.name!r} is available locally; see `offbench data list`")
    out = []
    for ds in datasets:
        out += run_one(RunOptions(algo=algo, suite=s.name, dataset=ds, preset=preset, **options), say=log.info)
    return out


# --------------------------------------------------------------------------------------------------
# A trained policy


@dataclasses.dataclass
class Policy:
    """A trained seed's deterministic policy: ``policy(obs) -> action``. ``obs`` is an environment observation
    (an array, or a dict for goal-conditioned tasks) or a batch of flat ones ``[B, obs_dim]``; the run's
    observation normalisation is applied inside. ``record``: the seed's record; ``source``: its data."""

    record: dict
    source: object
    act: object  # jitted (obs[B, obs_dim]) -> actions[B, act_dim]
    adapter: object  # offbench.envs.ObsAdapter with the run's normalisation

    def __call__(self, obs):
        import jax.numpy as jnp

        if isinstance(obs, dict):
            return np.asarray(self.act(jnp.asarray(self.adapter(obs)[None])))[0]
        x = np.asarray(obs, np.float32)
        flat = x.reshape(-1, x.shape[-1])
        if self.adapter.mean is not None:
            flat = (flat - self.adapter.mean) / self.adapter.std
        a = np.asarray(self.act(jnp.asarray(flat, jnp.float32)))
        return a[0] if x.ndim == 1 else a


def load_policy(run_dir, seed: int = 0, dataset: str | None = None) -> Policy:
    """The policy of ``seed`` in a run directory (``results/<suite>/<dataset>/<algo>/<variant>``), from the run's
    last checkpoint (the final one of a finished run). Its data must be present (the run's observation
    normalisation comes from it, and is checked by fingerprint); a run on an hdf5 file needs ``dataset=PATH``."""
    import jax

    from offbench.records import checkpoint
    from offbench.records.store import checkpoint_dir, read_record
    from offbench.training.prepare import RunOptions, prepare
    from offbench.training.step import init_seeds

    run_dir = Path(run_dir)
    rec = read_record(run_dir, seed)
    if rec is None:
        have = sorted(p.stem for p in run_dir.glob("seed_*.json"))
        raise OffbenchError(f"{run_dir} has no record of seed {seed} (it has {', '.join(have) or 'none'})")
    if (rec.get("data") or {}).get("kind") == "file" and dataset is None:
        raise OffbenchError(f"{run_dir} was trained on an hdf5 file; pass dataset=PATH of that file")
    seeds = [int(s) for s in rec.get("seeds_in_run") or [seed]]
    ck = checkpoint_dir(run_dir, seeds)
    if not checkpoint.exists(ck):
        raise OffbenchError(f"{run_dir}: no checkpoint of seeds {seeds[0]}-{seeds[-1]} (expected {ck})")
    opts = RunOptions(
        algo=rec["algo"],
        suite=rec["suite"],
        dataset=dataset or rec["dataset"],
        steps=int(rec.get("offline_steps") or rec["steps"]),
        online_steps=int(rec.get("online_steps") or 0),
        eval_every=int(rec["eval_every"]),
        overrides=dict(rec["config"]),
        results=str(run_dir.parent),
        progress=False,
        eval_workers=0,
    )
    prep = prepare(opts, say=log.info)
    if prep.fingerprint != (rec.get("data") or {}).get("fingerprint"):
        raise OffbenchError(
            f"{run_dir} was trained on other data than {opts.dataset} now resolves to (fingerprint "
            f"{prep.fingerprint}, the run's {rec['data'].get('fingerprint')}); pass dataset=PATH of the run's data"
        )
    states, _ = init_seeds(prep.agent.init, seeds)
    tree, _ = checkpoint.load_part(ck, "states", states, hint="the run's networks differ from its recorded config")
    state = jax.tree_util.tree_map(lambda x: jax.device_put(x[seeds.index(seed)]), tree)
    key = jax.random.PRNGKey(0)
    act = jax.jit(lambda obs: prep.agent.act(state, obs, key, True))
    from offbench.envs import ObsAdapter

    return Policy(rec, prep.source, act, ObsAdapter(prep.source.obs_keys, prep.obs_mean, prep.obs_std))


def evaluate(policy, dataset: str | None = None, *, suite: str | None = None, episodes: int = 10, seed: int = 0):
    """Evaluate ``policy`` (a :class:`Policy`, or any callable from a flat observation, as the dataset stores
    it, to an action) on a dataset's task, as runs are evaluated: ``episodes`` episodes from the reset seeds of
    run seed ``seed``, the deterministic action, D4RL-normalised with that data's reference returns (AntMaze:
    success x 100). ``dataset``/``suite`` default to the policy's own. Returns a dict: score (mean), scores (per
    episode), return, success, length, episodes, dataset, data (its kind)."""
    from offbench.data.sources import resolve as resolve_source
    from offbench.data.suites import SUITES, get_suite
    from offbench.envs import ObsAdapter
    from offbench.evaluation.episodes import env_factory_for, normalized_score
    from offbench.evaluation.evaluator import Evaluator

    own = isinstance(policy, Policy)
    if dataset is None and not own:
        raise OffbenchError("evaluate(): name the dataset whose task to evaluate on (dataset=...)")
    if own and dataset is None:
        source, s = policy.source, get_suite(policy.record["suite"])
    else:
        if suite is None:
            found = [x for x in SUITES.values() if any(dataset in (t.name, t.minari_id, t.rebuilt_id) for t in x.tasks)]
            if len(found) != 1:
                raise OffbenchError(f"evaluate(): pass suite=... for dataset {dataset!r}")
            suite = found[0].name
        s = get_suite(suite)
        source = resolve_source(s, dataset, policy.record["config"] if own else {})
    if episodes < 1:
        raise OffbenchError("evaluate(): episodes must be >= 1")
    evaluator = Evaluator(
        env_factory_for(source),
        ObsAdapter(source.obs_keys),  # flat, unnormalised: as the dataset stores observations
        lambda _, obs: np.asarray(policy(np.asarray(obs[0])))[None],
        [seed],
        episodes,
    )
    log.info(f"evaluating on {source.name} ({source.kind} data): {episodes} episodes")
    try:
        res = evaluator(None)
    finally:
        evaluator.close()
    scores = normalized_score(res.returns, res.successes, s.score, source.ref_min, source.ref_max)[0]
    return {
        "score": float(scores.mean()),
        "scores": scores.tolist(),
        "return": float(res.returns[0].mean()),
        "success": float(res.successes[0].mean()),
        "length": float(res.lengths[0].mean()),
        "episodes": int(episodes),
        "dataset": source.name,
        "data": source.kind,
    }


# --------------------------------------------------------------------------------------------------
# Results as data


def results(results_dir="results", suites=(), algos=(), datasets=()):
    """The runs under ``results_dir`` as a tidy DataFrame: one row per run x seed x evaluation step (columns:
    :data:`offbench.report.tidy.CURVE_COLUMNS`; ``final`` marks the headline score of each finished seed).
    ``offbench.report.tidy.rliable_scores(df)`` turns it into rliable's ``{row: scores[runs, datasets]}``."""
    from offbench.report.collect import collect
    from offbench.report.tidy import curves_frame

    groups, _ = collect(Path(results_dir), tuple(suites), tuple(algos), tuple(datasets))
    return curves_frame(groups)


def runs(results_dir="results", suites=(), algos=(), datasets=()):
    """One row per run x seed: final and best score, wall time, updates per second."""
    from offbench.report.collect import collect
    from offbench.report.tidy import runs_frame

    groups, _ = collect(Path(results_dir), tuple(suites), tuple(algos), tuple(datasets))
    return runs_frame(groups)
