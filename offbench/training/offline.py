"""The one training / evaluation loop every algorithm runs through.

* The dataset is put on the device once; batches are sampled on the device.
* ``make_train_step`` closes over the algorithm's update and the batch size and returns a
  ``lax.scan`` body; ``make_train_chunk`` scans K steps per compiled call and vmaps it over seeds, so N
  seeds train in one compiled program (one compile, N different results).
* Evaluation every ``eval_every`` steps (deterministic action, normalised score); the whole state is
  checkpointed at each evaluation and ``resume`` continues a killed run to the same final numbers.
* One record per seed under ``results/<suite>/<dataset>/<algo>/<variant>/``, written atomically as strict
  JSON; a run that did not finish never looks finished. Seeds are added to a run directory, never replaced
  (:func:`offbench.training.identity.claim`); the directory is locked while a run writes it (the sweep's lock).
* Options, config sizes and the dataset (finite values, dimensions and actions against the evaluation
  environment) are checked before anything compiles or is written (:mod:`offbench.training.checks`).

The loop never looks at which algorithm it runs.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from offbench.envs import ObsAdapter
from offbench.errors import OffbenchError
from offbench.evaluation.episodes import normalized_score
from offbench.evaluation.evaluator import make_act_fn, make_evaluator
from offbench.records import checkpoint, faults, trackers
from offbench.records import store as records
from offbench.records.jsonio import unwritable
from offbench.records.metrics_log import MetricsLog
from offbench.runs.bookkeeping import Bookkeeping
from offbench.training.identity import check_compatible, run_identity
from offbench.training.prepare import Prepared, RunOptions
from offbench.training.recording import finish, write_records
from offbench.training.step import ChunkCache, init_seeds, make_train_step

# --------------------------------------------------------------------------------------------------
# The run: its machinery (:class:`Run`) and functions over its bookkeeping (offbench.runs.bookkeeping)


class Run:
    """The machinery of one run of all seeds of one (algorithm, dataset): the compiled chunks, the evaluator and the
    training log. It holds no progress: that is the :class:`Bookkeeping` the training functions take and update.
    ``online``: the fine-tuning settings (offbench.training.online.OnlineSettings) of a run that fine-tunes."""

    def __init__(self, prep: Prepared, say: Callable[[str], None] = print, online=None):
        self.prep = prep
        self.say = say
        self.online = online
        self.seeds = prep.opts.seed_list
        self.started = time.time()
        self.chunks = ChunkCache(
            make_train_step(prep.agent.update, int(prep.config["batch_size"]), prep.agent.steps_per_update),
            n_seeds=len(self.seeds),
        )
        self.act_fn = make_act_fn(prep.agent.act)
        self.obs_adapter = ObsAdapter(prep.source.obs_keys, prep.obs_mean, prep.obs_std)
        self.evaluator = make_evaluator(
            prep.source,
            self.obs_adapter,
            self.act_fn,
            prep.agent.act,
            self.seeds,
            prep.eval_episodes,
            prep.opts.eval_backend,
            prep.opts.eval_workers,
        )
        info = dict(algo=prep.algorithm.name, suite=prep.opts.suite, dataset=prep.source.name, variant=prep.variant)
        self.metrics_log = MetricsLog(  # seed_<s>.metrics.csv: every logged step (offbench.records.metrics_log)
            prep.directory,
            self.seeds,
            max(1, min(int(prep.config["log_every"]), prep.opts.eval_every)),
            trackers.make(prep.opts.log, prep.directory, self.seeds, {**info, "config": prep.config}),
        )

    def init_states(self):
        return init_seeds(self.prep.agent.init, self.seeds)

    def fresh(self) -> Bookkeeping:
        """The bookkeeping of this run at step 0."""
        return Bookkeeping.fresh(self.seeds, self.prep.opts.steps)

    @property
    def ckpt_dir(self) -> Path:
        return records.checkpoint_dir(self.prep.directory, self.seeds)

    def identity(self) -> dict:
        """What a checkpoint must share with the run that resumes it (the run's identity and its seeds)."""
        return {**run_identity(self.prep), "seeds": self.seeds}

    def close(self) -> None:
        self.evaluator.close()
        self.metrics_log.close()


def save(run: Run, book: Bookkeeping, tree: dict, extra_info: dict | None = None) -> None:
    """Checkpoint ``tree`` (states, keys and whatever else a phase needs) with the bookkeeping, as one unit."""
    run.metrics_log.flush(book.curves)  # the log's rows up to this step are on disk before the checkpoint
    info = {**run.identity(), **book.to_info(), "config": run.prep.config, "variant": run.prep.variant}
    checkpoint.save(run.ckpt_dir, tree, {**info, **(extra_info or {})})


def resume(run: Run, template: dict):
    """``(tree, info, bookkeeping)`` of the run's checkpoint (``tree`` shaped like ``template``), checked to be this
    run's; ``(None, None, None)`` without a checkpoint."""
    if not checkpoint.exists(run.ckpt_dir):
        run.say(f"no checkpoint in {run.ckpt_dir}; starting from step 0")
        return None, None, None
    info = checkpoint.read_info(run.ckpt_dir)
    check_compatible(info, run.identity(), run.prep.config, run.ckpt_dir)
    tree, info = checkpoint.load(run.ckpt_dir, template)
    book = Bookkeeping.from_info(info, run.seeds, run.prep.opts.steps)
    run.metrics_log.resume(book.step)  # rows after the checkpoint's step go
    run.say(f"resumed from step {book.step}")
    return jax.device_put(tree), info, book


def evaluate(run: Run, book: Bookkeeping, states, phase: str = "offline", env_steps: int = 0, bar=None) -> list:
    """Evaluate every seed and append a curve point; ``bar`` (the run's progress bar) shows the episodes done
    while it runs (an AntMaze evaluation of 100 episodes per seed takes minutes on a CPU)."""
    p = run.prep
    shown = bar.postfix if bar is not None else None  # what the bar showed: kept beside the episodes, restored
    run.evaluator.progress = _episodes_shown_on(bar, shown) if bar is not None else None
    res = run.evaluator(states)
    if bar is not None:
        bar.set_postfix_str(shown or "", refresh=False)
    faults.point("evaluate")
    scores = normalized_score(res.returns, res.successes, p.score_type, p.source.ref_min, p.source.ref_max)
    out = []
    for i in range(len(book.seeds)):
        n = scores.shape[1]
        score = float(scores[i].mean()) if n else float("nan")
        if not math.isfinite(score) and n:
            book.diverged[i] = True
        book.curves[i].append(
            {
                "step": book.step,
                "phase": phase,
                "env_steps": env_steps,
                "score": score,
                "score_std": float(scores[i].std()) if n else float("nan"),
                "return_mean": float(res.returns[i].mean()) if n else float("nan"),
                "success_rate": float(res.successes[i].mean()) if n else float("nan"),
                "episode_length": float(res.lengths[i].mean()) if n else float("nan"),
            }
        )
        out.append(score)
    return out


def note_metrics(run: Run, book: Bookkeeping, metrics, n: int = 1) -> None:
    """The mean metrics (one value per seed) of the ``n`` steps that ended at ``book.step``."""
    book.last_metrics = {k: np.asarray(v) for k, v in metrics.items()}
    run.metrics_log.note(book.step, book.last_metrics, n)
    for i in range(len(book.seeds)):
        if any(not np.isfinite(v[i]) for v in book.last_metrics.values()):
            book.diverged[i] = True


def train_offline(run: Run, book: Bookkeeping, states, keys, bar=None):
    """The offline phase from ``book.step`` to the run's steps: scanned chunks, an evaluation, a checkpoint and
    ``running`` records every ``eval_every`` steps. Returns ``(states, keys)``; ``book`` is updated."""
    p = run.prep
    total, every = p.opts.steps, p.opts.eval_every
    log_every = max(1, min(int(p.config["log_every"]), every))
    size = jnp.asarray(p.size, jnp.int32)
    while book.step < total:
        next_eval = min((book.step // every + 1) * every, total)
        while book.step < next_eval:
            n = min(log_every, next_eval - book.step)
            compiled_s = run.chunks.compile_s
            first = not run.chunks.compiles()
            say = bar.write if bar is not None else run.say
            if first:
                faults.point("compile")
                say("compiling the training step ...")
            fn = run.chunks(n, states, keys, p.data, size, start=book.step)  # compiled ahead of time
            book.compile_s += run.chunks.compile_s - compiled_s
            if first:
                say(f"compiled in {run.chunks.compile_s:.1f} s")
            t0 = time.time()
            states, keys, metrics = fn(states, keys, p.data, size)
            jax.block_until_ready(metrics)
            book.train_s += time.time() - t0
            book.step += n
            note_metrics(run, book, metrics, n)
            faults.point("train")
            if bar is not None:
                bar.update(n)
                bar.set_postfix(postfix(book), refresh=False)
        evaluate(run, book, states, bar=bar)
        if bar is not None:
            bar.set_postfix(postfix(book), refresh=True)
        save(run, book, {"states": states, "keys": keys})
        write_records(run, book, "running")
    return states, keys


def postfix(book: Bookkeeping) -> dict:
    """Losses and the last evaluation, named with its step (the bar's one rate is its own: training
    steps per second of wall time, compile and evaluation included)."""
    post = {}
    for k in ("critic_loss", "actor_loss", "value_loss"):
        if k in book.last_metrics:
            post[k.replace("_loss", "")] = f"{float(np.mean(book.last_metrics[k])):.3g}"
    last = [c[-1] for c in book.curves if c]
    if last:
        scores = [c["score"] for c in last if c["score"] is not None and math.isfinite(c["score"])]
        post[f"score@{last[0]['step']}"] = f"{np.mean(scores):.1f}" if scores else "n/a"
    return post


def run_offline(prep: Prepared, say: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate all seeds of one (algorithm, dataset) offline; returns the final records."""
    opts = prep.opts
    run = Run(prep, say)
    states, keys = run.init_states()
    book = run.fresh()
    begin_fresh(run, book)
    if opts.resume and checkpoint.exists(run.ckpt_dir):
        tree, _, resumed = resume(run, {"states": states, "keys": keys})
        if tree is not None:
            states, keys, book = tree["states"], tree["keys"], resumed
    try:
        with progress_bar(opts, book.step, opts.steps, f"{prep.algorithm.name} {prep.source.name}") as bar:
            states, keys = train_offline(run, book, states, keys, bar)
    finally:
        run.close()
    return finish(run, book)


def begin_fresh(run: Run, book: Bookkeeping) -> None:
    """Without --resume, this run's seeds start over: with --overwrite their old records and their checkpoint
    go (never other seeds' records or checkpoints). Writes ``running`` records for the run's seeds."""
    prep, opts, say = run.prep, run.prep.opts, run.say
    try:
        prep.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(prep.directory, exc) from exc
    if opts.resume and checkpoint.exists(run.ckpt_dir):
        return
    if run.ckpt_dir.exists():  # deleted only with --overwrite, or when nothing in it was ever committed
        damage = checkpoint.damage(run.ckpt_dir)
        if (damage or checkpoint.exists(run.ckpt_dir)) and not opts.overwrite:
            raise OffbenchError(
                f"checkpoint {run.ckpt_dir} "
                + (f"is damaged ({damage})" if damage else "exists but this run's records do not")
                + f"; --overwrite deletes it and starts seeds {run.seeds} over"
                + ("" if damage or opts.resume else ", --resume continues it")
            )
        shutil.rmtree(run.ckpt_dir)
    write_records(run, book, "running")
    say(
        f"{prep.algorithm.name} on {prep.source.name} ({prep.source.kind} data, {len(prep.source.dataset)} "
        f"transitions), seeds {run.seeds}, records in {prep.directory}"
    )


def _episodes_shown_on(bar, shown: str | None, every_s: float = 0.5):
    """An evaluator's progress callback that adds "evaluating d/n episodes" to the bar's postfix ``shown`` (at most
    every ``every_s`` seconds, and at the end)."""
    last = [0.0]

    def show(done: int, total: int):
        now = time.time()
        if done >= total or now - last[0] >= every_s:
            last[0] = now
            bar.set_postfix_str(
                ", ".join(x for x in (shown, f"evaluating: {done}/{total} episodes") if x), refresh=True
            )

    return show


@contextlib.contextmanager
def progress_bar(opts: RunOptions, initial: int, total: int, desc: str):
    """A tqdm bar (closed on exit), or None with --no-progress. One rate: the bar's own steps/s."""
    if not opts.progress:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
    )
    try:
        yield bar
    finally:
        bar.close()
