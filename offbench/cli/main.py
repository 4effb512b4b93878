"""The ``offbench`` command line."""

from __future__ import annotations

import logging
import os

import click
from click.core import ParameterSource

from offbench import presets
from offbench.errors import OffbenchError
from offbench.options import SetCommand


class Group(click.Group):
    """Prints an :class:`OffbenchError` as one line (``error: ...``) and exits with status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OffbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="offbench")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr (results still print).")
@click.option("-v", "--verbose", is_flag=True, help="Debug messages too.")
def main(quiet=False, verbose=False):
    """offbench: offline RL benchmarks (IQL and its baselines) on one jit-compiled JAX pipeline."""
    from offbench.options import cli_logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cli_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


@main.command(cls=SetCommand)
@click.option("--algo", required=True, help="Algorithm name (see `offbench list algorithms`).")
@click.option(
    "--suite",
    default=None,
    help="Task family: locomotion, antmaze, kitchen, adroit, maze2d, pointmaze, mujoco (default: the suite naming "
    "--dataset; a Minari id no suite names runs in a suite of its own).",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    help="D4RL name (hopper-medium-v2), Minari id, or path to a D4RL hdf5 file; repeatable. "
    "Default: every dataset of the suite (missing ones obtained; with --no-fetch, those present).",
)
@click.option("--seeds", default=1, show_default=True, help="Number of seeds, trained together (vmapped).")
@click.option("--seed", default=0, show_default=True, help="First seed.")
@click.option("--steps", default=1_000_000, show_default=True, help="Offline gradient steps.")
@click.option(
    "--eval-every",
    default=None,
    type=int,
    help="Steps between evaluations (default: the suite's reference schedule, e.g. AntMaze 100000).",
)
@click.option("--eval-episodes", default=None, type=int, help="Episodes per evaluation (default: the suite's).")
@click.option(
    "--eval-workers",
    default=None,
    type=int,
    help="Host evaluation worker processes (default: cores - 1, or 0 on at most 2 cores; 0: serial, in this process).",
)
@click.option(
    "--eval-backend",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "host", "mjx"]),
    help="auto: MJX on a GPU for Hopper/HalfCheetah/Walker2d-v5, else host; mjx also runs AntMaze.",
)
@click.option(
    "--online-steps",
    default=0,
    show_default=True,
    help="Environment steps of online fine-tuning after the offline phase.",
)
@click.option(
    "--from",
    "from_run",
    default=None,
    type=click.Path(),
    help="Fine-tune from the final checkpoint of an earlier offline run directory.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE [KEY=VALUE ...]",
    help="Override config values; repeatable, or several after one --set.",
)
@click.option("--results", default="results", show_default=True, type=click.Path(), help="Results folder.")
@click.option(
    "--name",
    default=None,
    help="The run directory's variant name (default: from the changed config and run length, e.g. "
    "expectile=0.8__steps=25k; 'default' for the defaults).",
)
@click.option("--resume", is_flag=True, help="Continue from the run's last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Start this run's seeds over, replacing their records.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--preset",
    default=None,
    help="Run-length preset (configs/presets.yaml): `quick` is a first look in "
    "minutes (small rebuilt data, few steps and episodes), not the paper's protocol. Options given win.",
)
@click.option("--no-fetch", is_flag=True, help="Do not download or rebuild missing datasets: an error instead.")
@click.option(
    "--no-rebuild",
    is_flag=True,
    help="Download missing datasets but never rebuild one: a failed download is an error saying why.",
)
@click.option(
    "--log",
    "log",
    multiple=True,
    type=click.Choice(["tensorboard", "wandb"]),
    help="Also log the training metrics and scores to TensorBoard or W&B (extras offbench[tensorboard] / "
    "offbench[wandb]); repeatable. The CSV log beside each record (seed_<s>.metrics.csv) is always written.",
)
@click.option(
    "--build-workers",
    default=None,
    type=int,
    help="Worker processes rebuilding missing datasets in parallel (default: the cores).",
)
@click.option(
    "--build-size",
    default=None,
    help="Transitions of a dataset the run rebuilds (default: the recipe's, D4RL's size), or 'small'.",
)
def run(
    algo,
    suite,
    datasets,
    seeds,
    seed,
    steps,
    eval_every,
    eval_episodes,
    eval_workers,
    eval_backend,
    online_steps,
    from_run,
    overrides,
    results,
    name,
    resume,
    overwrite,
    no_progress,
    preset,
    no_fetch,
    no_rebuild,
    build_workers,
    build_size,
    log,
):
    """Train and evaluate ALGO on datasets of SUITE; records go under RESULTS/<suite>/<dataset>/<algo>/<variant>/.

    Seeds are added to a run directory, never replaced: seeds that already finished are skipped, seeds with
    unfinished records need --resume (or --overwrite)."""
    from offbench import registry
    from offbench.config import parse_overrides
    from offbench.data.suites import get_suite
    from offbench.training.prepare import RunOptions
    from offbench.training.run import run as run_one

    algorithm = registry.get(algo)  # fail early on an unknown algorithm
    if suite is None:  # the suite naming the datasets (offbench.data.naming.suite_of), never several
        from offbench.data.naming import suite_of

        if not datasets:
            raise OffbenchError("pass --suite SUITE or --dataset NAME (see `offbench list suites`)")
        found = sorted({suite_of(d).name for d in datasets})
        if len(found) > 1:
            raise OffbenchError(
                f"the datasets belong to suites {', '.join(found)}: run each separately or pass --suite"
            )
        suite = found[0]
    s = get_suite(suite)
    parsed = parse_overrides(overrides)  # every --set value parsed and type-checked before data or compiling
    from offbench.config import resolve as resolve_config
    from offbench.training.checks import check_config

    check_config(
        resolve_config(algorithm.default_config, algo, s.name, None, parsed, bool(online_steps or from_run)),
        algorithm.ranges,
    )
    from offbench.records.trackers import check as check_trackers

    log = check_trackers(log)  # an uninstalled tracker is an error before anything is built or trained
    given = {
        k
        for k in presets.KEYS
        if click.get_current_context().get_parameter_source(k)
        not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    }
    chosen, note = presets.apply(
        preset,
        s.name,
        dict(
            steps=steps,
            eval_every=eval_every,
            eval_episodes=eval_episodes,
            seeds=seeds,
            build_size=build_size,
            datasets=datasets,
        ),
        given,
    )
    steps, eval_every, eval_episodes, seeds, build_size, datasets = (
        chosen[k] for k in ("steps", "eval_every", "eval_episodes", "seeds", "build_size", "datasets")
    )
    from offbench.training.checks import check_options

    check_options(  # the whole spec, before anything is obtained or built (a dataset build can take hours)
        RunOptions(
            algo=algo,
            suite=suite,
            dataset="",
            seeds=seeds,
            seed=seed,
            steps=steps,
            eval_every=eval_every,
            eval_episodes=eval_episodes,
            online_steps=online_steps,
            from_run=from_run,
            name=name,
            resume=resume,
            overwrite=overwrite,
        ),
        algorithm,
    )
    if note:
        logging.getLogger("offbench").warning(note)
    if not no_fetch:  # download or rebuild what the run needs and does not find (offbench.data.fetch)
        from offbench.data.fetch import obtain

        datasets = obtain(
            s,
            datasets,
            size=build_size,
            workers=build_workers,
            progress=not no_progress,
            say=logging.getLogger("offbench").info,
            rebuild=not no_rebuild,
        )
    if not datasets:
        from offbench.data.sources import available_datasets

        datasets = available_datasets(s)
        if not datasets:
            raise OffbenchError(
                f"no dataset of suite {suite!r} is available locally; see `offbench data list` "
                f"and get one with `offbench data download NAME` or `offbench data build NAME`"
            )
    for ds in datasets:
        opts = RunOptions(
            algo=algo,
            suite=suite,
            dataset=ds,
            seeds=seeds,
            seed=seed,
            steps=steps,
            eval_every=eval_every,
            eval_episodes=eval_episodes,
            eval_workers=eval_workers,
            eval_backend=eval_backend,
            overrides=parsed,
            results=results,
            resume=resume,
            progress=not no_progress,
            online_steps=online_steps,
            from_run=from_run,
            preset=preset,
            name=name,
            overwrite=overwrite,
            log=log,
        )
        try:
            recs = run_one(opts, say=logging.getLogger("offbench").info)
        except KeyboardInterrupt as exc:  # Ctrl-C: where the run stopped and the command that continues it
            click.echo(f"\n{exc.args[0] if exc.args else 'interrupted'}: {resume_command()}", err=True)
            click.get_current_context().exit(130)
        scores = [r.get("final_score") for r in recs]
        label = f" ({recs[0]['data']['label']} data)" if recs and recs[0]["data"]["rebuilt"] else ""
        shown = ", ".join("n/a" if x is None else f"{x:.1f}" for x in scores)
        from offbench.records.record import is_finished

        mean = [r["final_score"] for r in recs if is_finished(r)]  # the one definition of a finished run
        diverged = [r["seed"] for r in recs if r.get("diverged")]
        click.echo(
            f"{algo} {recs[0]['dataset'] if recs else ds}{label}: final normalised score per seed [{shown}]"
            + (f", mean {sum(mean) / len(mean):.1f}" if mean else "")
            + (f"; DIVERGED: seeds {diverged} (non-finite losses or scores; no final score)" if diverged else "")
            + (f" [preset {preset}: not the paper's protocol]" if preset else "")
        )


def resume_command() -> str:
    """This process's ``offbench run`` command with --resume (and without --overwrite)."""
    import shlex
    import sys

    args = [a for a in sys.argv[1:] if a not in ("--overwrite", "--resume")]
    return shlex.join(["offbench", *args, "--resume"])


@main.command("config", cls=SetCommand)
@click.argument("algo")
@click.option("--suite", default=None, help="Suite whose layer applies (locomotion, antmaze, ...).")
@click.option("--dataset", default=None, help="Dataset whose layer applies (e.g. antmaze-large-play-v2).")
@click.option("--online", is_flag=True, help="With the fine-tuning layers (runs with --online-steps).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value; repeatable.")
def config_cmd(algo, suite, dataset, online, overrides):
    """Print ALGO's resolved config as YAML, each value with the layer it came from."""
    import yaml

    from offbench import registry
    from offbench.config import parse_overrides, resolve_with_sources
    from offbench.data.suites import get_suite

    algorithm = registry.get(algo)
    if suite:
        get_suite(suite)
    from offbench.data.naming import canonical_name

    config, sources = resolve_with_sources(  # the dataset layer is keyed by its canonical name (D4RL name)
        algorithm.default_config,
        algo,
        suite,
        canonical_name(dataset) if dataset else None,
        parse_overrides(overrides),
        finetune=online,
    )
    click.echo(
        f"# {algo}"
        + (f", suite {suite}" if suite else "")
        + (f", dataset {dataset}" if dataset else "")
        + (", fine-tuning" if online else "")
        + "; each value's layer after '#'"
    )
    width = max(len(k) for k in config) + 2
    for key in sorted(config):
        value = yaml.safe_dump(config[key], default_flow_style=True, width=10_000).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        click.echo(f"{key + ':':{width}s}{value:24s} # {sources[key]}")


@main.command("list")
@click.argument("what", type=click.Choice(["algorithms", "suites", "datasets"]), default="algorithms")
@click.option("--suite", default=None, help="With `datasets`: only this suite.")
def list_cmd(what, suite):
    """List algorithms, suites, or datasets (and whether each is available locally)."""
    from offbench import registry
    from offbench.data.suites import SUITES

    if what == "algorithms":
        for name in registry.names():
            a = registry.get(name)
            click.echo(f"{name:12s} {a.description}{'' if a.finetune else '  [offline only]'}")
        for name, why in registry.broken().items():
            click.echo(f"{name:12s} NOT LOADED: {why}")
    elif what == "suites":
        for s in SUITES.values():
            click.echo(
                f"{s.name:11s} {len(s.tasks):2d} datasets  score={s.score:7s} eval episodes={s.eval_episodes:3d}  "
                f"{s.description}"
            )
    else:  # one table for both `offbench list datasets` and `offbench data list`
        from offbench.cli.data import list_cmd as data_list

        click.get_current_context().invoke(data_list, suite=suite)
