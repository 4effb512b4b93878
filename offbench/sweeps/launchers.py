"""Launchers of a sweep's jobs: ``local`` (threads watching ``offbench run`` subprocesses) and ``ray`` (one Ray
task per job), and the progress lines they print."""

from __future__ import annotations

import math
import os
import time

from offbench.errors import OffbenchError
from offbench.sweeps.spec import SweepSpec
from offbench.sweeps.status import _fmt_s, _fmt_score, _last_line

FORWARDED_ENV = (
    "MINARI_DATASETS_PATH",
    "OFFBENCH_DATA_DIR",
    "OFFBENCH_CONFIGS",
    "JAX_PLATFORMS",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
)


class Progress:
    """Jobs done / total with an ETA (from the jobs that ran in this sweep), printed as lines."""

    def __init__(self, jobs: list, parallel: int | None, say):
        self.jobs = {j.key: j for j in jobs}
        self.total = len(jobs)
        self.parallel = parallel
        self.say = say
        self.started = time.time()
        self.outcomes: dict[str, dict] = {}
        self.running: dict[str, float] = {}

    def start(self, key: str) -> None:
        self.running.setdefault(key, time.time())

    def eta(self) -> float | None:
        """Mean time of the jobs that ran here x the jobs left (less what the running ones have done) / slots."""
        ran = [o["elapsed_s"] for o in self.outcomes.values() if o["outcome"] in ("finished", "failed")]
        left = self.total - len(self.outcomes)
        if not ran or left == 0:
            return 0.0 if left == 0 else None
        avg, now = sum(ran) / len(ran), time.time()
        work = (left - len(self.running)) * avg + sum(max(avg - (now - t0), 0.0) for t0 in self.running.values())
        return work / max(1, min(self.parallel or left, left))

    def counts(self) -> str:
        c = {}
        for o in self.outcomes.values():
            c[o["outcome"]] = c.get(o["outcome"], 0) + 1
        parts = [f"{n} {k}" for k, n in sorted(c.items())]
        return ", ".join(parts) if parts else "none done yet"

    def done(self, outcome: dict) -> None:
        key = outcome["key"]
        self.running.pop(key, None)
        self.outcomes[key] = outcome
        what = {
            "finished": f"finished, mean score {_fmt_score(outcome.get('score'))}",
            "skipped": f"already finished, mean score {_fmt_score(outcome.get('score'))}",
            "failed": f"FAILED after {outcome.get('attempts')} attempts: {_last_line(outcome.get('error'))}",
            "busy": "left to the sweep that is running it",
            "interrupted": "interrupted",
        }.get(outcome["outcome"], outcome["outcome"])
        took = f" ({_fmt_s(outcome['elapsed_s'])})" if outcome["outcome"] in ("finished", "failed") else ""
        self.say(f"[{len(self.outcomes)}/{self.total}] {key}: {what}{took}; ETA {_fmt_s(self.eta())}")

    def heartbeat(self) -> None:
        from offbench.sweeps.jobs import seed_records

        now = time.time()
        busy = []
        for key, t0 in sorted(self.running.items()):
            recs = seed_records(self.jobs[key])
            step = max((r.get("step", 0) for r in recs if r), default=0)
            busy.append(f"{key} step {step}/{self.jobs[key].steps} ({_fmt_s(now - t0)})")
        self.say(
            f"[{len(self.outcomes)}/{self.total}] {self.counts()}; elapsed {_fmt_s(now - self.started)}, "
            f"ETA {_fmt_s(self.eta())}" + (f"; running: {'; '.join(busy)}" if busy else "")
        )


# --------------------------------------------------------------------------------------------------
# Launchers


def run_local(jobs: list, spec: SweepSpec, progress: Progress) -> None:
    """Up to ``max_parallel`` jobs at a time, each an ``offbench run`` subprocess watched by a thread."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from offbench.sweeps.jobs import execute_job

    def one(job):
        progress.start(job.key)
        return execute_job(job)

    pool = ThreadPoolExecutor(max_workers=max(1, spec.max_parallel or 1), thread_name_prefix="offbench-job")
    try:
        pending = {pool.submit(one, j): j for j in jobs}
        while pending:
            done, _ = wait(pending, timeout=spec.progress_every, return_when=FIRST_COMPLETED)
            if not done:
                progress.heartbeat()
            for fut in done:
                job = pending.pop(fut)
                progress.done(_outcome(fut.result, job))
    except BaseException:  # interrupted: stop the job processes first, or the threads would wait for them
        from offbench.sweeps.jobs import terminate_children

        terminate_children()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _outcome(get, job) -> dict:
    try:
        return get()
    except Exception as exc:  # the launcher itself failed for this job (not the run): recorded, others go on
        return {
            "key": job.key,
            "run_dir": job.run_dir,
            "outcome": "failed",
            "attempts": 0,
            "elapsed_s": 0.0,
            "score": None,
            "error": f"{type(exc).__name__}: {exc}",
        }


def run_ray(jobs: list, spec: SweepSpec, progress: Progress) -> None:
    """One Ray task per job with its resource request; Ray schedules them (``ray.wait`` for progress)."""
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise OffbenchError("the Ray launcher needs Ray: pip install ray") from exc
    from offbench.sweeps.jobs import execute_job

    started_here = False
    if not ray.is_initialized():
        started_here = True
        common = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if spec.address:
                ray.init(address=spec.address, **common)
            else:
                env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
                slots = spec.max_parallel or max(1, int((os.cpu_count() or 1) // spec.cpus_per_run))
                ray.init(
                    num_cpus=max(1, math.ceil(slots * spec.cpus_per_run)),
                    object_store_memory=100 * 1024**2,
                    runtime_env={"env_vars": env} if env else None,
                    **common,
                )
        except ConnectionError as exc:
            cause = (
                str(exc.__cause__ or exc).strip().splitlines()[-1][:300] if str(exc.__cause__ or exc).strip() else ""
            )
            raise OffbenchError(
                f"cannot connect to the Ray cluster at {spec.address} ({cause}); start it with "
                f"`ray start --head` (and give this machine its auth token if it uses one) or "
                f"leave out --address for a local runtime"
            ) from exc
    task = ray.remote(num_cpus=spec.cpus_per_run, num_gpus=spec.gpus_per_run, max_retries=1, retry_exceptions=False)(
        execute_job
    )
    limit = spec.max_parallel or len(jobs)
    queue = list(jobs)
    inflight: dict = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < limit:
                job = queue.pop(0)
                inflight[task.options(name=f"offbench:{job.key}").remote(job)] = job
                progress.start(job.key)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=spec.progress_every)
            if not ready:
                progress.heartbeat()
            for ref in ready:
                job = inflight.pop(ref)
                progress.done(_outcome(lambda ref=ref: ray.get(ref), job))
    except BaseException:
        for ref in inflight:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
