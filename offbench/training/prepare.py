"""A run's options, and what is prepared before anything compiles: the resolved config, the data on the
device, reference returns and evaluation settings, each checked first (:mod:`offbench.training.checks`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from offbench import registry
from offbench.config import reward_transform
from offbench.data.loaders import obs_normalizer, reward_scale_for
from offbench.data.sources import Source
from offbench.data.sources import resolve as resolve_source
from offbench.data.suites import get_suite
from offbench.envs import ObsAdapter, quiet_mujoco
from offbench.errors import OffbenchError
from offbench.evaluation.evaluator import check_options as check_eval_options
from offbench.runs.identity import identify
from offbench.runs.spec import RunSpec
from offbench.training import checks
from offbench.training.step import SAMPLED_DROP

# --------------------------------------------------------------------------------------------------
# Options and preparation


@dataclasses.dataclass
class RunOptions:
    algo: str
    suite: str
    dataset: str
    seeds: int = 1
    seed: int = 0  # first seed; seeds are seed, seed+1, ...
    steps: int = 1_000_000
    eval_every: int | None = None  # None: the suite's schedule (Suite.eval_every / online_eval_every)
    eval_episodes: int | None = None  # None: the suite's
    overrides: dict = dataclasses.field(default_factory=dict)
    results: str = "results"
    resume: bool = False
    progress: bool = True
    online_steps: int = 0
    from_run: str | None = None
    name: str | None = None  # the run directory's variant name (default: derived from the config)
    overwrite: bool = False  # replace this run's seeds' records and checkpoint
    eval_workers: int | None = None  # host evaluation workers; None: cores - 1 (0 on <= 2 cores), 0: serial
    eval_backend: str = "auto"  # auto | host | mjx (offbench.evaluation.evaluator.choose_backend)
    preset: str | None = None  # `--preset NAME` (configs/presets.yaml): not the paper's protocol
    log: tuple = ()  # `--log tensorboard|wandb`: trackers beside the always-written CSV log (records.trackers)

    only_seeds: tuple | None = None  # the seeds that train now (claim: finished seeds of the run are skipped)

    @property
    def seed_list(self) -> list[int]:
        if self.only_seeds is not None:
            return list(self.only_seeds)
        return list(range(self.seed, self.seed + self.seeds))


@dataclasses.dataclass
class Prepared:
    opts: RunOptions
    algorithm: registry.Algorithm
    source: Source
    config: dict
    spec: registry.Spec
    agent: registry.Agent
    data: dict  # on the device
    reward_scale: float
    reward_shift: float
    obs_mean: np.ndarray | None
    obs_std: np.ndarray | None
    score_type: str
    eval_episodes: int
    fingerprint: str
    directory: Path
    variant: str = "default"

    @property
    def size(self) -> int:
        return int(self.data["rewards"].shape[0])


def prepare(opts: RunOptions, say: Callable[[str], None] = print) -> Prepared:
    if opts.eval_every is None:  # the suite's evaluation schedule, from its reference (offbench/data/suites.py)
        opts = dataclasses.replace(
            opts, eval_every=get_suite(opts.suite).eval_schedule(bool(opts.online_steps or opts.from_run))
        )
    checks.check_options(opts)
    quiet_mujoco()
    algorithm = registry.get(opts.algo)
    suite = get_suite(opts.suite)
    ident = identify_run(opts)  # config, variant and run directory: offbench.runs.identity, as sweeps plan them
    config = ident.config
    checks.check_config(config, algorithm.ranges)
    source = resolve_source(suite, opts.dataset, config)
    if source.recipe_size is not None:  # a rebuild smaller than its recipe's: its size names the variant
        ident = identify_run(opts, source.recipe_size)
    if source.note:
        say(source.note)
    if source.env_note:  # which evaluation env, and why it is not the suite's map or the dataset's eval_env_spec
        say(f"{source.name}: evaluation env {source.env_id}: {source.env_note}")
    dataset = source.dataset
    check_eval_options(opts.eval_backend, opts.eval_workers, source.env_id)  # before anything is written
    checks.check_dataset(dataset, opts.dataset)
    env = source.env_factory()()
    try:
        checks.check_against_env(dataset, env, ObsAdapter(source.obs_keys), opts.dataset, source.env_id)
    finally:
        env.close()
    fingerprint = dataset.fingerprint()

    scale, shift = reward_scale_for(dataset, reward_transform(config, suite))
    arrays = dataset.arrays()
    arrays["rewards"] = (arrays["rewards"] * scale + shift).astype(np.float32)
    mean = std = None
    if config["normalize_obs"]:
        mean, std = obs_normalizer(dataset)
        arrays["observations"] = (arrays["observations"] - mean) / std
        arrays["next_observations"] = (arrays["next_observations"] - mean) / std
    if algorithm.preprocess is not None:
        # ``dataset_rewards``: the rewards before the training transform (10%BC ranks episodes by them)
        arrays = algorithm.preprocess({**arrays, "dataset_rewards": dataset.rewards.copy()}, config)
    device_data = {
        k: jnp.asarray(np.asarray(v, np.float32))
        for k, v in arrays.items()
        if k not in SAMPLED_DROP and k != "dataset_rewards"
    }
    if len(device_data["rewards"]) == 0:
        raise OffbenchError(f"{algorithm.name}'s preprocessing left no transitions")

    spec = registry.Spec(
        obs_dim=dataset.obs_dim,
        act_dim=dataset.act_dim,
        total_steps=max(1, opts.steps + int(opts.online_steps * config["online_updates_per_step"])),
    )
    agent = algorithm.make(config, spec)
    episodes = opts.eval_episodes if opts.eval_episodes is not None else suite.eval_episodes
    if ident.folder != source.name:  # one naming rule (offbench.data.naming.results_name) for runs and sweeps
        raise OffbenchError(f"internal: dataset {opts.dataset!r} resolves to {source.name!r}, not {ident.folder!r}")
    return Prepared(
        opts,
        algorithm,
        source,
        config,
        spec,
        agent,
        device_data,
        scale,
        shift,
        mean,
        std,
        suite.score,
        int(episodes),
        fingerprint,
        ident.run_dir,
        ident.variant,
    )


def identify_run(opts: RunOptions, data_size: int | None = None):
    """The identity (:func:`offbench.runs.identity.identify`) of the run ``opts`` describe."""
    return identify(RunSpec.from_options(opts, data_size))
