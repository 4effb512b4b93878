"""Protocol files: run groups and claims, checked before anything runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from offbench.errors import OffbenchError

RELATIONS = (">=", ">", ">>", "after>before")
GROUP_KEYS = {
    "name",
    "algos",
    "suites",
    "datasets",
    "steps",
    "online_steps",
    "eval_every",
    "eval_episodes",
    "seeds",
    "set",
}


@dataclasses.dataclass
class Claim:
    id: str
    claim: str
    source: str
    group: str
    a: str
    b: list  # algorithms A is compared with (one verdict row each); empty for after>before
    relation: str
    datasets: list


@dataclasses.dataclass
class Protocol:
    tier: str
    reduced: bool
    label: str
    seeds: int
    builds: dict  # dataset -> transitions of its rebuild (None: the recipe's size)
    groups: dict  # name -> sweep keys
    claims: list
    path: Path
    reps: int = 2000

    def group_runs(self) -> list[tuple[str, str, str]]:
        """(group, algorithm, dataset) of every run the protocol needs."""
        return [(g, a, d) for g, spec in self.groups.items() for a in spec["algos"] for d in spec["datasets"]]


def dataset_key(dataset: str) -> str:
    """The name runs record for a dataset: a D4RL hdf5 file is named after its stem (as `offbench run` does)."""
    return Path(dataset).stem if str(dataset).endswith((".hdf5", ".h5")) else str(dataset)


def protocol_path(tier_or_path: str) -> Path:
    p = Path(tier_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise OffbenchError(f"protocol file {p} does not exist")
        return p
    from offbench.resources import configs_dir

    p = configs_dir() / "validation" / f"{tier_or_path}.yaml"
    if not p.exists():
        known = sorted(x.stem for x in (configs_dir() / "validation").glob("*.yaml"))
        raise OffbenchError(f"unknown tier {tier_or_path!r}; known tiers: {', '.join(known)} (or a protocol .yaml)")
    return p


def load_protocol(tier_or_path: str) -> Protocol:
    path = protocol_path(tier_or_path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise OffbenchError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    for key in ("tier", "label", "seeds", "groups", "claims"):
        if key not in doc:
            raise OffbenchError(f"{path}: missing key {key!r}")
    seeds = int(doc["seeds"])
    groups = {}
    for g in doc["groups"]:
        unknown = set(g) - GROUP_KEYS
        if unknown or "name" not in g or not g.get("algos") or not g.get("datasets"):
            raise OffbenchError(
                f"{path}: group {g.get('name')!r} needs name, algos, suites, datasets (unknown keys: {sorted(unknown)})"
            )
        groups[g["name"]] = {"seeds": seeds, **g}
    claims = []
    for c in doc["claims"]:
        b = c.get("b") or []
        b = [b] if isinstance(b, str) else list(b)
        claim = Claim(
            id=str(c["id"]),
            claim=str(c["claim"]),
            source=str(c["source"]),
            group=str(c["group"]),
            a=str(c["a"]),
            b=b,
            relation=str(c["relation"]),
            datasets=list(c["datasets"]),
        )
        if claim.relation not in RELATIONS:
            raise OffbenchError(f"{path}: claim {claim.id}: relation {claim.relation!r} is not one of {RELATIONS}")
        if claim.group not in groups:
            raise OffbenchError(f"{path}: claim {claim.id} names group {claim.group!r}, which is not defined")
        grp = groups[claim.group]
        missing = [x for x in [claim.a, *claim.b] if x not in grp["algos"]] + [
            d for d in claim.datasets if d not in {dataset_key(x) for x in grp["datasets"]}
        ]
        if missing:
            raise OffbenchError(f"{path}: claim {claim.id} needs {missing}, which group {claim.group} does not run")
        if claim.relation == "after>before" and not grp.get("online_steps"):
            raise OffbenchError(
                f"{path}: claim {claim.id} compares before/after fine-tuning; its group has no online_steps"
            )
        if claim.relation != "after>before" and not claim.b:
            raise OffbenchError(f"{path}: claim {claim.id} needs b (the algorithms A is compared with)")
        claims.append(claim)
    return Protocol(
        tier=str(doc["tier"]),
        reduced=bool(doc.get("reduced", False)),
        label=str(doc["label"]),
        seeds=seeds,
        builds=dict(doc.get("builds") or {}),
        groups=groups,
        claims=claims,
        path=path,
        reps=int(doc.get("reps", 2000)),
    )
