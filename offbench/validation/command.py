"""The ``offbench validate`` command: run a protocol's groups, then write its verdict table and figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np

from offbench.errors import OffbenchError
from offbench.validation.protocol import Protocol, load_protocol


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def _missing_builds(protocol: Protocol) -> list[str]:
    from offbench.data.sources import available_datasets
    from offbench.data.suites import get_suite

    have = set()
    for spec in protocol.groups.values():
        for s in spec.get("suites") or []:
            have |= set(available_datasets(get_suite(s)))
    return [d for d in protocol.builds if d not in have]


def build_missing(protocol: Protocol, say=_say) -> None:
    """Rebuild every dataset of ``builds:`` that is not available locally, at the protocol's size."""
    for name in _missing_builds(protocol):
        size = protocol.builds[name]
        cmd = [sys.executable, "-m", "offbench", "data", "build", name, "--no-progress"]
        if size:
            cmd += ["--size", str(size)]
        say(f"building {name}" + (f" ({size} transitions)" if size else "") + ": " + " ".join(cmd[2:]))
        t0 = time.time()
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise OffbenchError(f"building {name} failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
        say(f"  built {name} in {time.time() - t0:.0f} s")


def calibrate(protocol: Protocol, seconds: float = 3.0) -> dict[str, float]:
    """Gradient steps per second of each algorithm's compiled, seed-vmapped chunk on this device, measured on
    synthetic data of locomotion's dimensions (17-D observations, 6-D actions). Compilation is excluded."""
    import jax
    import jax.numpy as jnp

    from offbench import registry
    from offbench.config import resolve
    from offbench.registry import Spec
    from offbench.training.step import init_seeds, make_train_chunk, make_train_step

    rng = np.random.default_rng(0)
    n = 50_000
    data = {
        "observations": rng.normal(size=(n, 17)),
        "actions": rng.uniform(-1, 1, (n, 6)),
        "rewards": rng.normal(size=n),
        "next_observations": rng.normal(size=(n, 17)),
        "terminals": np.zeros(n),
        "masks": np.ones(n),
        "timeouts": (np.arange(n) % 1000 == 999).astype(float),
    }
    ends = np.arange(n) % 1000 == 999  # episodes of 1000 steps, for preprocessing that needs them (one-step, 10%BC)
    out = {}
    algos = dict.fromkeys(a for spec in protocol.groups.values() for a in spec["algos"])
    for name in algos:
        algo = registry.get(name)
        config = resolve(algo.default_config, name, "locomotion")
        agent = algo.make(config, Spec(obs_dim=17, act_dim=6, total_steps=1_000_000))
        raw = algo.preprocess({**data, "episode_ends": ends}, config) if algo.preprocess is not None else data
        batch = {k: jnp.asarray(v, jnp.float32) for k, v in raw.items() if k != "episode_ends"}
        size = int(batch["rewards"].shape[0])
        length = 200
        states, keys = init_seeds(agent.init, list(range(protocol.seeds)))
        chunk = make_train_chunk(
            make_train_step(agent.update, int(config["batch_size"]), agent.steps_per_update),
            length,
            n_seeds=protocol.seeds,
        )
        states, keys, _ = chunk(states, keys, batch, size)  # compile
        jax.block_until_ready(states)
        t0, done = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            states, keys, _ = chunk(states, keys, batch, size)
            jax.block_until_ready(states)
            done += length
        out[name] = done / (time.perf_counter() - t0)
    return out


def estimate_lines(protocol: Protocol, rates: dict[str, float]) -> list[str]:
    from offbench import registry

    total, lines = 0.0, []
    for g, spec in protocol.groups.items():
        s = 0.0
        for a in spec["algos"]:
            updates = int(spec["steps"])
            if spec.get("online_steps") and registry.get(a).finetune:
                updates += int(spec["online_steps"])  # one update per environment step (IQL's fine-tuning)
            s += len(spec["datasets"]) * updates / rates[a]
        total += s
        lines.append(
            f"  {g}: {len(spec['algos'])} algorithms x {len(spec['datasets'])} datasets, "
            f"{spec['steps']} steps, {spec['seeds']} seeds: training ~{s / 3600:.2f} h"
        )
    device = _device()
    lines.insert(
        0,
        f"expected training wall time on this device ({device}), one job at a time: ~{total / 3600:.2f} h "
        f"(calibrated steps/s per {protocol.seeds} vmapped seeds: "
        + ", ".join(f"{a} {r:.0f}" for a, r in rates.items())
        + "); evaluation and data builds come on top",
    )
    return lines


def _device() -> str:
    import jax

    d = jax.devices()[0]
    return f"{d.platform} {getattr(d, 'device_kind', '')}".strip()


def run_groups(protocol: Protocol, results: Path, max_parallel: int, say=_say) -> list[str]:
    """Run every group's sweep; returns the jobs that did not finish (failed or interrupted)."""
    from offbench.sweeps.spec import make_spec
    from offbench.sweeps.sweep import run_sweep

    not_done: list[str] = []
    for name, group in protocol.groups.items():
        keys = {k: v for k, v in group.items() if k != "name"}
        spec = make_spec(keys, {"results": str(results), "max_parallel": max_parallel})
        say(
            f"== group {name}: {', '.join(spec.algos)} on {', '.join(spec.datasets)} ({spec.steps} steps"
            + (f" + {spec.online_steps} online" if spec.online_steps else "")
            + f", {spec.seeds} seeds)"
        )
        outcomes = run_sweep(spec, say) or {}
        not_done += [str(k) for k, o in outcomes.items() if o.get("outcome") not in ("finished", "skipped")]
    return not_done


def write_outputs(protocol: Protocol, results: Path, say=_say) -> Path:
    """verdicts.{md,csv,json} and one figure per claim under RESULTS/verdicts/; returns the folder."""
    from offbench.validation.render import render

    out = results / "verdicts"
    out.mkdir(parents=True, exist_ok=True)
    render(protocol, results, out)
    say(f"verdicts in {out}")
    return out


@click.command("validate")
@click.option(
    "--tier",
    default="cpu",
    show_default=True,
    help="Protocol: cpu (reduced, designed for <= 90 min of training on an idle 2-core machine; the calibrated "
    "estimate is printed first), cpu-finetune (optional), full (the paper's, a GPU), or a protocol .yaml.",
)
@click.option(
    "--results",
    default=None,
    type=click.Path(file_okay=False),
    help="Results folder. [default: results/validation/<tier>]",
)
@click.option("--max-parallel", default=1, show_default=True, help="Jobs at a time.")
@click.option("--dry-run", is_flag=True, help="Print the plan (and the time estimate) and stop.")
@click.option(
    "--estimate/--no-estimate",
    default=None,
    help="Calibrate each algorithm's speed here and print the expected wall time first. [default: on]",
)
@click.option("--verdicts-only", is_flag=True, help="Only (re)write the verdicts from the records there.")
def validate_command(tier, results, max_parallel, dry_run, estimate, verdicts_only):
    """Run the IQL paper's claims as a protocol and write a pass / fail / inconclusive verdict per claim."""
    protocol = load_protocol(tier)
    results = Path(results or os.path.join("results", "validation", protocol.tier)).expanduser().resolve()
    _say(protocol.label)
    n_runs = len(protocol.group_runs())
    for c in protocol.claims:
        need = c.planned_seeds(protocol.alpha, protocol.power)
        _say(
            f"  claim {c.id}: {c.relation} margin {c.margin:g}, {protocol.groups[c.group]['seeds']} seeds run; "
            + (
                f"{need} needed for {protocol.power:.0%} power at the expected effect ({c.expect['from']})"
                if need
                else "the expected effect does not exceed the margin: no number of seeds gives that power"
                if c.expect
                else "no expected effect stated"
            )
        )
    _say(
        f"{len(protocol.claims)} claims, {len(protocol.groups)} run groups, {n_runs} (algorithm, dataset) runs "
        f"of {protocol.seeds} seeds; results in {results}"
    )
    if not verdicts_only:
        if estimate or estimate is None:
            for line in estimate_lines(protocol, calibrate(protocol)):
                _say(line)
        if dry_run:
            for g, a, d in protocol.group_runs():
                _say(f"  {g:16s} {a:12s} {d}")
            return
        build_missing(protocol)
        t0 = time.time()
        not_done = run_groups(protocol, results, max_parallel)
        wall = time.time() - t0
        _say(f"measured: the run groups took {wall / 60:.1f} min (training and evaluation; data builds before)")
        results.mkdir(parents=True, exist_ok=True)
        (results / "wall_time.json").write_text(json.dumps({"run_groups_s": round(wall, 1), "device": _device()}))
    out = write_outputs(protocol, results)
    summary = json.loads((out / "verdicts.json").read_text())
    for cid, v in summary["claims"].items():
        click.echo(f"{v:12s} {cid}")
    if not verdicts_only and not_done:
        raise click.ClickException(
            f"{len(not_done)} run(s) did not finish ({', '.join(not_done[:3])}{', ...' if len(not_done) > 3 else ''}); "
            f"their claims stay 'not run'. Fix the cause shown above and rerun `offbench validate --tier "
            f"{protocol.tier}` (finished runs are skipped)"
        )
