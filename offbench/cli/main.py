"""The ``offbench`` command line."""
from __future__ import annotations

import os

import click

from offbench.errors import OffbenchError


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
def main():
    """offbench: offline RL benchmarks (IQL and its baselines) on one jit-compiled JAX pipeline."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@main.command()
@click.option("--algo", required=True, help="Algorithm name (see `offbench list algorithms`).")
@click.option("--suite", required=True, help="Task family: locomotion, antmaze, kitchen, adroit.")
@click.option("--dataset", "datasets", multiple=True,
              help="D4RL name (hopper-medium-v2), Minari id, or path to a D4RL hdf5 file; repeatable. "
                   "Default: every dataset of the suite that is available locally.")
@click.option("--seeds", default=1, show_default=True, help="Number of seeds, trained together (vmapped).")
@click.option("--seed", default=0, show_default=True, help="First seed.")
@click.option("--steps", default=1_000_000, show_default=True, help="Offline gradient steps.")
@click.option("--eval-every", default=5000, show_default=True, help="Gradient steps between evaluations.")
@click.option("--eval-episodes", default=None, type=int, help="Episodes per evaluation (default: the suite's).")
@click.option("--online-steps", default=0, show_default=True,
              help="Environment steps of online fine-tuning after the offline phase.")
@click.option("--from", "from_run", default=None, type=click.Path(),
              help="Fine-tune from the final checkpoint of an earlier offline run directory.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value; repeatable.")
@click.option("--results", default="results", show_default=True, type=click.Path(), help="Results folder.")
@click.option("--resume", is_flag=True, help="Continue from the run's last checkpoint.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run(algo, suite, datasets, seeds, seed, steps, eval_every, eval_episodes, online_steps, from_run, overrides,
        results, resume, no_progress):
    """Train and evaluate ALGO on datasets of SUITE; records go under RESULTS/<suite>/<dataset>/<algo>/."""
    from offbench import registry
    from offbench.config import parse_overrides
    from offbench.data.suites import get_suite
    from offbench.training.offline import RunOptions
    from offbench.training.run import run as run_one

    registry.get(algo)  # fail early on an unknown algorithm
    s = get_suite(suite)
    if not datasets:
        from offbench.data.sources import available_datasets

        datasets = available_datasets(s)
        if not datasets:
            raise OffbenchError(f"no dataset of suite {suite!r} is available locally; see `offbench data list` "
                                f"and get one with `offbench data download NAME` or `offbench data build NAME`")
    parsed = parse_overrides(overrides)
    for ds in datasets:
        opts = RunOptions(algo=algo, suite=suite, dataset=ds, seeds=seeds, seed=seed, steps=steps,
                          eval_every=eval_every, eval_episodes=eval_episodes, overrides=parsed, results=results,
                          resume=resume, progress=not no_progress, online_steps=online_steps, from_run=from_run)
        recs = run_one(opts, say=lambda m: click.echo(m, err=True))
        scores = [r.get("final_score") for r in recs]
        label = f" ({recs[0]['data']['label']} data)" if recs and recs[0]["data"]["rebuilt"] else ""
        shown = ", ".join("n/a" if x is None else f"{x:.1f}" for x in scores)
        mean = [x for x in scores if x is not None]
        click.echo(f"{algo} {recs[0]['dataset'] if recs else ds}{label}: final normalised score per seed [{shown}]"
                   + (f", mean {sum(mean) / len(mean):.1f}" if mean else ""))


@main.command("config")
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
    config, sources = resolve_with_sources(algorithm.default_config, algo, suite, dataset,
                                           parse_overrides(overrides), finetune=online)
    click.echo(f"# {algo}" + (f", suite {suite}" if suite else "") + (f", dataset {dataset}" if dataset else "")
               + (", fine-tuning" if online else "") + "; each value's layer after '#'")
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
            click.echo(f"{s.name:11s} {len(s.tasks):2d} datasets  score={s.score:7s} eval episodes={s.eval_episodes:3d}  "
                       f"{s.description}")
    else:  # one table for both `offbench list datasets` and `offbench data list`
        from offbench.cli.data import list_cmd as data_list
        click.get_current_context().invoke(data_list, suite=suite)

