"""The description of a sweep: :class:`SweepSpec`, from flags or a YAML file (``load_spec_file``, ``make_spec``).

Its own module so that the launchers, the planner and the commands all import it from below (no
``launchers <-> sweep`` cycle).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from offbench.errors import OffbenchError


@dataclasses.dataclass
class SweepSpec:
    algos: list = dataclasses.field(default_factory=list)
    suites: list = dataclasses.field(default_factory=list)
    datasets: list = dataclasses.field(default_factory=list)  # empty: what is available locally; ["all"]: all
    seeds: int = 5
    seed: int = 0
    steps: int = 1_000_000
    online_steps: int = 0
    eval_every: int | None = None  # None: each suite's schedule (offbench.data.suites)
    eval_episodes: int | None = None
    set: list = dataclasses.field(default_factory=list)  # "key=value" or "ALGO:key=value"
    launcher: str = "local"
    address: str | None = None
    max_parallel: int | None = None  # local: 1; ray: as many as resources allow
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    retries: int = 2
    results: str = "results"
    fresh: bool = False
    progress_every: float = 60.0


SPEC_KEYS = [f.name for f in dataclasses.fields(SweepSpec)]
LIST_KEYS = ("algos", "suites", "datasets", "set")


def _as_list(key: str, value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if key != "set" else [value]
    if isinstance(value, dict) and key == "set":
        return [f"{k}={_yaml_scalar(v)}" for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_as_list(key, v) if (key != "set" or isinstance(v, dict)) else [str(v)])
        return out
    return [str(value)]


def _yaml_scalar(v) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def load_spec_file(path: str | Path) -> dict:
    """The keys of a sweep YAML file (same names as the flags, ``-`` or ``_``)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise OffbenchError(f"sweep file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise OffbenchError(f"sweep file {path} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(doc, dict):
        raise OffbenchError(f"sweep file {path} must be a mapping of keys such as algos, suites, seeds, steps")
    out = {}
    for key, value in doc.items():
        k = str(key).replace("-", "_")
        if k == "overrides":
            k = "set"
        if k not in SPEC_KEYS:
            raise OffbenchError(f"sweep file {path}: unknown key {key!r}; known keys: {', '.join(SPEC_KEYS)}")
        out[k] = _as_list(k, value) if k in LIST_KEYS else value
    return out


def make_spec(file_values: dict, cli_values: dict) -> SweepSpec:
    """File values, then the flags given on the command line (``--set`` adds to the file's ``set``)."""
    merged = {**file_values, **{k: v for k, v in cli_values.items() if v is not None}}
    for k in LIST_KEYS:
        if k in merged:
            merged[k] = _as_list(k, merged[k])
    if file_values.get("set") and cli_values.get("set"):
        merged["set"] = _as_list("set", file_values["set"]) + _as_list("set", cli_values["set"])
    try:
        spec = SweepSpec(**merged)
        for k in ("seeds", "seed", "steps", "online_steps", "retries"):
            setattr(spec, k, int(getattr(spec, k)))
        if spec.eval_every is not None:
            spec.eval_every = int(spec.eval_every)
        for k in ("cpus_per_run", "gpus_per_run", "progress_every"):
            setattr(spec, k, float(getattr(spec, k)))
        if spec.eval_episodes is not None:
            spec.eval_episodes = int(spec.eval_episodes)
        if spec.max_parallel is not None:
            spec.max_parallel = int(spec.max_parallel)
    except (TypeError, ValueError) as exc:
        raise OffbenchError(
            f"invalid sweep setting ({exc}); numbers are expected for seeds, steps, retries, ..."
        ) from exc
    if not spec.algos:
        raise OffbenchError("no algorithms: pass --algos iql,bc,... (or `algos:` in the sweep file)")
    if not spec.suites:
        raise OffbenchError("no suites: pass --suites locomotion,... (or `suites:` in the sweep file)")
    if spec.launcher not in ("local", "ray"):
        raise OffbenchError(f"unknown launcher {spec.launcher!r}; use local or ray")
    if spec.seeds < 1 or spec.steps < 0 or (spec.eval_every is not None and spec.eval_every < 1) or spec.retries < 0:
        raise OffbenchError("--seeds and --eval-every must be >= 1, --steps and --retries >= 0")
    if spec.gpus_per_run < 0 or spec.cpus_per_run <= 0 or (spec.max_parallel is not None and spec.max_parallel < 0):
        raise OffbenchError("--gpus-per-run must be >= 0, --cpus-per-run > 0 and --max-parallel >= 0")
    if spec.address and spec.launcher != "ray":
        raise OffbenchError("--address is for the Ray launcher: add --launcher ray")
    return spec
