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
import math
import re
from pathlib import Path

import yaml

from offbench.errors import OffbenchError
from offbench.resources import configs_dir, plugin_config_dirs  # package data, through importlib.resources

PIPELINE_DEFAULTS: dict = {
    "batch_size": 256,  # transitions per gradient step (IQL paper, Appendix B)
    "normalize_obs": False,  # standardise observations with the dataset's mean/std (TD3+BC turns it on)
    "reward_transform": None,  # None: the suite's default (Suite.reward_transform); an algorithm's YAML may name one
    "env_id": None,  # evaluation environment override (for datasets given as files)
    "ref_min_score": None,  # reference returns override for the normalised score
    "ref_max_score": None,
    "log_every": 1000,  # gradient steps per compiled call between progress-bar updates
    "online_updates_per_step": 1.0,  # fine-tuning: gradient updates per environment step
    "replay_capacity": None,  # fine-tuning: replay buffer size (None: dataset + online steps)
    "online_envs": 1,  # fine-tuning: environments stepped in parallel per seed
}

# The range of every pipeline value, beside its default above (interval notation, see :func:`parse_range`); an
# algorithm declares its own values' ranges beside its defaults (``register(..., ranges=...)``, algorithms/*.py).
PIPELINE_RANGES: dict = {
    "batch_size": "[1, inf)",
    "log_every": "[1, inf)",
    "online_updates_per_step": "[0, inf)",
    "replay_capacity": "[1, inf)",
    "online_envs": "[1, inf)",
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
    "fixed_std": float,  # None: the policy's std is learned (AWR: a fixed 0.2)
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
    if not path.exists() and not _builtin(algo):  # a plug-in algorithm: its package's layers (offbench.configs)
        path = next((d / f"{algo}.yaml" for d in plugin_config_dirs() if (d / f"{algo}.yaml").exists()), path)
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


# suite -> the suite whose section of an algorithm's YAML it applies when the YAML has none of its own: each suite
# registration's ``Suite.config_layer`` (offbench/data/suites.py), recorded here as the suite registers (config is a
# base module and never imports the suites, as offbench.registry never imports the algorithms). A suite without a
# ``config_layer`` and without a YAML section runs with the algorithm's defaults and its ``Suite.reward_transform``.
SUITE_LAYERS: dict[str, str] = {}


def use_suite_layer(suite: str, layer: str | None) -> None:
    """Record (or, with ``layer`` None, forget) which suite's YAML section ``suite`` applies where it has none."""
    if layer:
        SUITE_LAYERS[suite] = layer
    else:
        SUITE_LAYERS.pop(suite, None)


def _named_layers(doc: dict, suite, dataset, prefix: str) -> list[tuple[str, dict]]:
    out = [(f"{prefix}default", dict(doc.get("default") or {}))]
    suites = doc.get("suites") or {}
    fallback = SUITE_LAYERS.get(suite) if suite and suite not in suites else None
    if fallback in suites:
        out.append((f"{prefix}suite:{fallback} (for {suite})", dict(suites[fallback] or {})))
    elif suite:
        out.append((f"{prefix}suite:{suite}", dict(suites.get(suite) or {})))
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


_RANGE = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


def parse_range(spec: str) -> tuple[float, float, bool, bool]:
    """``"(0, 1)"``, ``"(0, 1]"``, ``"[1, inf)"``, ``"(-inf, 0]"``: (low, high, low included, high included)."""
    m = _RANGE.match(str(spec))
    try:
        low, high = float(m.group(2)), float(m.group(3))
    except (AttributeError, ValueError):
        raise OffbenchError(f"range {spec!r}: write it as an interval, e.g. '(0, 1)', '(0, 1]' or '[1, inf)'") from None
    if low > high:
        raise OffbenchError(f"range {spec!r}: its lower end is above its upper end")
    return low, high, m.group(1) == "[", m.group(4) == "]"


def in_range(value, spec: str) -> bool:
    """Whether a number (or every number of a list) lies in the interval ``spec``; ``None`` always does."""
    if value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(in_range(v, spec) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    low, high, low_in, high_in = parse_range(spec)
    return (low < value or (low_in and low == value)) and (value < high or (high_in and high == value))


def check_ranges(config: dict, ranges: dict | None = None) -> None:
    """Every value of ``config`` in its declared range (:data:`PIPELINE_RANGES` and an algorithm's ``ranges``):
    one line naming the key, its range and the value, e.g. ``expectile=1.5`` (expectile is in (0, 1))."""
    for key, spec in {**PIPELINE_RANGES, **(ranges or {})}.items():
        if key in config and not in_range(config[key], spec):
            raise OffbenchError(
                f"config key {key!r} must be in {spec} (got {config[key]!r}); set it with --set {key}=VALUE"
            )


def reward_transform(config: dict, suite) -> str:
    """The reward transform a run applies: the config's (an algorithm YAML's suite / dataset layer, or --set), else
    its suite's default (``Suite.reward_transform``, offbench/data/suites.py)."""
    value = config.get("reward_transform")
    return value if value is not None else suite.reward_transform


def config_hash(config: dict) -> str:
    """A short hash of a resolved config: records, checkpoints and sweeps compare runs by it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
