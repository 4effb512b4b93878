"""Configuration: algorithm defaults < configs/<algo>.yaml (default < suite < dataset, then the
``finetune`` section's layers for runs with online fine-tuning) < --set.

A config is one flat dict holding the pipeline's keys and the algorithm's keys. ``--set key=value``
values are parsed as YAML and converted to the type of the default; an unknown key is an error that
names it and lists the known ones.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml

from .errors import OffbenchError

PIPELINE_DEFAULTS: dict = {
    "batch_size": 256,          # transitions per gradient step (IQL paper, Appendix B)
    "normalize_obs": False,     # standardise observations with the dataset's mean/std (TD3+BC turns it on)
    "reward_transform": None,   # None: the suite's (locomotion: x1000/return spread; antmaze: r-1)
    "env_id": None,             # evaluation environment override (for datasets given as files)
    "ref_min_score": None,      # reference returns override for the normalised score
    "ref_max_score": None,
    "log_every": 1000,          # gradient steps per compiled call between progress-bar updates
    "online_updates_per_step": 1.0,  # fine-tuning: gradient updates per environment step
    "replay_capacity": None,         # fine-tuning: replay buffer size (None: dataset + online steps)
    "online_envs": 1,                # fine-tuning: environments stepped in parallel per seed
}


def configs_dir() -> Path:
    env = os.environ.get("OFFBENCH_CONFIGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "configs"


def load_yaml_layers(algo: str, suite: str | None, dataset: str | None, finetune: bool = False) -> dict:
    """default < suites[suite] < datasets[dataset]; when fine-tuning, then finetune.default <
    finetune.suites[suite] < finetune.datasets[dataset]."""
    path = configs_dir() / f"{algo}.yaml"
    if not path.exists():
        return {}
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    unknown = set(doc) - {"default", "suites", "datasets", "finetune"}
    if unknown:
        raise OffbenchError(f"{path}: unknown sections {sorted(unknown)}; use default, suites, datasets, finetune")
    out = _layers(doc, suite, dataset)
    if finetune:
        out.update(_layers(doc.get("finetune") or {}, suite, dataset))
    return out


def _layers(doc: dict, suite, dataset) -> dict:
    out = dict(doc.get("default") or {})
    if suite:
        out.update((doc.get("suites") or {}).get(suite) or {})
    if dataset:
        out.update((doc.get("datasets") or {}).get(dataset) or {})
    return out


def _coerce(key: str, value, default):
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.lower()
                if low in ("true", "yes", "1", "on"):
                    return True
                if low in ("false", "no", "0", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) else int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, (list, tuple)):
            if isinstance(value, str):
                value = yaml.safe_load(value)
            return list(value) if isinstance(value, (list, tuple)) else [value]
    except (TypeError, ValueError):
        raise OffbenchError(f"config key {key!r}: cannot use {value!r} where a {type(default).__name__} is expected")
    return value


def parse_overrides(pairs) -> dict:
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise OffbenchError(f"--set {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        try:
            out[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key] = raw
    return out


def resolve(algo_default: dict, algo: str, suite: str | None = None, dataset: str | None = None,
            overrides: dict | None = None, finetune: bool = False) -> dict:
    """The full config of one run; unknown keys (in YAML or --set) are errors."""
    base = {**PIPELINE_DEFAULTS, **algo_default}
    config = dict(base)
    for source, layer in (("configs/" + algo + ".yaml", load_yaml_layers(algo, suite, dataset, finetune)),
                          ("--set", overrides or {})):
        for key, value in layer.items():
            if key not in base:
                raise OffbenchError(f"unknown config key {key!r} (from {source}) for {algo}; known keys: "
                                    f"{', '.join(sorted(base))}")
            config[key] = _coerce(key, value, base[key])
    return config


def config_hash(config: dict) -> str:
    """A short hash of a resolved config: records, checkpoints and sweeps compare runs by it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
