"""The one training / evaluation loop every algorithm runs through.

* The dataset is put on the device once; batches are sampled on the device.
* ``make_train_step`` closes over the algorithm's update and the batch size and returns a
  ``lax.scan`` body; ``make_train_chunk`` scans K steps per compiled call and vmaps it over seeds, so N
  seeds train in one compiled program (one compile, N different results).
* Evaluation every ``eval_every`` steps (deterministic action, normalised score); the whole state is
  checkpointed at each evaluation and ``resume`` continues a killed run to the same final numbers.
* One record per seed under ``results/<suite>/<dataset>/<algo>/<variant>/``, written atomically as strict
  JSON; a run that did not finish never looks finished. Seeds are added to a run directory, never replaced
  (:func:`claim`); the directory is locked while a run writes it (the sweep's lock).
* Options, config sizes and the dataset (finite values, dimensions and actions against the evaluation
  environment) are checked before anything compiles or is written (:mod:`offbench.training.checks`).

The loop never looks at which algorithm it runs.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from offbench.config import config_hash
from offbench.envs import ObsAdapter
from offbench.errors import OffbenchError
from offbench.evaluation.evaluator import make_act_fn, make_evaluator, normalized_score
from offbench.records import checkpoint, faults, trackers
from offbench.records import store as records
from offbench.records.jsonio import unwritable
from offbench.records.metrics_log import MetricsLog
from offbench.training.identity import check_compatible, claim, quiet_mujoco, run_identity  # noqa: F401
from offbench.training.prepare import Prepared, RunOptions, prepare  # noqa: F401 (re-exported)
from offbench.training.step import ChunkCache, init_seeds, make_train_step

# --------------------------------------------------------------------------------------------------
# The run


class Run:
    """Trains all seeds of one (algorithm, dataset) together and writes their records."""

    def __init__(self, prep: Prepared, say: Callable[[str], None] = print):
        self.p = prep
        self.say = say
        self.seeds = prep.opts.seed_list
        self.chunks = ChunkCache(
            make_train_step(prep.agent.update, int(prep.config["batch_size"]), prep.agent.steps_per_update),
            n_seeds=len(prep.opts.seed_list),
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
        self.curves: list[list[dict]] = [[] for _ in self.seeds]
        self.step = 0
        self.compile_s = 0.0
        self.train_s = 0.0
        self.started = time.time()
        self.last_metrics: dict = {}
        self.diverged = [False] * len(self.seeds)
        info = dict(algo=prep.algorithm.name, suite=prep.opts.suite, dataset=prep.source.name, variant=prep.variant)
        self.metrics_log = MetricsLog(  # seed_<s>.metrics.csv: every logged step (offbench.records.metrics_log)
            prep.directory,
            self.seeds,
            max(1, min(int(prep.config["log_every"]), prep.opts.eval_every)),
            trackers.make(prep.opts.log, prep.directory, self.seeds, {**info, "config": prep.config}),
        )

    # -- state ---------------------------------------------------------------------------------
    def init_states(self):
        return init_seeds(self.p.agent.init, self.seeds)

    @property
    def ckpt_dir(self) -> Path:
        return records.checkpoint_dir(self.p.directory, self.seeds)

    def identity(self) -> dict:
        """What a checkpoint must share with the run that resumes it (the run's identity and its seeds)."""
        return {**run_identity(self.p), "seeds": self.seeds}

    def checkpoint_info(self) -> dict:
        return {
            **self.identity(),
            "step": self.step,
            "curves": self.curves,
            "config": self.p.config,
            "train_s": self.train_s,
            "diverged": self.diverged,
            "variant": self.p.variant,
        }

    def save(self, tree: dict, extra_info: dict | None = None):
        """Checkpoint ``tree`` (states, keys and whatever else a phase needs) with the run's bookkeeping."""
        self.metrics_log.flush(self.curves)  # the log's rows up to this step are on disk before the checkpoint
        checkpoint.save(self.ckpt_dir, tree, {**self.checkpoint_info(), **(extra_info or {})})

    def try_resume(self, template: dict):
        """The checkpointed tree (same structure as ``template``) and its info, or None without a checkpoint."""
        if not checkpoint.exists(self.ckpt_dir):
            self.say(f"no checkpoint in {self.ckpt_dir}; starting from step 0")
            return None, None
        info = checkpoint.read_info(self.ckpt_dir)
        check_compatible(info, self.identity(), self.p.config, self.ckpt_dir)
        tree, info = checkpoint.load(self.ckpt_dir, template)
        self.step = int(info["step"])
        self.curves = info["curves"]
        self.train_s = float(info.get("train_s", 0.0))
        self.diverged = list(info.get("diverged", self.diverged))
        self.metrics_log.resume(self.step)  # rows after the checkpoint's step go
        self.say(f"resumed from step {self.step}")
        return jax.device_put(tree), info

    # -- records -------------------------------------------------------------------------------
    def record(self, i: int, status: str, **extra) -> dict:
        p = self.p
        curve = self.curves[i]
        meta = p.source.dataset.metadata or {}
        rec = {
            "status": status,
            "algo": p.algorithm.name,
            "suite": p.opts.suite,
            "dataset": p.source.name,
            "seed": self.seeds[i],
            "seeds_in_run": self.seeds,
            "variant": p.variant,
            "config_hash": config_hash(p.config),
            "run_dir": str(p.directory),
            "data": {
                "kind": p.source.kind,
                "rebuilt": p.source.rebuilt,
                "label": p.source.label,
                "fingerprint": p.fingerprint,
                "recipe_version": meta.get("recipe_version"),
                "recipe": meta.get("recipe"),
                "size": len(p.source.dataset),
                "sampled_size": p.size,
                "metadata": p.source.dataset.metadata,
                "reward_scale": p.reward_scale,
                "reward_shift": p.reward_shift,
                "obs_normalized": p.obs_mean is not None,
            },
            "env": {
                "env_id": p.source.env_id,
                "family": p.source.env_family,
                "env_kwargs": p.source.env_kwargs,
                "max_episode_steps": p.source.max_episode_steps,
                "from_dataset_spec": bool(p.source.eval_env_spec),
                "note": p.source.env_note,
            },
            "reference": {"min": p.source.ref_min, "max": p.source.ref_max, "source": p.source.ref_source},
            "score_type": p.score_type,
            "eval_episodes": p.eval_episodes,
            "eval": {
                "backend": self.evaluator.backend,
                "episodes": p.eval_episodes,
                "every": p.opts.eval_every,
                "workers": int(self.evaluator.workers),
            },
            "steps": p.opts.steps,
            "online_steps": p.opts.online_steps,
            "eval_every": p.opts.eval_every,
            "step": self.step,
            "config": p.config,
            "versions": records.versions(),
            "curve": curve,
            "last_score": curve[-1]["score"] if curve else None,
            "diverged": self.diverged[i],
            "metrics": {k: float(v[i]) for k, v in self.last_metrics.items()},
            "compile_s": self.compile_s,
            "train_s": self.train_s,
            "elapsed_s": time.time() - self.started,
            "command": " ".join(sys.argv),
            "preset": p.opts.preset,
        }
        rec.update(extra)
        return rec

    def write_records(self, status: str, **extra_per_seed):
        for i, s in enumerate(self.seeds):
            extra = {k: (v[i] if isinstance(v, list) else v) for k, v in extra_per_seed.items()}
            records.write_record(self.p.directory, s, self.record(i, status, **extra))

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, states, phase: str = "offline", env_steps: int = 0, bar=None) -> list[float]:
        """Evaluate every seed and append a curve point; ``bar`` (the run's progress bar) shows the episodes done
        while it runs (an AntMaze evaluation of 100 episodes per seed takes minutes on a CPU)."""
        p = self.p
        shown = bar.postfix if bar is not None else None  # what the bar showed: kept beside the episodes, restored
        self.evaluator.progress = _episodes_shown_on(bar, shown) if bar is not None else None
        res = self.evaluator(states)
        if bar is not None:
            bar.set_postfix_str(shown or "", refresh=False)
        faults.point("evaluate")
        scores = normalized_score(res.returns, res.successes, p.score_type, p.source.ref_min, p.source.ref_max)
        out = []
        for i in range(len(self.seeds)):
            score = float(scores[i].mean()) if scores.shape[1] else float("nan")
            if not math.isfinite(score) and scores.shape[1]:
                self.diverged[i] = True
            self.curves[i].append(
                {
                    "step": self.step,
                    "phase": phase,
                    "env_steps": env_steps,
                    "score": score,
                    "score_std": float(scores[i].std()) if scores.shape[1] else float("nan"),
                    "return_mean": float(res.returns[i].mean()) if scores.shape[1] else float("nan"),
                    "success_rate": float(res.successes[i].mean()) if scores.shape[1] else float("nan"),
                    "episode_length": float(res.lengths[i].mean()) if scores.shape[1] else float("nan"),
                }
            )
            out.append(score)
        return out

    def note_metrics(self, metrics, n: int = 1):
        """The mean metrics (one value per seed) of the ``n`` steps that ended at ``self.step``."""
        self.last_metrics = {k: np.asarray(v) for k, v in metrics.items()}
        self.metrics_log.note(self.step, self.last_metrics, n)
        for i in range(len(self.seeds)):
            if any(not np.isfinite(v[i]) for v in self.last_metrics.values()):
                self.diverged[i] = True

    # -- the offline phase ---------------------------------------------------------------------
    def train_offline(self, states, keys, bar=None):
        p = self.p
        total, every = p.opts.steps, p.opts.eval_every
        log_every = max(1, min(int(p.config["log_every"]), every))
        size = jnp.asarray(p.size, jnp.int32)
        while self.step < total:
            next_eval = min((self.step // every + 1) * every, total)
            while self.step < next_eval:
                n = min(log_every, next_eval - self.step)
                compiled_s = self.chunks.compile_s
                first = self.compile_s == 0
                say = bar.write if bar is not None else self.say
                if first:
                    faults.point("compile")
                    say("compiling the training step ...")
                fn = self.chunks(n, states, keys, p.data, size, start=self.step)  # compiled ahead of time
                self.compile_s += self.chunks.compile_s - compiled_s
                if first:
                    say(f"compiled in {self.compile_s:.1f} s")
                t0 = time.time()
                states, keys, metrics = fn(states, keys, p.data, size)
                jax.block_until_ready(metrics)
                dt = time.time() - t0
                self.train_s += dt
                self.step += n
                self.note_metrics(metrics, n)
                faults.point("train")
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(self._postfix(), refresh=False)
            self.evaluate(states, bar=bar)
            if bar is not None:
                bar.set_postfix(self._postfix(), refresh=True)
            self.save({"states": states, "keys": keys})
            self.write_records("running")
        return states, keys

    def _postfix(self) -> dict:
        """Losses and the last evaluation, named with its step (the bar's one rate is its own: training
        steps per second of wall time, compile and evaluation included)."""
        post = {}
        for k in ("critic_loss", "actor_loss", "value_loss"):
            if k in self.last_metrics:
                post[k.replace("_loss", "")] = f"{float(np.mean(self.last_metrics[k])):.3g}"
        last = [c[-1] for c in self.curves if c]
        if last:
            scores = [c["score"] for c in last if c["score"] is not None and math.isfinite(c["score"])]
            post[f"score@{last[0]['step']}"] = f"{np.mean(scores):.1f}" if scores else "n/a"
        return post


def run_offline(prep: Prepared, say: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate all seeds of one (algorithm, dataset) offline; returns the final records."""
    opts = prep.opts
    runner = Run(prep, say)
    states, keys = runner.init_states()
    begin_fresh(prep, runner, opts, say)
    if opts.resume and checkpoint.exists(runner.ckpt_dir):
        tree, _ = runner.try_resume({"states": states, "keys": keys})
        if tree is not None:
            states, keys = tree["states"], tree["keys"]
    try:
        with progress_bar(opts, runner.step, opts.steps, f"{prep.algorithm.name} {prep.source.name}") as bar:
            states, keys = runner.train_offline(states, keys, bar)
    finally:
        runner.evaluator.close()
        runner.metrics_log.close()
    return finish(runner)


def begin_fresh(prep: Prepared, runner: Run, opts: RunOptions, say) -> None:
    """Without --resume, this run's seeds start over: with --overwrite their old records and their checkpoint
    go (never other seeds' records or checkpoints). Writes ``running`` records for the run's seeds."""
    try:
        prep.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(prep.directory, exc) from exc
    if opts.resume and checkpoint.exists(runner.ckpt_dir):
        return
    if runner.ckpt_dir.exists():  # deleted only with --overwrite, or when nothing in it was ever committed
        damage = checkpoint.damage(runner.ckpt_dir)
        if (damage or checkpoint.exists(runner.ckpt_dir)) and not opts.overwrite:
            raise OffbenchError(
                f"checkpoint {runner.ckpt_dir} "
                + (f"is damaged ({damage})" if damage else "exists but this run's records do not")
                + f"; --overwrite deletes it and starts seeds {runner.seeds} over"
                + ("" if damage or opts.resume else ", --resume continues it")
            )
        shutil.rmtree(runner.ckpt_dir)
    runner.write_records("running")
    say(
        f"{prep.algorithm.name} on {prep.source.name} ({prep.source.kind} data, {len(prep.source.dataset)} "
        f"transitions), seeds {runner.seeds}, records in {prep.directory}"
    )


def finish(runner: Run) -> list[dict]:
    out = []
    for i, s in enumerate(runner.seeds):
        curve = runner.curves[i]
        final = curve[-1]["score"] if curve else None
        extra = {"final_score": final}
        if runner.diverged[i]:
            extra = {
                "final_score": None,
                "final_score_reason": "diverged: a loss or the evaluation score was not finite",
                "last_finite_score": final,
            }
        rec = runner.record(i, "finished", **extra, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        out.append(records.write_record(runner.p.directory, s, rec))
    return out


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
