"""Configuration: algorithm defaults < configs/<algo>.yaml (suite < dataset, then the ``finetune``
section's layers for runs with online fine-tuning) < --set.

One source of defaults per algorithm: a built-in algorithm's defaults (typed, each with its source) live
in ``algorithms/<algo>.py``; its YAML holds only the suite / dataset / fine-tuning layers (a ``default:``
section there is an error). A plug-in algorithm may ship a YAML with a ``default:`` section.

A config is one flat dict holding the pipeline's keys and the algorithm's keys. ``--set key=value``
values are parsed as YAML and converted to the type of the default; a key whose default is ``None`` is
checked against its declared type in :data:`OPTIONAL_TYPES`. An unknown key is an error that names it
and lists the known ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from offbench.errors import OffbenchError
from offbench.resources import configs_dir  # package data, through importlib.resources

PIPELINE_DEFAULTS: dict = {
    "batch_size": 256,  # transitions per gradient step (IQL paper, Appendix B)
    "normalize_obs": False,  # standardise observations with the dataset's mean/std (TD3+BC turns it on)
    "reward_transform": None,  # None: the suite's; every built-in algorithm's YAML names its own per suite
    "env_id": None,  # evaluation environment override (for datasets given as files)
    "ref_min_score": None,  # reference returns override for the normalised score
    "ref_max_score": None,
    "log_every": 1000,  # gradient steps per compiled call between progress-bar updates
    "online_updates_per_step": 1.0,  # fine-tuning: gradient updates per environment step
    "replay_capacity": None,  # fine-tuning: replay buffer size (None: dataset + online steps)
    "online_envs": 1,  # fine-tuning: environments stepped in parallel per seed
}

# The type of every key whose default is None (None stays allowed: it means "not set" / "the default rule").
# One key name has one meaning across algorithms, so one table serves them all.
OPTIONAL_TYPES: dict = {
    "reward_transform": str,
    "env_id": str,
    "ref_min_score": float,
    "ref_max_score": float,
    "replay_capacity": int,
    "exploration_noise": float,  # None: sample the policy's own distribution
    "target_entropy": float,  # None: -|A| (SAC)
    "critic_hidden_dims": list,  # None: the same as hidden_dims
    "cql_clip_diff_min": float,  # None: no lower bound
    "cql_clip_diff_max": float,  # None: no upper bound
}


def _builtin(algo: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(f"offbench.algorithms.{algo}") is not None
    except ModuleNotFoundError:
        return False


def read_config_file(algo: str) -> tuple[Path, dict]:
    """``configs/<algo>.yaml`` as a dict (``{}`` only for a plug-in algorithm that ships no file). A built-in
    algorithm whose file is missing or unreadable is an error: its paper settings would be lost silently."""
    path = configs_dir() / f"{algo}.yaml"
    if not path.exists():
        if not _builtin(algo):
            return path, {}
        raise OffbenchError(
            f"config file {path} for algorithm {algo!r} is missing; reinstall offbench "
            f"(the wheel carries configs/ as offbench.configs) or set OFFBENCH_CONFIGS"
        )
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise OffbenchError(f"config file {path} cannot be read: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if not isinstance(doc, dict):
        raise OffbenchError(f"{path}: expected a mapping with sections default, suites, datasets, finetune")
    unknown = set(doc) - {"default", "suites", "datasets", "finetune"}
    if unknown:
        raise OffbenchError(f"{path}: unknown sections {sorted(unknown)}; use default, suites, datasets, finetune")
    defaults = doc.get("default") or {}
    if defaults and _builtin(algo):
        raise OffbenchError(
            f"{path}: a 'default' section ({', '.join(sorted(defaults))}) is not allowed for a "
            f"built-in algorithm; its defaults live in algorithms/{algo}.py"
        )
    return path, doc


def yaml_layers(algo: str, suite: str | None, dataset: str | None, finetune: bool = False) -> list[tuple[str, dict]]:
    """The YAML layers in order, each named: default < suite < dataset; when fine-tuning, then
    finetune.default < finetune.suite < finetune.dataset."""
    _, doc = read_config_file(algo)
    out = _named_layers(doc, suite, dataset, "")
    if finetune:
        out += _named_layers(doc.get("finetune") or {}, suite, dataset, "finetune.")
    return out


def load_yaml_layers(algo: str, suite: str | None, dataset: str | None, finetune: bool = False) -> dict:
    out: dict = {}
    for _, layer in yaml_layers(algo, suite, dataset, finetune):
        out.update(layer)
    return out


def _named_layers(doc: dict, suite, dataset, prefix: str) -> list[tuple[str, dict]]:
    out = [(f"{prefix}default", dict(doc.get("default") or {}))]
    if suite:
        out.append((f"{prefix}suite:{suite}", dict((doc.get("suites") or {}).get(suite) or {})))
    if dataset:
        out.append((f"{prefix}dataset:{dataset}", dict((doc.get("datasets") or {}).get(dataset) or {})))
    return out


def _coerce(key: str, value, default):
    if value is None:
        return value
    if default is None:
        kind = OPTIONAL_TYPES.get(key)
        if kind is None:
            return value
        default = {str: "", int: 0, float: 0.0, list: []}[kind]
        if kind is str:
            if not isinstance(value, str):
                raise OffbenchError(f"config key {key!r}: cannot use {value!r} where a str (or null) is expected")
            return value
    if isinstance(default, str) and not isinstance(value, str):
        raise OffbenchError(f"config key {key!r}: cannot use {value!r} where a str is expected")
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
        raise OffbenchError(
            f"config key {key!r}: cannot use {value!r} where a {type(default).__name__} is expected"
        ) from None
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


def resolve_with_sources(
    algo_default: dict,
    algo: str,
    suite: str | None = None,
    dataset: str | None = None,
    overrides: dict | None = None,
    finetune: bool = False,
) -> tuple[dict, dict]:
    """The full config of one run and, per key, the layer it came from (``pipeline``, ``algorithm``,
    ``configs/<algo>.yaml:<layer>``, ``--set``); unknown keys (in YAML or --set) are errors."""
    base = {**PIPELINE_DEFAULTS, **algo_default}
    config = dict(base)
    sources = {k: ("algorithm" if k in algo_default else "pipeline") for k in base}
    layers = [(f"configs/{algo}.yaml:{name}", layer) for name, layer in yaml_layers(algo, suite, dataset, finetune)]
    for source, layer in layers + [("--set", overrides or {})]:
        for key, value in layer.items():
            if key not in base:
                raise OffbenchError(
                    f"unknown config key {key!r} (from {source}) for {algo}; known keys: {', '.join(sorted(base))}"
                )
            config[key] = _coerce(key, value, base[key])
            sources[key] = source
    return config, sources


def resolve(
    algo_default: dict,
    algo: str,
    suite: str | None = None,
    dataset: str | None = None,
    overrides: dict | None = None,
    finetune: bool = False,
) -> dict:
    """The full config of one run; unknown keys (in YAML or --set) are errors."""
    return resolve_with_sources(algo_default, algo, suite, dataset, overrides, finetune)[0]


def config_hash(config: dict) -> str:
    """A short hash of a resolved config: records, checkpoints and sweeps compare runs by it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
