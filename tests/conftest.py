"""Shared fixtures: small datasets written by the tests themselves, isolated data folders; the kill / resume /
watchdog helpers of the reliability, pipeline and sweep tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")


def _session_compilation_cache() -> None:
    """JAX's persistent compilation cache in a folder private to this test session, for this process and the
    ``offbench`` processes the tests start (they inherit the environment). The suite compiles the same tiny
    programs again and again, in this process (every run builds new jitted closures, so JAX's in-memory cache
    never hits across tests) and above all in child processes (test_cli_smoke's fine-tuning run in a
    pseudo-terminal: 28 s cold, 5.5 s with its programs in the cache); a hit loads the compiled program instead
    of compiling it (test_reliability.py: 351 s -> 142 s on a shared 2-core machine).
    It cannot change a number: JAX keys an entry by the program's HLO, the compile options, the backend and the
    jax / jaxlib versions, and a hit runs the very program a miss would have compiled. Nor what a test checks:
    no test counts compilations through JAX's persistent cache (ChunkCache / ``_cache_size()`` are in memory), a
    hit still takes time (``compile_s > 0``), and the hang regressions (XLA:CPU deadlocks) are about running
    programs, which a hit runs exactly as a miss would. The folder starts empty and is removed at exit (nothing
    shared with other sessions or the user's cache; under pytest-xdist the workers share the controller's).
    Entries are written without a lock (JAX's lock comes with its eviction, which rescans the folder at every
    write): a process that reads an entry another one is still writing (or one left half-written by a kill -9,
    as test_sweep's kill may) fails to decompress it (zlib's checksum), which JAX turns into a warning and a
    compile.
    On by default; ``OFFBENCH_TEST_JAX_CACHE=0`` turns it off, ``=DIR`` keeps it in DIR.
    History: with it on, once, under a heavy machine load, test_cli_smoke's fine-tuning run in a pseudo-terminal
    stalled at "compiling the training step" past its 240 s watchdog (80 s in all without the cache). Not
    reproduced: 14 runs of that command against one shared, populated cache beside a training job, 5 of them
    with two more CPU burners (load above 4; about 40 s a run), all finished and none read a damaged entry; the
    whole suite on two xdist workers with it on passed, that test in 30 s. A stall would still fail that test
    by its watchdog instead of hanging the session."""
    import atexit
    import shutil
    import tempfile

    choice = os.environ.get("OFFBENCH_TEST_JAX_CACHE", "1")
    if choice == "0" or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # off, or the caller chose a cache (a session's own folder when a test runs pytest)
    if choice not in ("", "1"):
        folder = choice
    else:
        folder = tempfile.mkdtemp(prefix="offbench-tests-jax-cache-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # every program, the small ones too (JAX's default caches only those compiling for over 1 s)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=folder, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    if "jax" in sys.modules:  # imported before this file (by a plugin): its config has read the environment
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


_session_compilation_cache()


@pytest.fixture(autouse=True)
def isolated_data(tmp_path_factory, monkeypatch):
    """Every test sees empty, private Minari / hdf5 folders (never the user's datasets)."""
    root = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root / "minari"))
    monkeypatch.setenv("OFFBENCH_DATA_DIR", str(root / "d4rl"))
    yield


def write_hopper_hdf5(path, steps: int = 600, episode_len: int = 100, seed: int = 0, next_obs: bool = False):
    """A D4RL-format hdf5 file of real Hopper-v5 transitions under random actions (timeouts at
    ``episode_len``, terminals where the hopper falls)."""
    import gymnasium as gym

    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(seed)
    O, A, R, T, TO, N = [], [], [], [], [], []  # noqa: E741 (D4RL field initials)
    o, _ = env.reset(seed=seed)
    t = 0
    for _ in range(steps):
        a = rng.uniform(-1, 1, 3).astype(np.float32)
        o2, r, term, trunc, _ = env.step(a)
        t += 1
        timeout = (trunc or t >= episode_len) and not term
        O.append(o), A.append(a), R.append(r), T.append(term), TO.append(timeout), N.append(o2)
        o = o2
        if term or timeout:
            o, _ = env.reset()
            t = 0
    with h5py.File(path, "w") as f:
        f["observations"] = np.array(O, np.float32)
        f["actions"] = np.array(A, np.float32)
        f["rewards"] = np.array(R, np.float32)
        f["terminals"] = np.array(T)
        f["timeouts"] = np.array(TO)
        if next_obs:
            f["next_observations"] = np.array(N, np.float32)
    return path


@pytest.fixture(scope="session")
def hopper_file(tmp_path_factory):
    return str(write_hopper_hdf5(tmp_path_factory.mktemp("hdf5") / "hopper-random-v2.hdf5"))


TINY = {"hidden_dims": [32, 32], "batch_size": 64}


def tiny_overrides(**extra):
    return {**TINY, **extra}


def run_options(data, results, **kw):
    """RunOptions of a tiny IQL run on ``data`` (2 seeds, 40 steps, an evaluation of 1 episode every 20, logged
    every 20): the reliability, metrics-log and run-identity tests' run; ``kw`` replaces any field."""
    from offbench.training.prepare import RunOptions

    base = dict(
        algo="iql",
        suite="locomotion",
        dataset=data,
        seeds=2,
        steps=40,
        eval_every=20,
        eval_episodes=1,
        overrides=tiny_overrides(log_every=20),
        results=str(results),
        progress=False,
    )
    base.update(kw)
    return RunOptions(**base)


# --------------------------------------------------------------------------------------------------
# Killing runs, resuming them, and a watchdog for what could hang (test_reliability, test_pipeline, test_sweep)

_SCRIPT = Path(sys.executable).with_name("offbench")
OFFBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "offbench.cli"]


def private_env(root: Path, **extra) -> dict:
    """The environment of an ``offbench`` child process: data folders private to the test (under ``root``), the
    CPU, and no injected fault (``OFFBENCH_FAULT``) unless ``extra`` names one."""
    env = dict(
        os.environ,
        MINARI_DATASETS_PATH=str(root / "minari"),
        OFFBENCH_DATA_DIR=str(root / "d4rl"),
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("OFFBENCH_FAULT", None)
    env.update(extra)
    return env


def watchdog(cmd: list, env: dict | None = None, timeout: float = 300, what: str | None = None, **kw):
    """Run ``cmd`` to its end (its CompletedProcess, output captured as text). One still running after
    ``timeout`` seconds is killed and fails the test, named (``what``) with its last output, instead of hanging
    the whole pytest session."""
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr or "")
        pytest.fail(f"{what or ' '.join(map(str, cmd))[:300]} hung for {timeout} s; its last output: {out[-1500:]}")


def offbench(args: list, env: dict, timeout: float = 300, **kw):
    """``offbench ARGS`` in a child process, under :func:`watchdog`."""
    return watchdog([*OFFBENCH, *map(str, args)], env, timeout, **kw)


def kill_when(args: list, env: dict, ready, timeout: float = 240) -> None:
    """Start ``offbench ARGS`` and ``kill -9`` it once ``ready()`` holds (polled every 20 ms; or when it ended
    by itself, or after ``timeout`` seconds): the harshest kill, no clean-up in that process."""
    proc = subprocess.Popen([*OFFBENCH, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


@contextlib.contextmanager
def interrupted_after_evaluation(monkeypatch, when):
    """In the block, a run (``offbench.training.offline.evaluate``) is interrupted (KeyboardInterrupt, as Ctrl-C)
    right after the evaluation for which ``when(book, n)`` holds (``book``: the run's bookkeeping), ``n`` counting
    its evaluations from 1: after evaluating, before that evaluation's checkpoint. The block must run into it; the
    patch is undone after."""
    from offbench.training import offline

    original, calls = offline.evaluate, {"n": 0}

    def dying(run, book, *args, **kw):
        out = original(run, book, *args, **kw)
        calls["n"] += 1
        if when(book, calls["n"]):
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(offline, "evaluate", dying)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(offline, "evaluate", original)


def strict_load(path) -> dict:
    """A record read as strict JSON (NaN / Infinity are an error)."""

    def refuse(name):
        raise ValueError(f"{path}: {name} is not strict JSON")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def assert_same_records(got: dict, reference: dict, keys, context=()) -> None:
    """A resumed run ends with the uninterrupted run's numbers: records (by name) equal in ``keys``."""
    assert set(got) == set(reference), (*context, sorted(got), sorted(reference))
    for name, ref in reference.items():
        for key in keys:
            assert got[name][key] == ref[key], (*context, name, key)
