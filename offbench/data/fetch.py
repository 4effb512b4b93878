"""Obtaining the datasets a run needs: found locally, else downloaded (the original), else rebuilt.

:func:`obtain` is what ``offbench run`` calls before training. For each dataset that is not present
(original Minari dataset, D4RL hdf5 file or rebuilt dataset, as :mod:`offbench.data.sources` resolves
them) it downloads the original when its server answers (probed once per host, failing in well under a
second without a network), and otherwise rebuilds it with its recipe, announced once with the label the
data will carry and a time estimate. Several builds run in parallel worker processes. Every download
and build holds a per-dataset file lock (``<minari root>/.offbench-locks/``), so two runs needing the
same dataset obtain it once: the second waits and then finds it. Builds and Minari downloads are
written through :class:`offbench.data.staging.Staging`, so a killed one leaves nothing that loads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from offbench.data.naming import is_dataset_file
from offbench.data.staging import Staging, minari_root, remove_stale_stages
from offbench.data.suites import Suite, hdf5_path
from offbench.data.tasks import Task
from offbench.errors import OffbenchError

NETWORK_TIMEOUT = 8.0  # seconds; a machine without a network must fail fast (also `offbench data download`)
MINARI_HOST = "https://huggingface.co"  # Minari's remote datasets are served from the Hugging Face Hub
BUILD_OVERHEAD_S = 15.0  # start-up, reference returns (their episodes), writing

_reachable: dict[str, str] = {}  # host -> "" (answers) or why not, once per process


def present(task: Task, local: set | None = None) -> bool:
    """The dataset is on disk in any form a run resolves (original Minari / hdf5, or rebuilt)."""
    from offbench.data.loaders import minari_local_ids

    local = minari_local_ids() if local is None else local
    return (
        (task.minari_id is not None and task.minari_id in local) or task.rebuilt_id in local or hdf5_path(task).exists()
    )


def _have(name: str, task: Task, local: set | None = None) -> bool:
    """A Minari id names one form of the data (the original or the rebuilt one); a D4RL name takes either."""
    if name in (task.minari_id, task.rebuilt_id):
        from offbench.data.loaders import minari_local_ids

        return name in (minari_local_ids() if local is None else local)
    return present(task, local)


def _task_of(suite: Suite, name: str) -> Task | None:
    """The suite task ``name`` stands for; None for a file path or a Minari id the suite does not name."""
    if is_dataset_file(name):
        return None
    if "/" in name:
        return next((t for t in suite.tasks if name in (t.minari_id, t.rebuilt_id)), None)
    return suite.task(name)  # an unknown name is an error that lists the suite's datasets


def unreachable(url: str) -> str:
    """ "" when ``url``'s host answers within the timeout, else a short reason (cached per host)."""
    import urllib.request

    host = urlsplit(url).netloc
    if host not in _reachable:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=NETWORK_TIMEOUT):
                pass
            _reachable[host] = ""
        except Exception as exc:  # no network, DNS failure, refused, timeout, HTTP error
            reason = getattr(exc, "reason", None) or exc
            _reachable[host] = f"{host} unreachable: {str(reason).splitlines()[0][:100] or type(exc).__name__}"
    return _reachable[host]


def download_source(task: Task) -> tuple[str | None, str]:
    """(url to probe, what) of the task's original data; (None, why) when it has no download."""
    if task.minari_id:
        return MINARI_HOST, f"Minari dataset {task.minari_id}"
    if task.url:
        return task.url, f"D4RL file {task.url}"
    return None, "no original to download (offbench builds it locally)"


def download(task: Task, progress: bool = True) -> None:
    """Download the task's original: the Minari dataset (staged, renamed into place) or the D4RL hdf5 file."""
    if task.minari_id:
        download_minari(task.minari_id)
    else:
        download_hdf5(task.url, hdf5_path(task), task.name, progress)


def download_minari(minari_id: str) -> None:
    """Minari's own download, written through a stage so that a killed download leaves nothing that loads.
    A failure is an :class:`OffbenchError` saying why in one line (:func:`download_failure`)."""
    import warnings

    import minari

    stage = Staging(minari_id)
    try:
        with stage.active(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            minari.download_dataset(minari_id)
    except Exception as exc:  # Minari raises ImportError / ValueError / huggingface_hub and network errors
        raise OffbenchError(f"cannot download Minari dataset {minari_id}: {download_failure(exc)}") from exc
    stage.publish()


_NETWORK = re.compile(r"Connect|Timeout|Network|NameResolution")


def download_failure(exc: BaseException) -> str:
    """Why a download failed, in one line: the error's own text and what it means (a missing client, an unknown
    id, a server error, no network). Minari 0.5's default remote is ``hf://farama-minari``
    (``minari/storage/remotes/huggingface.py`` imports ``huggingface_hub``, the ``minari[hf]`` extra);
    ``minari/storage/hosting.py`` ``download_dataset`` raises ValueError for an id the remote does not list;
    huggingface_hub raises ``HfHubHTTPError`` (``.response.status_code``) for server answers, urllib
    ``HTTPError`` (``.code``), and ``ConnectionError`` / ``OSError`` subclasses come without a network."""
    text = (str(exc).splitlines() or [""])[0][:140] or type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "code", None)
    found = re.search(r"\b(?:HTTP Error )?([45]\d\d)\b", text) if not isinstance(status, int) else None
    status = int(found.group(1)) if found and isinstance(exc, OSError) else status
    if isinstance(exc, ImportError):
        what = "a download client is missing: pip install 'minari[hf]'"
    elif status == 404 or "RepositoryNotFound" in type(exc).__name__:
        what = "unknown dataset id: the server has no such dataset"
    elif isinstance(status, int) and status >= 500:
        what = f"server error (HTTP {status}): try again later"
    elif isinstance(status, int):
        what = f"the server refused the request (HTTP {status})"
    elif isinstance(exc, ValueError) and ("find any version" in text or "doesn't exist in the remote" in text):
        what = "unknown dataset id"
    elif isinstance(exc, (ConnectionError, TimeoutError, OSError)) or _NETWORK.search(type(exc).__name__):
        what = "no network"  # httpx (huggingface_hub's client) raises ConnectError / ConnectTimeout, not OSError
    else:
        what = type(exc).__name__
    return f"{text} ({what})"


def download_hdf5(url: str, dest: Path, desc: str, progress: bool = True) -> None:
    """``url`` streamed to a hidden per-process file beside ``dest``, renamed into place when complete."""
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT) as resp, open(tmp, "wb") as f:
            from tqdm.auto import tqdm

            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def dataset_lock(name: str, say: Callable[[str], None] = lambda m: None):
    """An exclusive ``flock`` for obtaining dataset ``name`` (blocking; says so when it has to wait)."""
    d = minari_root() / ".offbench-locks"
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / f"{name.replace('/', '__')}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"{name}: another process is obtaining it; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def estimate_s(task_suite: str, size: int, workers: int = 1) -> float:
    """Seconds to build ``size`` transitions of a dataset of ``task_suite`` (its ``Suite.build_rate``)."""
    from offbench.data.suites import SUITES, Suite

    rate = SUITES[task_suite].build_rate if task_suite in SUITES else Suite.build_rate
    return BUILD_OVERHEAD_S + size / rate / max(1, workers)


def _fmt_s(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"


def build_locked(
    name: str,
    size=None,
    seed: int = 0,
    behavior_dir=None,
    progress: bool = False,
    say: Callable[[str], None] = lambda m: None,
) -> tuple[str, str, float]:
    """Build ``name`` under its lock unless it is present by then; (name, "built" | "present", seconds).
    Runs in a worker process, so it takes plain arguments."""
    from offbench.data.suites import SUITES
    from offbench.recipes.recipes import behavior_dir_or_error, get_recipe

    task = next(t for s in SUITES.values() for t in s.tasks if t.name == name)
    t0 = time.time()
    with dataset_lock(name, say):
        if present(task):
            return name, "present", 0.0
        remove_stale_stages()
        get_recipe(name).build(
            size=size, seed=seed, behavior_dir=behavior_dir_or_error(behavior_dir), progress=progress
        )
    return name, "built", time.time() - t0


def obtain(
    suite: Suite,
    names: tuple | list,
    *,
    size=None,
    seed: int = 0,
    workers: int | None = None,
    behavior_dir=None,
    progress: bool = True,
    say: Callable[[str], None] = print,
    rebuild: bool = True,
) -> list[str]:
    """The datasets to run: ``names`` (or, when empty, every dataset of the suite), with the missing ones
    downloaded or rebuilt (``size`` transitions, default the recipe's). A named dataset that cannot be
    obtained is an error; of the whole suite, those are skipped with one line each. ``rebuild=False``
    (``offbench run --no-rebuild``): a dataset that cannot be downloaded is an error naming why, never rebuilt."""
    from offbench.data.loaders import minari_local_ids
    from offbench.recipes.common import resolve_size
    from offbench.recipes.recipes import get_recipe, unbuildable_reason

    explicit = bool(names)
    names = list(names) if explicit else [t.name for t in suite.tasks]
    tasks = {n: _task_of(suite, n) for n in names}
    local = minari_local_ids()
    missing = [n for n, t in tasks.items() if t is not None and not _have(n, t, local)]
    for n in [n for n, t in tasks.items() if t is None and "/" in n and n not in local and not Path(n).exists()]:
        why = unreachable(MINARI_HOST)  # a Minari id no suite names: Minari's own download, nothing to rebuild
        if why:
            raise OffbenchError(f"Minari dataset {n!r} is not present and cannot be downloaded ({why})")
        say(f"{n}: downloading it (Minari)")
        with dataset_lock(n, say):
            if n not in minari_local_ids():
                download_minari(n)
    downloads, builds, cannot = [], [], {}
    for n in missing:
        t = tasks[n]
        url, what = download_source(t) if n != t.rebuilt_id else (None, "a rebuilt dataset is built here")
        why = unreachable(url) if url else what
        rec = get_recipe(t.name) if n != t.minari_id else None  # a build makes rebuilt/<name>, not the original
        if not why:
            downloads.append(n)
        elif rec is not None:
            builds.append((n, why))
        else:
            alt = (
                f"a build makes {t.rebuilt_id}: pass {t.name} to take either"
                if n == t.minari_id
                else f"it cannot be rebuilt here ({unbuildable_reason(t.name)})"
            )
            cannot[n] = f"cannot download it ({why}) and {alt}"
    if cannot and explicit:
        n, why = next(iter(cannot.items()))
        raise OffbenchError(f"dataset {n!r} is not available locally and {why}")
    for n, why in cannot.items():
        say(f"skipping {n}: not present; {why}")
    for n in downloads:
        t = tasks[n]
        say(f"{t.name}: downloading the original ({download_source(t)[1]})")
        try:
            with dataset_lock(t.name, say):
                if not _have(n, t):
                    download(t, progress)
        except Exception as exc:  # the server answered but the download failed: rebuild it where a recipe exists
            why = f"download failed: {str(exc) if isinstance(exc, OffbenchError) else download_failure(exc)}"
            if get_recipe(t.name) is None or n == t.minari_id:
                raise OffbenchError(
                    f"dataset {n!r}: {why}; "
                    + (
                        f"a build makes {t.rebuilt_id}"
                        if n == t.minari_id
                        else f"it cannot be rebuilt here ({unbuildable_reason(t.name)})"
                    )
                ) from exc
            builds.append((n, why))
    if builds and not rebuild:
        n, why = builds[0]
        raise OffbenchError(
            f"dataset {n!r} is not present and cannot be downloaded ({why}); --no-rebuild refuses the rebuild: "
            f"download it where there is a network (`offbench data download {tasks[n].name}`), or run without "
            f"--no-rebuild to use offbench's rebuilt data (scores on it are not D4RL's)"
        )
    if builds:
        workers = max(1, min(workers or _cores(), len(builds)))
        total = 0.0
        for why in dict.fromkeys(w for _, w in builds):  # each reason once
            which = [n for n, w in builds if w == why]
            say(
                f"cannot download {'the original of ' + which[0] if len(which) == 1 else f'{len(which)} originals'} "
                f"({why}): rebuilding with offbench's recipes (scores on rebuilt data are not D4RL's; "
                f"--no-rebuild refuses this)"
            )
        for n, _ in builds:
            t = tasks[n]
            rec = get_recipe(t.name)
            k = resolve_size(size, rec.default_size)
            total += estimate_s(rec.suite, k)
            say(
                f"  {t.name} -> {t.rebuilt_id}: {k:,} transitions, labelled {rec.label!r}, "
                f"about {_fmt_s(estimate_s(rec.suite, k))} of CPU"
            )
        if len(builds) > 1:
            say(
                f"building {len(builds)} datasets in {workers} worker processes (--build-workers), "
                f"about {_fmt_s(total / workers)}"
            )
        _build_all([tasks[n].name for n, _ in builds], size, seed, behavior_dir, workers, progress, say)
    return [n for n in names if n not in cannot]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _build_all(names: list[str], size, seed, behavior_dir, workers: int, progress: bool, say) -> None:
    def done(name, how, secs):
        say(f"{name}: built in {secs:.0f} s" if how == "built" else f"{name}: built by another process meanwhile")

    if workers == 1:  # in this process, with the recipe's own progress bar (transitions)
        for n in names:
            done(*build_locked(n, size, seed, behavior_dir, progress, say))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from tqdm.auto import tqdm

    # spawn, not fork: this process has imported JAX (threads) by now
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool,
        tqdm(total=len(names), desc="building datasets", unit="dataset", disable=not progress) as bar,
    ):
        futures = [pool.submit(build_locked, n, size, seed, behavior_dir, False) for n in names]
        try:
            for f in as_completed(futures):
                bar.update(1)
                done(*f.result())
        except BaseException as exc:
            for f in futures:
                f.cancel()
            if isinstance(exc, BrokenProcessPool):
                raise OffbenchError(
                    "a dataset build worker process died (killed, or out of memory); run again: "
                    "finished builds are kept, unfinished ones left nothing behind"
                ) from exc
            raise
