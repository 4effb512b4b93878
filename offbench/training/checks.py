"""Checks a run makes before anything is compiled or written: options, sizes in the config, and the dataset
against the evaluation environment. Each failure is one :class:`OffbenchError` line that names the file, the
field and the first bad row; nothing has been written when it is raised."""

from __future__ import annotations

import numpy as np

from offbench.config import check_ranges
from offbench.errors import OffbenchError

ACTION_TOLERANCE = 1e-3  # actions may exceed the action space by float rounding, not more


def check_options(opts, algorithm=None) -> None:
    """The run's options (and, given the algorithm, whether it fine-tunes): checked before any data is obtained."""
    if opts.seeds < 1:
        raise OffbenchError(f"--seeds must be at least 1 (got {opts.seeds})")
    if opts.seed < 0:
        raise OffbenchError(f"--seed must be >= 0 (got {opts.seed})")
    if opts.steps < 1 and not opts.from_run:
        raise OffbenchError(f"--steps must be at least 1 (got {opts.steps}); a run of no steps has nothing to record")
    if opts.eval_every is not None and opts.eval_every < 1:
        raise OffbenchError(f"--eval-every must be at least 1 (got {opts.eval_every})")
    if opts.eval_episodes is not None and opts.eval_episodes < 1:
        raise OffbenchError(f"--eval-episodes must be at least 1 (got {opts.eval_episodes}); a score needs episodes")
    if opts.online_steps < 0:
        raise OffbenchError(f"--online-steps must be >= 0 (got {opts.online_steps})")
    if opts.resume and opts.overwrite:
        raise OffbenchError("--resume continues a run and --overwrite starts it over: choose one")
    if opts.from_run and opts.online_steps < 1:
        raise OffbenchError("--from needs --online-steps N (N >= 1)")
    if algorithm is not None and (opts.online_steps or opts.from_run) and not algorithm.finetune:
        raise OffbenchError(
            f"{algorithm.name} does not fine-tune online (an offline-only method); drop --online-steps/--from"
        )
    if opts.name is not None:
        from offbench.records.store import variant_name

        variant_name({}, opts.steps, opts.online_steps, opts.name)  # a bad --name is refused here


def check_config(config: dict, ranges: dict | None = None) -> None:
    """Every value in its range (``offbench.config.PIPELINE_RANGES`` and the algorithm's ``ranges``, declared
    beside its defaults): ``batch_size=0`` would train on nothing, ``expectile=1.5`` on a loss with no minimum,
    and both would still look finished."""
    check_ranges(config, ranges)
    for key, v in config.items():
        if key.endswith("_dims") and isinstance(v, (list, tuple)):
            if not v or any(not isinstance(x, int) or isinstance(x, bool) or x < 1 for x in v):
                raise OffbenchError(f"config key {key!r} must be a list of positive layer sizes (got {v!r})")
    for key in ("ref_min_score", "ref_max_score"):
        v = config.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise OffbenchError(f"config key {key!r} must be a number (a reference return), got {v!r}")


def first_bad_row(x: np.ndarray) -> int | None:
    bad = ~np.isfinite(x)
    if bad.ndim > 1:
        bad = bad.reshape(len(x), -1).any(1)
    idx = np.flatnonzero(bad)
    return int(idx[0]) if idx.size else None


SHAPES = {  # the D4RL layout of each field, N transitions (D4RL offline_env.py get_dataset checks N per field)
    "observations": (2, "(N, obs_dim)"),
    "next_observations": (2, "(N, obs_dim)"),
    "actions": (2, "(N, act_dim)"),
    "rewards": (1, "(N,)"),
    "terminals": (1, "(N,)"),
}


def check_shapes(dataset, where: str) -> None:
    """Observations and actions are (N, d), rewards and terminals (N,), every field the same N: a (N, 11, 1)
    observation array would otherwise end in a JAX traceback inside the compiled update."""
    n = len(dataset.rewards)
    for field, (ndim, layout) in SHAPES.items():
        shape = np.shape(getattr(dataset, field))
        if len(shape) != ndim or shape[0] != n:
            raise OffbenchError(
                f"dataset {where}: field {field!r} has shape {shape}; expected {layout} with N = {n} "
                "(flatten the extra axes or fix the file)"
            )


def check_dataset(dataset, where: str) -> None:
    """Shapes as D4RL's; every array finite; the first bad row is named."""
    check_shapes(dataset, where)
    for field in ("observations", "actions", "rewards", "next_observations", "terminals"):
        x = np.asarray(getattr(dataset, field))
        row = first_bad_row(x)
        if row is not None:
            value = np.asarray(x[row]).reshape(-1)
            value = value[~np.isfinite(value)][0]
            raise OffbenchError(
                f"dataset {where}: field {field!r} has a non-finite value ({value}) at row {row}; "
                "fix or drop those transitions"
            )


def check_against_env(dataset, env, adapter, where: str, env_name: str) -> None:
    """Observation and action dimensions equal the evaluation environment's; actions inside its action space."""
    obs = adapter.raw(env.reset(seed=0)[0])
    if obs.shape[-1] != dataset.obs_dim:
        raise OffbenchError(
            f"dataset {where}: field 'observations' has {dataset.obs_dim} dimensions but the "
            f"evaluation environment {env_name} gives {obs.shape[-1]}; use the matching dataset "
            "or --set env_id=ENV"
        )
    space = env.action_space
    shape = getattr(space, "shape", None)
    if not shape or int(np.prod(shape)) != dataset.act_dim:
        raise OffbenchError(
            f"dataset {where}: field 'actions' has {dataset.act_dim} dimensions but the evaluation "
            f"environment {env_name} takes {shape}; use the matching dataset or --set env_id=ENV"
        )
    low = np.asarray(space.low, np.float64).reshape(-1)
    high = np.asarray(space.high, np.float64).reshape(-1)
    tol = ACTION_TOLERANCE * np.maximum(1.0, high - low)
    a = np.asarray(dataset.actions, np.float64)
    outside = ((a < low - tol) | (a > high + tol)).any(1)
    rows = np.flatnonzero(outside)
    if rows.size:
        r = int(rows[0])
        j = int(np.flatnonzero((a[r] < low - tol) | (a[r] > high + tol))[0])
        raise OffbenchError(
            f"dataset {where}: field 'actions' is outside the action space of {env_name} at row {r} "
            f"(dimension {j}: {a[r, j]:.4g} not in [{low[j]:.4g}, {high[j]:.4g}]); "
            f"{rows.size} rows are outside"
        )
