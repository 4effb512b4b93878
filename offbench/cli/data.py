"""``offbench data``: list, download or rebuild the datasets the suites name.

* ``offbench data list [--suite S]``: every dataset a suite names, where it comes from (download: Minari
  id / D4RL hdf5 url; local build: recipe, or why it cannot be rebuilt), whether it is present (original
  and/or rebuilt) and its size on disk.
* ``offbench data download NAME``: the Minari dataset or D4RL hdf5 file (fails in seconds with the build
  alternative when there is no network).
* ``offbench data build NAME|SUITE [--size N|small] [--seed S] [--behavior-dir DIR] [--overwrite]``: rebuild
  with the D4RL recipe from ``../shared/data`` (or ``$OFFBENCH_BEHAVIOR_DIR``) as Minari dataset
  ``rebuilt/NAME``; an existing build is replaced only with ``--overwrite`` (runs were normalised with its
  reference returns; a size other than the recipe's is part of what a build is).
* ``offbench data info NAME`` / ``offbench data check FILE``: ``offbench/cli/data_card.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from offbench.errors import OffbenchError


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _minari_root() -> Path:
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path())


def _local_minari() -> dict:
    try:
        import minari

        return dict(minari.list_local_datasets())
    except Exception:
        return {}


def _find_task(name: str):
    from offbench.data.suites import SUITES

    for s in SUITES.values():
        for t in s.tasks:
            if name in (t.name, t.minari_id, t.rebuilt_id):
                return s, t
    return None, None


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]})
def data_command():
    """List, download or rebuild (without a network) the datasets the suites use."""


@data_command.command("list")
@click.option("--suite", default=None, help="Only this suite.")
def list_cmd(suite):
    """Every dataset a suite names: source (download / local build), presence and size."""
    from offbench.data.suites import SUITES, get_suite, hdf5_path
    from offbench.recipes.recipes import all_recipes, built_version, unbuildable_reason

    local = _local_minari()
    root = _minari_root()
    recipes = all_recipes()
    suites = [get_suite(suite)] if suite else list(SUITES.values())
    stale = []
    click.echo(f"{'suite':11s} {'dataset':30s} {'download':34s} {'local build':28s} present")
    for s in suites:
        for t in s.tasks:
            dl = f"minari {t.minari_id}" if t.minari_id else ("D4RL hdf5" if t.url else "- (local build only)")
            rec = recipes.get(t.name)
            build = f"recipe, {rec.label}" if rec else "not buildable"
            why = "" if rec else f"  [not buildable: {unbuildable_reason(t.name)}]"
            present = []
            if t.minari_id and t.minari_id in local:
                present.append(f"original {_fmt_bytes(_dir_size(root / t.minari_id))}")
            if hdf5_path(t).exists():
                present.append(f"original hdf5 {_fmt_bytes(_dir_size(hdf5_path(t)))}")
            if t.rebuilt_id in local:
                meta = local[t.rebuilt_id]
                steps = meta.get("total_steps")
                built = built_version(meta) or 1
                mark = f", recipe v{built}"
                if rec is not None and built < rec.version:
                    mark += f" STALE (recipe is v{rec.version})"
                    stale.append(t.name)
                present.append(
                    f"rebuilt {_fmt_bytes(_dir_size(root / t.rebuilt_id))}"
                    + (f" ({int(steps):,} transitions{mark})" if steps is not None else mark)
                )
            click.echo(f"{s.name:11s} {t.name:30s} {dl:34s} {build:28s} {', '.join(present) or 'no'}{why}")
    if stale:
        click.echo(
            f"{len(stale)} rebuilt dataset(s) were built by an older recipe (STALE): their numbers are not "
            f"comparable with a current build; rebuild with `offbench data build NAME --overwrite` "
            f"({', '.join(stale)})"
        )


# --------------------------------------------------------------------------------------------------
# download


def _no_network(name: str, what: str, exc: Exception | str) -> OffbenchError:
    from offbench.recipes.recipes import get_recipe, unbuildable_reason

    alt = (
        f"build it instead with `offbench data build {name}`"
        if get_recipe(name) is not None
        else f"it cannot be rebuilt here either ({unbuildable_reason(name)})"
    )
    if isinstance(exc, OffbenchError):  # already says what failed and why (fetch.download_minari)
        return OffbenchError(f"{exc}; {alt}")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return OffbenchError(f"cannot download {what} ({reason[:120]}); {alt}")


@data_command.command("download")
@click.argument("name")
def download_cmd(name):
    """Download NAME (a D4RL name, Minari id, or suite dataset) from Minari or D4RL's server."""
    from offbench.data import fetch
    from offbench.data.loaders import minari_local_ids
    from offbench.data.suites import hdf5_path

    _, task = _find_task(name)
    minari_id = task.minari_id if task else (name if "/" in name else None)
    url = task.url if task else None
    key = task.name if task else name
    if minari_id is None and url is None and task is not None:
        raise OffbenchError(
            f"{task.name} has no download (offbench builds it locally): run `offbench data build {task.name}`"
        )
    if minari_id is None and url is None:
        raise OffbenchError(
            f"{name!r} is neither a suite dataset with a download nor a Minari id; see `offbench data list`"
        )
    what = f"Minari dataset {minari_id}" if minari_id is not None else url
    # the lock `offbench run` takes to obtain this dataset (fetch.obtain): two processes download it once
    with fetch.dataset_lock(key, say=lambda m: click.echo(m, err=True)):
        if minari_id is not None and minari_id in minari_local_ids():  # as Minari's own download skips it
            click.echo(f"Minari dataset {minari_id} is already present in {_minari_root() / minari_id}")
            return
        try:
            if minari_id is not None:
                why = fetch.unreachable(fetch.MINARI_HOST)  # fails in seconds without a network
                if why:
                    raise OSError(why)
                fetch.download_minari(minari_id)
            else:
                fetch.download_hdf5(url, hdf5_path(task), task.name)
        except Exception as exc:  # no network, unknown id, remote error
            raise _no_network(key, what, exc) from exc
    if minari_id is not None:
        click.echo(f"downloaded Minari dataset {minari_id} to {_minari_root() / minari_id}")
    else:
        click.echo(f"downloaded {url} to {hdf5_path(task)}")


# --------------------------------------------------------------------------------------------------
# build


def _recipe_or_error(name: str):
    from offbench.recipes.recipes import get_recipe, unbuildable_reason

    rec = get_recipe(name)
    if rec is None:
        _, task = _find_task(name)
        if task is not None and task.name != name and get_recipe(task.name) is not None:
            return get_recipe(task.name)
        raise OffbenchError(
            f"{name!r} cannot be rebuilt: {unbuildable_reason(name)}"
            + (
                "; try `offbench data download " + name + "`"
                if task is not None and (task.minari_id or task.url)
                else "; see `offbench data list`"
            )
        )
    return rec


def existing_build(name: str) -> str:
    """A description of the build of ``name`` already present ("" when there is none)."""
    from offbench.data.tasks import REBUILT_NAMESPACE
    from offbench.recipes.recipes import built_version

    meta = _local_minari().get(f"{REBUILT_NAMESPACE}/{name}")
    if meta is None:
        return ""
    steps = meta.get("total_steps")
    size = f"{int(steps):,} transitions" if steps is not None else "unknown size"
    return f"{size}, recipe version {built_version(meta) or 1}"


def build_one(
    name: str, size=None, seed: int = 0, behavior_dir=None, progress: bool = True, overwrite: bool = False
) -> str:
    """Run the recipe for ``name``; returns the Minari id written. An existing build is replaced only
    with ``overwrite`` (its reference returns normalised the runs made on it)."""
    from offbench.recipes.recipes import behavior_dir_or_error

    rec = _recipe_or_error(name)
    have = existing_build(rec.name)
    if have and not overwrite:
        raise OffbenchError(
            f"rebuilt/{rec.name} already exists ({have}); runs on it were normalised with its "
            f"reference returns: pass --overwrite to replace it"
        )
    bdir = behavior_dir_or_error(behavior_dir)
    return rec.build(size=size, seed=seed, behavior_dir=bdir, progress=progress)


@data_command.command("build")
@click.argument("target")
@click.option("--size", default=None, help="Transitions (default: D4RL's size), or 'small' for a tiny build.")
@click.option("--seed", default=0, show_default=True, help="Recipe seed (the build is deterministic given it).")
@click.option(
    "--behavior-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder with policies/ and demos/ (default: $OFFBENCH_BEHAVIOR_DIR or ../shared/data).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--overwrite", is_flag=True, help="Replace an existing build (of any size or recipe version).")
def build_cmd(target, size, seed, behavior_dir, no_progress, overwrite):
    """Rebuild TARGET (a dataset name or a whole suite) locally as Minari dataset rebuilt/<name>."""
    from offbench.data.suites import SUITES
    from offbench.recipes.recipes import all_recipes, unbuildable_reason

    if target in SUITES:
        recipes = all_recipes()
        names = [t.name for t in SUITES[target].tasks if t.name in recipes]
        for t in SUITES[target].tasks:
            if t.name not in recipes:
                click.echo(f"skipping {t.name}: cannot be rebuilt ({unbuildable_reason(t.name)})", err=True)
        if not names:
            raise OffbenchError(f"no dataset of suite {target!r} can be rebuilt here; see `offbench data list`")
    else:
        names = [_recipe_or_error(target).name]
    if not overwrite:  # refuse before building anything
        have = [f"{n} ({existing_build(n)})" for n in names if existing_build(n)]
        if have:
            raise OffbenchError(
                f"already built: {'; '.join(have)}; runs on them were normalised with their "
                "reference returns: pass --overwrite to replace them"
            )
    for name in names:
        t0 = time.time()
        dataset_id = build_one(name, size, seed, behavior_dir, progress=not no_progress, overwrite=True)
        meta = _local_minari().get(dataset_id, {})
        steps = meta.get("total_steps")
        eps = meta.get("total_episodes")
        click.echo(
            f"built {dataset_id} (rebuilt): {steps:,} transitions, {eps} episodes, "
            f"reference returns random {meta.get('ref_min_score', float('nan')):.1f} / expert "
            f"{meta.get('ref_max_score', float('nan')):.1f}, in {time.time() - t0:.1f}s"
            if steps is not None
            else f"built {dataset_id} in {time.time() - t0:.1f}s"
        )
