"""``offbench data info`` and ``offbench data check``: the data card of a local dataset, and the physics check of a
D4RL hdf5 file (``offbench/data/physics_check.py``), stored beside the file for the card."""

from __future__ import annotations

from pathlib import Path

import click

from offbench.cli.data import _find_task, _local_minari
from offbench.errors import OffbenchError


def load_local(name: str):
    """(dataset, task, suite, kind) of a local dataset: a suite's D4RL name (original when present, else
    rebuilt), a Minari id or an hdf5 path."""
    from offbench.data import loaders
    from offbench.data.suites import hdf5_path

    if name.endswith((".hdf5", ".h5")) or Path(name).is_file():
        suite, task = _find_task(loaders.d4rl_task_name(Path(name).stem))
        return loaders.load_d4rl_hdf5(name), task, suite, "file"
    suite, task = _find_task(name)
    local = _local_minari()
    if task is None:
        if name in local:
            return loaders.load_minari(name), None, None, "minari"
        raise OffbenchError(f"no local dataset {name!r}; see `offbench data list`")
    if name == task.rebuilt_id or (name == task.name and task.minari_id not in local and not hdf5_path(task).exists()):
        if task.rebuilt_id not in local:
            raise OffbenchError(
                f"{task.name} is not present locally; `offbench data build {task.name}` or "
                f"`offbench data download {task.name}`"
            )
        return loaders.load_minari(task.rebuilt_id, task.obs_keys_for("rebuilt")), task, suite, "rebuilt"
    if task.minari_id in local and name != task.rebuilt_id:
        return loaders.load_minari(task.minari_id, task.obs_keys), task, suite, "original"
    return loaders.load_d4rl_hdf5(hdf5_path(task)), task, suite, "original"


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The card as JSON.")
def info_cmd(name, as_json):
    """The data card of a local dataset: sizes, episode lengths, terminals/timeouts, rewards, success,
    behaviour score on its own and on D4RL's reference returns."""
    import json

    from offbench.data.card import card, format_card
    from offbench.recipes.recipes import stale_reason

    ds, task, suite, kind = load_local(name)
    c = card(ds, task, suite)
    c["kind"] = kind
    check = _stored_or_quick_check(ds, task)
    if check is not None:
        c["physics_check"] = check
    if as_json:
        click.echo(json.dumps(c, indent=1))
        return
    for line in format_card(f"{task.name if task else name} [{kind}]", c):
        click.echo(line)
    if check is not None:
        from offbench.data.physics_check import format_check

        for line in format_check(check):
            click.echo("  " + line)
    why = stale_reason(task.name, ds.metadata) if task is not None and kind == "rebuilt" else ""
    if why:
        click.echo(f"  STALE: {why}")


# --------------------------------------------------------------------------------------------------
# check


def _physics_check(ds, task, samples: int, env_id: str | None = None, seed: int = 0):
    """The physics check of a D4RL hdf5 file that records simulator states (None for any other data)."""
    from offbench.data.physics_check import check_file, family

    env_id = env_id or (task.d4rl_env_id if task is not None else None)
    meta = ds.metadata
    if meta.get("source") != "d4rl-hdf5" or not meta.get("has_states") or not env_id or family(env_id) is None:
        return None
    return check_file(meta["path"], env_id, samples=samples, seed=seed)


def _stored_or_quick_check(ds, task):
    """The data card's physics check: the one ``offbench data check`` stored for this file, else 50 steps now."""
    from offbench.data.physics_check import load_check

    path = ds.metadata.get("path") if ds.metadata.get("source") == "d4rl-hdf5" else None
    stored = load_check(path) if path else None
    if stored is not None:
        return dict(stored, stored=True)
    return _physics_check(ds, task, samples=50)


def _save_check(path, result: dict) -> Path:
    """Store a check's result beside the file with the file's size and time stamp and the MuJoCo / Gymnasium
    versions that produced it (a fixed policy's returns differ between MuJoCo versions: it holds for these)."""
    from offbench.data.physics_check import file_stamp, stored_path
    from offbench.records.jsonio import write_json_atomic
    from offbench.records.store import versions

    v = versions()
    stamped = {**result, **file_stamp(path), "versions": {k: v[k] for k in ("mujoco", "gymnasium") if k in v}}
    write_json_atomic(stored_path(path), stamped)
    return stored_path(path)


@click.command("check")
@click.argument("file")
@click.option("--samples", default=200, show_default=True, help="Recorded steps to replay.")
@click.option("--seed", default=0, show_default=True, help="Which steps are sampled.")
@click.option("--env", "env_id", default=None, help="Environment id (default: the D4RL task of the file's name).")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
def check_cmd(file, samples, seed, env_id, as_json):
    """Replay recorded states of a D4RL hdf5 file in its D4RL environment: does the env reproduce the file's
    next states and rewards? Exit status 1 when it does not."""
    import json

    from offbench.data import loaders
    from offbench.data.physics_check import format_check

    if not Path(file).is_file():
        raise OffbenchError(f"{file} is not a file; `offbench data check` takes a D4RL hdf5 file")
    ds = loaders.load_d4rl_hdf5(file)
    _suite, task = _find_task(loaders.d4rl_task_name(Path(file).stem))
    if not ds.metadata.get("has_states"):
        raise OffbenchError(f"{file} records no simulator states (infos/qpos, infos/qvel): nothing to check")
    if env_id is None and (task is None or not task.d4rl_env_id):
        raise OffbenchError(f"no D4RL task is named like {Path(file).name}: pass --env D4RL-...")
    result = _physics_check(ds, task, samples, env_id=env_id, seed=seed)
    if result is None:
        raise OffbenchError(
            f"no physics check for {env_id or task.d4rl_env_id}: pass --env D4RL-AntMaze-/Adroit/locomotion"
        )
    try:  # stored beside the file, for `offbench data info`; a read-only folder only loses that
        where = f"stored in {_save_check(file, result)}"
    except OffbenchError as exc:
        where = f"not stored ({exc})"
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        for line in format_check(result):
            click.echo(line)
        click.echo(f"  {where}")
    if result["verdict"] != "reproduces":
        raise SystemExit(1)
