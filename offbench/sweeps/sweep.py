"""``offbench sweep``: a whole benchmark table as one command (``offbench status`` reads it: :mod:`.status`).

A sweep plans one job per (algorithm, dataset) -- all seeds of a job train vmapped in one process, one
compiled program -- and runs the jobs with a launcher:

* ``local``: up to ``--max-parallel`` jobs at a time as subprocesses of this machine;
* ``ray``: one Ray task per job with a resource request (``--cpus-per-run``, fractional
  ``--gpus-per-run``), on the cluster at ``--address`` or on a local Ray runtime started for the sweep.

Jobs are idempotent (see :mod:`offbench.sweeps.jobs`): finished runs are skipped, unfinished ones resume
from their checkpoints, failures are retried and then recorded, and one run directory is owned by one job
through a lock. Results land in ``RESULTS/<suite>/<dataset>/<algo>/seed_<s>.json`` like ``offbench run``'s,
so ``offbench report --results RESULTS`` reads them; the sweep's plan and outcome are kept in
``RESULTS/.sweeps/<sweep id>.json``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from pathlib import Path

import click

from offbench.data.naming import dataset_name, is_dataset_file
from offbench.errors import OffbenchError
from offbench.sweeps.launchers import Progress, run_local, run_ray
from offbench.sweeps.spec import SweepSpec
from offbench.sweeps.status import SWEEPS_DIR, _fmt_s, _fmt_score, _last_line

# --------------------------------------------------------------------------------------------------
# Planning: one job per (algorithm, suite, dataset)


def _suite_datasets(spec: SweepSpec, suites: list, say) -> list[tuple]:
    """(suite, dataset as given to `offbench run`) pairs."""
    from offbench.data.sources import available_datasets

    pairs = []
    if not spec.datasets or spec.datasets == ["all"]:
        for s in suites:
            names = [t.name for t in s.tasks]
            if not spec.datasets:
                avail = available_datasets(s)
                missing = [n for n in names if n not in avail]
                if missing:
                    say(
                        f"{s.name}: {len(missing)} of {len(names)} datasets are not available locally and are left "
                        f"out (see `offbench data list`; `--datasets all` plans them anyway)"
                    )
                names = avail
            pairs += [(s, n) for n in names]
        if not pairs:
            raise OffbenchError(
                "no dataset of the chosen suites is available locally; get one with `offbench data "
                "download NAME` or `offbench data build NAME`, or name them with --datasets"
            )
        return pairs
    for ds in spec.datasets:
        if is_dataset_file(ds):
            owners = [s for s in suites if any(t.name == dataset_name(ds) for t in s.tasks)] or (
                suites if len(suites) == 1 else []
            )
            if not owners:
                raise OffbenchError(
                    f"dataset file {ds}: name it after a D4RL dataset of one suite or sweep one "
                    f"suite at a time (--suites SUITE)"
                )
            path = str(Path(ds).expanduser().resolve())
            pairs += [(s, path) for s in owners[:1]]
            continue
        owners = [s for s in suites if any(ds in (t.name, t.minari_id, t.rebuilt_id) for t in s.tasks)]
        if not owners and "/" in ds and len(suites) == 1:
            owners = suites  # a Minari id the suite does not list
        if not owners:
            raise OffbenchError(
                f"dataset {ds!r} belongs to none of the suites {', '.join(s.name for s in suites)}; "
                f"see `offbench list datasets`"
            )
        pairs += [(s, ds) for s in owners]
    return pairs


def _split_overrides(pairs: list, algos: list) -> dict:
    """``key=value`` applies to every algorithm, ``ALGO:key=value`` to ALGO only."""
    out = {a: [] for a in algos}
    for pair in pairs:
        head = pair.split("=", 1)[0]
        if ":" in head:
            algo, rest = pair.split(":", 1)
            if algo not in out:
                raise OffbenchError(
                    f"--set {pair!r}: {algo!r} is not one of the sweep's algorithms ({', '.join(algos)})"
                )
            out[algo].append(rest)
        else:
            for a in algos:
                out[a].append(pair)
    return out


def plan(spec: SweepSpec, sweep_id: str, say=lambda m: None) -> list:
    """The sweep's jobs; bad algorithms, suites, datasets or config keys are errors before anything runs."""
    from offbench import registry
    from offbench.config import parse_overrides
    from offbench.data.suites import get_suite
    from offbench.runs.identity import identify
    from offbench.runs.spec import RunSpec
    from offbench.sweeps.jobs import Job

    algos = [registry.get(a) for a in dict.fromkeys(spec.algos)]
    suites = [get_suite(s) for s in dict.fromkeys(spec.suites)]
    if spec.online_steps:
        offline_only = [a.name for a in algos if not a.finetune]
        if offline_only:
            say(f"left out of the fine-tuning sweep (offline only): {', '.join(offline_only)}")
            algos = [a for a in algos if a.finetune]
            if not algos:
                raise OffbenchError("none of the algorithms can be fine-tuned online; drop --online-steps")
    overrides = _split_overrides(spec.set, [a.name for a in algos])
    results = Path(spec.results).expanduser().resolve()
    jobs, seen = [], set()
    for suite, ds in _suite_datasets(spec, suites, say):
        for algo in algos:
            ident = identify(  # the run's identity, as `offbench run` derives it (offbench.runs.identity)
                RunSpec.of(
                    algo.name,
                    suite.name,
                    ds,
                    results,
                    overrides=parse_overrides(overrides[algo.name]),
                    steps=spec.steps,
                    online_steps=spec.online_steps,
                    seeds=range(spec.seed, spec.seed + spec.seeds),
                )
            )
            job = Job(
                algo=algo.name,
                suite=suite.name,
                dataset=ds,
                name=ident.folder,
                variant=ident.variant,
                run_dir=str(ident.run_dir),
                results=str(results),
                config_hash=ident.config_hash,
                seeds=spec.seeds,
                seed=spec.seed,
                steps=spec.steps,
                online_steps=spec.online_steps,
                eval_every=spec.eval_every,
                eval_episodes=spec.eval_episodes,
                overrides=tuple(overrides[algo.name]),
                retries=spec.retries,
                gpus_per_run=spec.gpus_per_run,
                fresh=spec.fresh,
                sweep_id=sweep_id,
            )
            if job.run_dir in seen:
                raise OffbenchError(f"two jobs would write to {job.run_dir}; list each dataset once")
            seen.add(job.run_dir)
            jobs.append(job)
    return jobs


# --------------------------------------------------------------------------------------------------
# The sweep file


def _write_sweep_file(path: Path, spec: SweepSpec, jobs: list, progress: Progress | None, status: str) -> None:
    from offbench.records.jsonio import write_json_atomic

    write_json_atomic(
        path,
        {
            "schema": "offbench-sweep/1",
            "status": status,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": progress.started if progress else time.time(),
            "updated_at": time.time(),
            "command": " ".join(sys.argv),
            "spec": dataclasses.asdict(spec),
            "jobs": [
                {
                    "key": j.key,
                    "run_dir": j.run_dir,
                    "algo": j.algo,
                    "suite": j.suite,
                    "dataset": j.dataset,
                    "seeds": j.seed_list,
                    "steps": j.steps,
                    "online_steps": j.online_steps,
                    **({"outcome": progress.outcomes.get(j.key)} if progress else {}),
                }
                for j in jobs
            ],
        },
    )


# --------------------------------------------------------------------------------------------------
# The commands


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def run_sweep(spec: SweepSpec, say=_say) -> dict:
    """Plan and run a sweep; returns {key: outcome}."""
    from offbench.sweeps import jobs as sweep_jobs

    sweep_id = time.strftime("%Y%m%d-%H%M%S") + f"-{socket.gethostname()}-{os.getpid()}"
    jobs = plan(spec, sweep_id, say)
    results = Path(spec.results).expanduser().resolve()
    sweep_file = results / SWEEPS_DIR / f"{sweep_id}.json"
    parallel = (spec.max_parallel or 1) if spec.launcher == "local" else spec.max_parallel
    say(
        f"sweep {sweep_id}: {len(jobs)} jobs ({len({j.algo for j in jobs})} algorithms x "
        f"{len({(j.suite, j.name) for j in jobs})} datasets, {spec.seeds} seeds each) with the {spec.launcher} "
        f"launcher; results in {results}"
    )
    progress = Progress(jobs, parallel, say)
    _write_sweep_file(sweep_file, spec, jobs, progress, "running")
    sweep_jobs.STOP.clear()
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    in_main = _in_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, on_term)
    status = "finished"
    try:
        (run_local if spec.launcher == "local" else run_ray)(jobs, spec, progress)
    except KeyboardInterrupt:
        status = "interrupted"
        sweep_jobs.terminate_children()
        say("sweep interrupted; run the same command again to finish what is missing")
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
        _write_sweep_file(sweep_file, spec, jobs, progress, status)
        summarize(jobs, progress, sweep_file, say)
    return progress.outcomes


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def summarize(jobs: list, progress: Progress, sweep_file: Path, say) -> None:
    say("")
    say(f"{'outcome':11s} {'job':52s} {'tries':>5s} {'time':>7s} {'score':>6s}")
    for j in jobs:
        o = progress.outcomes.get(j.key) or {
            "outcome": "interrupted" if j.key in progress.running else "not run",
            "attempts": 0,
            "elapsed_s": None,
        }
        note = f"  {_last_line(o.get('error'))[:100]}" if o["outcome"] == "failed" else ""
        say(
            f"{o['outcome']:11s} {j.key:52s} {o.get('attempts', 0):5d} {_fmt_s(o.get('elapsed_s')):>7s} "
            f"{_fmt_score(o.get('score')):>6s}{note}"
        )
    say(f"{len(jobs)} jobs: {progress.counts()} in {_fmt_s(time.time() - progress.started)}; sweep file {sweep_file}")
