"""``offbench data``: list, download or rebuild the datasets the suites name.

* ``offbench data list [--suite S]``: every dataset a suite names, where it comes from (download: Minari
  id / D4RL hdf5 url; local build: recipe, or why it cannot be rebuilt), whether it is present (original
  and/or rebuilt) and its size on disk.
* ``offbench data download NAME``: the Minari dataset or D4RL hdf5 file (fails in seconds with the build
  alternative when there is no network).
* ``offbench data build NAME|SUITE [--size N|small] [--seed S] [--behavior-dir DIR]``: rebuild with the
  D4RL recipe from ``../shared/data`` (or ``$OFFBENCH_BEHAVIOR_DIR``) as Minari dataset ``rebuilt/NAME``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

from offbench.errors import OffbenchError

NETWORK_TIMEOUT = 8.0  # seconds; a machine without a network must fail fast


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
    from offbench.data.build.recipes import all_recipes, unbuildable_reason
    from offbench.data.suites import SUITES, get_suite, hdf5_path

    local = _local_minari()
    root = _minari_root()
    recipes = all_recipes()
    suites = [get_suite(suite)] if suite else list(SUITES.values())
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
                steps = local[t.rebuilt_id].get("total_steps")
                present.append(f"rebuilt {_fmt_bytes(_dir_size(root / t.rebuilt_id))}"
                               + (f" ({int(steps):,} transitions)" if steps is not None else ""))
            click.echo(f"{s.name:11s} {t.name:30s} {dl:34s} {build:28s} {', '.join(present) or 'no'}{why}")


# --------------------------------------------------------------------------------------------------
# download

def _probe(url: str) -> None:
    """Raise OffbenchError-free OSError when ``url``'s host cannot be reached within the timeout."""
    import urllib.request
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=NETWORK_TIMEOUT):
        pass


def _no_network(name: str, what: str, exc: Exception) -> OffbenchError:
    from offbench.data.build.recipes import get_recipe, unbuildable_reason
    alt = (f"build it instead with `offbench data build {name}`" if get_recipe(name) is not None
           else f"it cannot be rebuilt here either ({unbuildable_reason(name)})")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return OffbenchError(f"cannot download {what} ({reason[:120]}); {alt}")


@data_command.command("download")
@click.argument("name")
def download_cmd(name):
    """Download NAME (a D4RL name, Minari id, or suite dataset) from Minari or D4RL's server."""
    from offbench.data.suites import hdf5_path

    _, task = _find_task(name)
    minari_id = task.minari_id if task else (name if "/" in name else None)
    url = task.url if task else None
    key = task.name if task else name
    if minari_id is None and url is None and task is not None:
        raise OffbenchError(f"{task.name} has no download (offbench builds it locally): run "
                            f"`offbench data build {task.name}`")
    if minari_id is None and url is None:
        raise OffbenchError(f"{name!r} is neither a suite dataset with a download nor a Minari id; "
                            "see `offbench data list`")
    if minari_id is not None:
        import minari
        try:
            _probe("https://huggingface.co")
            with _quiet():
                minari.download_dataset(minari_id)
        except Exception as exc:  # no network, unknown id, remote error
            raise _no_network(key, f"Minari dataset {minari_id}", exc) from exc
        click.echo(f"downloaded Minari dataset {minari_id} to {_minari_root() / minari_id}")
        return
    dest = hdf5_path(task)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    try:
        import urllib.request
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT) as resp, open(tmp, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm.auto import tqdm
            with tqdm(total=total, unit="B", unit_scale=True, desc=task.name) as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise _no_network(key, f"{url}", exc) from exc
    click.echo(f"downloaded {url} to {dest}")


class _quiet:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        return self._w.__exit__(*a)


# --------------------------------------------------------------------------------------------------
# build

def build_one(name: str, size=None, seed: int = 0, behavior_dir=None, progress: bool = True) -> str:
    """Run the recipe for ``name``; returns the Minari id written."""
    from offbench.data.build.recipes import behavior_dir_or_error, get_recipe, unbuildable_reason

    rec = get_recipe(name)
    if rec is None:
        _, task = _find_task(name)
        if task is not None and task.name != name:
            return build_one(task.name, size, seed, behavior_dir, progress)
        raise OffbenchError(f"{name!r} cannot be rebuilt: {unbuildable_reason(name)}"
                            + ("; try `offbench data download " + name + "`" if task is not None and
                               (task.minari_id or task.url) else "; see `offbench data list`"))
    bdir = behavior_dir_or_error(behavior_dir)
    return rec.build(size=size, seed=seed, behavior_dir=bdir, progress=progress)


@data_command.command("build")
@click.argument("target")
@click.option("--size", default=None, help="Transitions (default: D4RL's size), or 'small' for a tiny build.")
@click.option("--seed", default=0, show_default=True, help="Recipe seed (the build is deterministic given it).")
@click.option("--behavior-dir", default=None, type=click.Path(file_okay=False),
              help="Folder with policies/ and demos/ (default: $OFFBENCH_BEHAVIOR_DIR or ../shared/data).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def build_cmd(target, size, seed, behavior_dir, no_progress):
    """Rebuild TARGET (a dataset name or a whole suite) locally as Minari dataset rebuilt/<name>."""
    from offbench.data.build.recipes import all_recipes, unbuildable_reason
    from offbench.data.suites import SUITES

    if target in SUITES:
        recipes = all_recipes()
        names = [t.name for t in SUITES[target].tasks if t.name in recipes]
        for t in SUITES[target].tasks:
            if t.name not in recipes:
                click.echo(f"skipping {t.name}: cannot be rebuilt ({unbuildable_reason(t.name)})", err=True)
        if not names:
            raise OffbenchError(f"no dataset of suite {target!r} can be rebuilt here; see `offbench data list`")
    else:
        names = [target]
    for name in names:
        t0 = time.time()
        dataset_id = build_one(name, size, seed, behavior_dir, progress=not no_progress)
        meta = _local_minari().get(dataset_id, {})
        steps = meta.get("total_steps")
        eps = meta.get("total_episodes")
        click.echo(f"built {dataset_id} (rebuilt): {steps:,} transitions, {eps} episodes, "
                   f"reference returns random {meta.get('ref_min_score', float('nan')):.1f} / expert "
                   f"{meta.get('ref_max_score', float('nan')):.1f}, in {time.time() - t0:.1f}s"
                   if steps is not None else f"built {dataset_id} in {time.time() - t0:.1f}s")
