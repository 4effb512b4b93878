"""``--from RUN_DIR``: fine-tuning that continues the final state of an earlier offline run, checked first
(seeds, a finished offline run) and then against this run's algorithm, data and config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

from offbench.errors import OffbenchError
from offbench.records import checkpoint
from offbench.records import store as records
from offbench.runs.bookkeeping import Bookkeeping

ONLINE_KEYS = ("online_updates_per_step", "replay_capacity", "online_envs", "log_every")


def from_checkpoint(from_dir: str, seeds: list[int], flag: str = "--from") -> Path:
    """The checkpoint of ``seeds`` in the earlier run directory ``from_dir`` (checked before anything loads):
    a run directory ``<algo>/<variant>``, or an algorithm directory holding exactly one variant. ``flag`` names
    the option the messages point at (a script gives its own)."""
    d = Path(from_dir)
    if not list(d.glob(records.CHECKPOINTS)):
        variants = sorted(v for v in d.glob("*") if v.is_dir() and list(v.glob(records.CHECKPOINTS)))
        if len(variants) == 1:
            d = variants[0]
        elif variants:
            raise OffbenchError(
                f"{flag} {from_dir} holds several runs ({', '.join(v.name for v in variants)}); name one of them"
            )
        else:
            raise OffbenchError(
                f"{flag} {from_dir}: no checkpoint there; point it at a finished offline run "
                "directory results/<suite>/<dataset>/<algo>/<variant>"
            )
    ck = records.checkpoint_dir(d, seeds)
    if not checkpoint.exists(ck):
        have = ", ".join(sorted(c.name.removeprefix("checkpoint-") for c in d.glob(records.CHECKPOINTS)))
        raise OffbenchError(
            f"{flag} {d} has no checkpoint of seeds {seeds[0]}-{seeds[-1]} (it has {have}); run "
            "with the same --seed/--seeds as the offline run"
        )
    info = checkpoint.read_info(ck)
    if info.get("phase", "offline") != "offline" or info.get("step") != info.get("steps"):
        raise OffbenchError(
            f"{flag} {d} is not a finished offline run (step {info.get('step')} of {info.get('steps')})"
        )
    return ck


def check_from_config(prep, info: dict, where, flag: str = "--from") -> None:
    """``--from``: same algorithm, data and config as the offline run, except the fine-tuning layers
    (``finetune:`` in configs/<algo>.yaml) and the online-only keys (``flag``: as in :func:`from_checkpoint`)."""
    from offbench.config import yaml_layers
    from offbench.runs.identity import identify
    from offbench.runs.spec import RunSpec

    a, o = prep.algorithm, prep.opts
    if info.get("algo") != a.name:
        raise OffbenchError(f"{flag} {where} is a {info.get('algo')} run, not {a.name}")
    if info.get("fingerprint") != prep.fingerprint:
        raise OffbenchError(
            f"{flag} {where} was trained on other data (fingerprint {info.get('fingerprint')}, "
            f"this data {prep.fingerprint})"
        )
    # the offline run's config: this run's identity without the fine-tuning layers (offbench.runs.identity)
    offline_run = identify(RunSpec.of(a.name, o.suite, o.dataset, o.results, overrides=o.overrides, steps=o.steps))
    offline = offline_run.config
    ft_keys = {
        k
        for name, layer in yaml_layers(a.name, o.suite, offline_run.dataset, True)
        if name.startswith("finetune.")
        for k in layer
    }
    old = info.get("config") or {}
    diffs = [
        k
        for k in sorted(set(old) | set(offline))
        if old.get(k) != offline.get(k) and k not in ft_keys and k not in ONLINE_KEYS
    ]
    if diffs:
        shown = ", ".join(f"{k}: {old.get(k)!r} there, {offline.get(k)!r} here" for k in diffs[:5])
        raise OffbenchError(
            f"{flag} {where} was trained with another config ({shown}); pass the offline run's --set values"
        )


def load_offline_from(run, from_dir: str, states, keys):
    """``(states, keys, bookkeeping)`` of the final checkpoint of an earlier offline run (same algorithm, seeds, data
    and config): the bookkeeping continues its step count and curve (as the offline phase of this run).

    The optimiser states continue, but the schedules are this run's: the fine-tuning layer's (IQL: constant
    actor learning rate, ``opt_decay_schedule = None`` in ikostrikov/implicit_q_learning
    configs/antmaze_finetune_config.py, used by train_finetune.py for pre-training and fine-tuning alike),
    so the actor does not continue at the rate the offline cosine schedule had decayed to 0."""
    ck = from_checkpoint(from_dir, run.seeds)
    info = checkpoint.read_info(ck)
    check_from_config(run.prep, info, ck.parent)
    tree, info = checkpoint.load(
        ck,
        {"states": states, "keys": keys},
        hint="the offline run's networks or optimiser differ from this run's config",
    )
    step = int(info["step"])
    book = dataclasses.replace(
        Bookkeeping.fresh(run.seeds, step),
        step=step,
        curves=[[dict(c, phase="offline") for c in curve] for curve in info["curves"]],
    )
    run.say(f"continuing from the offline run in {ck.parent} (step {step})")
    return jax.device_put(tree["states"]), jax.device_put(tree["keys"]), book
