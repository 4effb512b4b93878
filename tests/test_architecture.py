"""The harness's shape (issue 16): no import cycles between modules, stages import only the stages below them
(docs/architecture.md), and no module far above ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# docs/architecture.md: each stage may import itself and the stages listed for it (all imports, also the ones
# inside functions). "base" is errors, resources, config, registry, envs.
ALLOWED = {
    "base": {"base"},
    "data": {"base"},
    "evaluation": {"base", "data"},
    "records": {"base"},
    "runs": {"base", "data", "records"},  # a run's identity (issue 26): what run, sweeps, --from, validate share
    "kit": {"base"},  # offbench/training/kit: networks, losses, train state (what the algorithms build on)
    "training": {"base", "data", "kit", "evaluation", "records", "runs"},
    "algorithms": {"base", "kit", "data"},
    "recipes": {"base", "data", "kit", "training", "evaluation", "records", "algorithms"},
    "report": {"base", "records", "data"},
    "sweeps": {"base", "records", "data", "config", "runs"},
    "validation": {"base", "records", "data", "training", "sweeps", "report", "runs"},
    "cli": {
        "base",
        "data",
        "recipes",
        "kit",
        "training",
        "evaluation",
        "records",
        "report",
        "sweeps",
        "validation",
        "runs",
    },
    # offbench.api (issue 30)
    "api": {"base", "data", "recipes", "kit", "training", "evaluation", "records", "report", "runs"},
}
LIMIT = 450  # lines; the brief's "~400"


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "offbench").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    for path in (ROOT / "algorithms").glob("*.py"):
        name = "offbench.algorithms" + ("" if path.stem == "__init__" else "." + path.stem)
        out[name] = path
    return out


BASE = ("errors", "resources", "config", "presets", "options", "registry", "envs", "d4rl_envs")
# module -> stage, where a module's folder is not its stage
PLACED = {
    "offbench.__main__": "cli",
    "offbench.sweeps.child": "cli",  # the process a sweep job runs: `offbench run` in a child
    "offbench.recipes.recipes": "data",  # the recipe registry (names, labels, versions): metadata of data
    "offbench.data.fetch": "recipes",  # obtains data: downloads or runs a recipe
}
# (importer, imported): why the edge is not a use of a higher stage
EXCEPTIONS = {
    ("offbench.registry", "offbench.algorithms"): "discovery: iterates the package's modules to import them",
    ("offbench.recipes.recipes", "offbench.recipes"): "discovery: iterates the recipe modules to import them",
}


def stage(module: str) -> str:
    if module in PLACED:
        return PLACED[module]
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    if parts[1] == "training" and len(parts) > 2 and parts[2] == "kit":
        return "kit"
    return parts[1]


def imports(path: Path, module: str, known: dict) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(node)
    }  # annotations only: not an import at run time
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != module:
                out.add(n)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, m, known) for m, p in known.items()}


def test_no_import_cycles():
    g = graph()
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    assert not sccs, f"import cycles: {sccs}"


def test_stages_import_only_downstream():
    bad = []
    for m, deps in graph().items():
        s = stage(m)
        for d in deps:
            t = stage(d)
            if s not in ALLOWED or t not in ALLOWED:
                bad.append(
                    f"{m if s not in ALLOWED else d}: stage {s if s not in ALLOWED else t!r} is not in docs/architecture.md"
                )
            elif t != s and t not in ALLOWED[s] and (m, d) not in EXCEPTIONS:
                bad.append(f"{m} ({s}) imports {d} ({t})")
    assert not bad, "\n".join(sorted(bad))


def test_modules_are_small():
    big = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > LIMIT}
    assert not big, f"modules over {LIMIT} lines: {big}"
