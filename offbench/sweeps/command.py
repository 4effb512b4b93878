"""The ``offbench sweep`` command (planning and running live in :mod:`offbench.sweeps.sweep`)."""

from __future__ import annotations

import sys

import click

from offbench.options import SetCommand
from offbench.sweeps.spec import load_spec_file, make_spec
from offbench.sweeps.sweep import run_sweep


def _driver_jax_on_cpu() -> None:
    """The sweep process only plans (importing the algorithms starts a JAX backend): keep it off the GPU so
    the jobs get all of its memory. A config setting, not an environment variable: jobs do not inherit it."""
    import warnings

    import jax

    jax.config.update("jax_platforms", "cpu")
    # jobs start with fork+exec (subprocess, Ray), which is safe; JAX's warning about fork is not for them
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


@click.command("sweep", cls=SetCommand)
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--algos", default=None, help="Comma-separated algorithms, e.g. iql,bc,td3bc.")
@click.option("--suites", default=None, help="Comma-separated suites, e.g. locomotion,antmaze.")
@click.option(
    "--datasets",
    default=None,
    help="Comma-separated datasets (D4RL names, Minari ids or hdf5 files). Default: every dataset of the "
    "suites available locally; `all`: every dataset of the suites.",
)
@click.option("--seeds", default=None, type=int, help="Seeds per job, trained together (vmapped). [default: 5]")
@click.option("--seed", default=None, type=int, help="First seed. [default: 0]")
@click.option("--steps", default=None, type=int, help="Offline gradient steps. [default: 1000000]")
@click.option("--online-steps", default=None, type=int, help="Online fine-tuning environment steps. [default: 0]")
@click.option(
    "--eval-every", default=None, type=int, help="Gradient steps between evaluations. [default: the suite's schedule]"
)
@click.option("--eval-episodes", default=None, type=int, help="Episodes per evaluation. [default: the suite's]")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="[ALGO:]KEY=VALUE",
    help="Config override for every algorithm, or for ALGO only; one or several after one --set, repeatable "
    "(adds to the file's).",
)
@click.option("--launcher", default=None, type=click.Choice(["local", "ray"]), help="[default: local]")
@click.option("--address", default=None, help="Ray cluster address (ray launcher); default: start a local runtime.")
@click.option(
    "--max-parallel",
    default=None,
    type=int,
    help="Jobs at a time. [default: local 1; ray: as many as the resources allow (local runtime: CPUs)]",
)
@click.option("--cpus-per-run", default=None, type=float, help="CPUs a Ray task requests. [default: 1]")
@click.option(
    "--gpus-per-run",
    default=None,
    type=float,
    help="GPUs a job requests, fractions allowed (0.25: four jobs per GPU, each with its share of the "
    "GPU memory). [default: 0]",
)
@click.option(
    "--retries", default=None, type=int, help="Retries of a failing job before it is recorded as failed. [default: 2]"
)
@click.option("--results", default=None, type=click.Path(file_okay=False), help="Results folder. [default: results]")
@click.option("--fresh", is_flag=True, default=None, help="Start unfinished runs over instead of resuming them.")
@click.option("--progress-every", default=None, type=float, help="Seconds between progress lines. [default: 60]")
def sweep_command(
    file,
    algos,
    suites,
    datasets,
    seeds,
    seed,
    steps,
    online_steps,
    eval_every,
    eval_episodes,
    overrides,
    launcher,
    address,
    max_parallel,
    cpus_per_run,
    gpus_per_run,
    retries,
    results,
    fresh,
    progress_every,
):
    """Run ALGOS x datasets of SUITES (each job: one algorithm on one dataset, all seeds in one process).

    FILE is an optional sweep YAML file with the same keys as the flags (flags given here win).
    Re-running the same sweep skips finished runs and resumes unfinished ones.
    """
    _driver_jax_on_cpu()
    file_values = load_spec_file(file) if file else {}
    cli_values = dict(
        algos=algos,
        suites=suites,
        datasets=datasets,
        seeds=seeds,
        seed=seed,
        steps=steps,
        online_steps=online_steps,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        set=list(overrides) or None,
        launcher=launcher,
        address=address,
        max_parallel=max_parallel,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        retries=retries,
        results=results,
        fresh=fresh or None,
        progress_every=progress_every,
    )
    spec = make_spec(file_values, cli_values)
    try:
        outcomes = run_sweep(spec)
    except KeyboardInterrupt:
        sys.exit(130)
    failed = [k for k, o in outcomes.items() if o["outcome"] == "failed"]
    if failed:
        click.echo(
            f"error: {len(failed)} job(s) failed: {', '.join(failed)}; their errors are in "
            f"<run dir>/sweep_job.json and sweep_job.log; `offbench status --results {spec.results}`",
            err=True,
        )
        sys.exit(1)
