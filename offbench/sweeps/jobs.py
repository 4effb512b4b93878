"""One sweep job = one (algorithm, dataset) with all its seeds, run as ``offbench run ... --no-progress``.

:func:`execute_job` is what a launcher calls: in a thread of the sweep process (local launcher) or inside
a Ray task (Ray launcher). It

1. takes the run directory's lock (``fcntl.flock`` on ``<run dir>/.sweep.lock``, the lock a plain
   ``offbench run`` takes too); if another process holds it, the job is left to it (outcome ``busy``);
2. skips the job when every seed's run is done for the same steps and config (outcome ``skipped``): its
   records are ``finished`` (:func:`offbench.records.record.is_finished`) or ran to the end and diverged
   (deterministic: running it again would diverge again; ``offbench status`` shows it as ``diverged``);
3. otherwise runs it, with ``--resume`` when the run directory holds a checkpoint of the same config and
   seeds, retrying up to ``retries`` times (a retry resumes from the last checkpoint);
4. keeps the job's state (attempts, errors, timings) in ``<run dir>/sweep_job.json`` (atomic writes) and
   the command's output in ``<run dir>/sweep_job.log``.

The child inherits the lock's file descriptor, so the run directory stays locked as long as the child
lives, even if the sweep that started it is gone.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from offbench.config import config_hash  # JAX-free: a Ray worker must not start a JAX backend
from offbench.records import store
from offbench.records.jsonio import read_json, write_json_atomic
from offbench.records.lock import HELD_ENV, RunLock  # one lock for runs and jobs
from offbench.records.record import is_finished as record_finished  # the one definition of a finished run

STATE_NAME = "sweep_job.json"
LOG_NAME = "sweep_job.log"
ERROR_CHARS = 2000

STOP = threading.Event()  # set by the launcher when the sweep is interrupted: no more attempts
_CHILDREN: set = set()
_CHILDREN_LOCK = threading.Lock()


@dataclasses.dataclass
class Job:
    algo: str
    suite: str
    dataset: str  # as given to `offbench run --dataset` (absolute path for files)
    name: str  # the dataset's name in the results folder
    run_dir: str  # absolute: <results>/<suite>/<name>/<algo>/<variant>
    results: str  # absolute results folder
    config_hash: str  # of the resolved config (pipeline.config_hash)
    seeds: int = 1
    seed: int = 0
    steps: int = 1_000_000
    online_steps: int = 0
    eval_every: int | None = None  # None: the suite's schedule
    eval_episodes: int | None = None
    overrides: tuple = ()  # "key=value" strings for --set
    retries: int = 2
    gpus_per_run: float = 0.0
    fresh: bool = False  # ignore checkpoints of unfinished runs (start them over)
    sweep_id: str = ""
    variant: str = "default"  # the run directory's variant (offbench.records.store.variant_name)

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.name}/{self.algo}" + ("" if self.variant == "default" else f"/{self.variant}")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))

    def command(self, resume: bool, overwrite: bool = False) -> list[str]:
        cmd = [
            "run",
            "--algo",
            self.algo,
            "--suite",
            self.suite,
            "--dataset",
            self.dataset,
            "--seeds",
            str(self.seeds),
            "--seed",
            str(self.seed),
            "--steps",
            str(self.steps),
            "--online-steps",
            str(self.online_steps),
            "--results",
            self.results,
            "--name",
            self.variant,
            "--no-progress",
        ]
        if self.eval_every is not None:
            cmd += ["--eval-every", str(self.eval_every)]
        if self.eval_episodes is not None:
            cmd += ["--eval-episodes", str(self.eval_episodes)]
        for pair in self.overrides:
            cmd += ["--set", pair]
        if resume:
            cmd.append("--resume")
        elif overwrite:
            cmd.append("--overwrite")
        return cmd


# --------------------------------------------------------------------------------------------------
# What is on disk


def seed_records(job: Job) -> list[dict | None]:
    out = []
    for s in job.seed_list:
        path = Path(job.run_dir) / f"seed_{s}.json"
        try:
            out.append(read_json(path))
        except (OSError, ValueError):
            out.append(None)
    return out


def _same_run(job: Job, rec: dict) -> bool:
    return (
        rec.get("steps") == job.steps
        and rec.get("online_steps", 0) == job.online_steps
        and config_hash(rec.get("config") or {}) == job.config_hash
    )


def is_done(job: Job, recs: list | None = None) -> bool:
    """Every seed's run of this job's steps and config is done: finished (``record.is_finished``), or it ran to
    its last step and diverged (running it again gives the same numbers)."""
    recs = seed_records(job) if recs is None else recs
    return all(
        rec is not None
        and _same_run(job, rec)
        and (record_finished(rec) or (rec.get("status") == "finished" and rec.get("diverged")))
        for rec in recs
    )


def is_finished(job: Job, recs: list | None = None) -> bool:
    """Every seed's record is a finished run (``record.is_finished``) of this job's steps and config."""
    recs = seed_records(job) if recs is None else recs
    return all(rec is not None and _same_run(job, rec) and record_finished(rec) for rec in recs)


def checkpoint_info(job: Job) -> dict | None:
    """The bookkeeping of the job's checkpoint (its unit in force, read as ``offbench run`` reads it), or None."""
    from offbench.errors import OffbenchError
    from offbench.records import checkpoint  # here: importing this module never imports JAX

    root = store.checkpoint_dir(job.run_dir, job.seed_list)
    try:
        return checkpoint.read_info(root) if checkpoint.exists(root) else None
    except OffbenchError:
        return None


def can_resume(job: Job) -> bool:
    """The run directory holds a checkpoint this job can continue from."""
    info = None if job.fresh else checkpoint_info(job)
    if info is None:
        return False
    return not store.checkpoint_differences(
        info,
        {
            "algo": job.algo,
            "seeds": job.seed_list,
            "steps": job.steps,
            "online_steps": job.online_steps,
            "config_hash": job.config_hash,
        },
    )


def read_state(run_dir: str | Path) -> dict:
    try:
        return read_json(Path(run_dir) / STATE_NAME)
    except (OSError, ValueError):
        return {}


def mean_score(recs: list) -> float | None:
    """Mean final score of the finished seeds (``record.is_finished``), else of the last evaluations."""
    done = [float(r["final_score"]) for r in recs if record_finished(r)]
    if done:
        return sum(done) / len(done)
    vals = [
        float(r["last_score"])
        for r in recs
        if r
        and isinstance(r.get("last_score"), (int, float))
        and r["last_score"] == r["last_score"]
        and not r.get("diverged")
    ]
    return sum(vals) / len(vals) if vals else None


# --------------------------------------------------------------------------------------------------
# Running a job


def terminate_children() -> None:
    """Stop every job process this process started (the sweep was interrupted)."""
    STOP.set()
    with _CHILDREN_LOCK:
        procs = list(_CHILDREN)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def _child_env(job: Job) -> dict:
    env = dict(os.environ, **{HELD_ENV: job.run_dir})  # the child runs under this job's lock
    if 0 < job.gpus_per_run < 1:
        # several jobs share one GPU: each JAX process may take only its share of the memory
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 * job.gpus_per_run:.3f}")
    return env


def _error_text(log_path: Path, offset: int) -> str:
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    if errors:  # an OffbenchError: one line that names the fix
        return errors[-1][len("error: ") :][:ERROR_CHARS]
    return "\n".join(lines[-15:])[-ERROR_CHARS:]


def _run_attempt(job: Job, resume: bool, lock_fd: int, log_path: Path) -> tuple[int, str]:
    # not resuming: this job's own unfinished records (a killed attempt) are started over; finished records of
    # another run length or config in the same directory are never replaced (the run refuses, the job fails)
    recs = [r for r in seed_records(job) if r is not None]
    overwrite = bool(recs) and not any(r.get("status") == "finished" for r in recs)
    args = job.command(resume, overwrite)
    with open(log_path, "ab") as log:
        log.write(
            f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} sweep {job.sweep_id} on {socket.gethostname()}: "
            f"offbench {' '.join(args)}\n".encode()
        )
        log.flush()
        offset = log.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "offbench.cli.child", str(os.getpid()), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(job),
            pass_fds=(lock_fd,),
        )
        with _CHILDREN_LOCK:
            _CHILDREN.add(proc)
        try:
            rc = proc.wait()
        except BaseException:  # interrupted (e.g. a cancelled Ray task): the child goes too
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(proc)
    return rc, ("" if rc == 0 else _error_text(log_path, offset))


def settle_finished_state(path: Path) -> None:
    """A sweep killed after its job wrote the last record, but before the sweep noted the job done, leaves
    ``running`` in the job's state file. The records are the truth: a finished run is done."""
    if not path.exists():
        return
    state = read_json(path)
    if state.get("status") != "done":
        if state.get("attempts"):
            state["attempts"][-1].setdefault("note", "records finished; the sweep stopped before noting it")
        state.update(status="done", ended_at=state.get("ended_at") or time.time(), error=None)
        write_json_atomic(path, state)


def execute_job(job: Job) -> dict:
    """Run one job to completion (or to its last failed retry); returns its outcome for the sweep."""
    t0 = time.time()
    out = {
        "key": job.key,
        "run_dir": job.run_dir,
        "attempts": 0,
        "elapsed_s": 0.0,
        "error": None,
        "score": None,
        "host": socket.gethostname(),
    }
    lock = RunLock(job.run_dir)
    if not lock.acquire():
        return dict(out, outcome="busy", error="another sweep is running this job")
    try:
        recs = seed_records(job)
        if is_done(job, recs):
            settle_finished_state(Path(job.run_dir) / STATE_NAME)
            return dict(out, outcome="skipped", score=mean_score(recs))
        state = {
            "key": job.key,
            "sweep_id": job.sweep_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "status": "running",
            "started_at": t0,
            "ended_at": None,
            "elapsed_s": 0.0,
            "retries": job.retries,
            "attempts": [],
            "error": None,
            "log": str(Path(job.run_dir) / LOG_NAME),
            "command": "offbench " + " ".join(job.command(False)),
        }
        state_path = Path(job.run_dir) / STATE_NAME
        for attempt in range(job.retries + 1):
            if STOP.is_set():
                break
            resume = can_resume(job)
            entry = {"attempt": attempt + 1, "resume": resume, "started_at": time.time()}
            state["attempts"].append(entry)
            write_json_atomic(state_path, state)
            try:
                rc, err = _run_attempt(job, resume, lock.fd, Path(job.run_dir) / LOG_NAME)
            except BaseException:
                state.update(status="interrupted", ended_at=time.time(), elapsed_s=time.time() - t0)
                write_json_atomic(state_path, state)
                raise
            recs = seed_records(job)
            if rc == 0 and not is_done(job, recs):
                err = "the run exited without finished records for every seed"
            entry.update(ended_at=time.time(), returncode=rc, error=err if (rc or err) else None)
            if rc == 0 and entry["error"] is None:
                state.update(status="done", ended_at=time.time(), elapsed_s=time.time() - t0, error=None)
                write_json_atomic(state_path, state)
                return dict(
                    out, outcome="finished", attempts=attempt + 1, elapsed_s=time.time() - t0, score=mean_score(recs)
                )
            state["error"] = err
            # a job killed by a signal may be the sweep being interrupted (Ctrl-C reaches the whole process
            # group at once): give the sweep a moment to say so before retrying
            if STOP.is_set() or (rc in (-2, -9, -15, 130, 137, 143) and STOP.wait(2.0)):
                break
        stopped = STOP.is_set()
        state.update(status="interrupted" if stopped else "failed", ended_at=time.time(), elapsed_s=time.time() - t0)
        write_json_atomic(state_path, state)
        return dict(
            out,
            outcome="interrupted" if stopped else "failed",
            attempts=len(state["attempts"]),
            elapsed_s=time.time() - t0,
            error=state["error"],
        )
    finally:
        lock.release()
