"""The harness's shape (issue 16): no import cycles between modules, stages import only the stages below them
(docs/architecture.md), and no module over 400 lines."""

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
    "sweeps": {"base", "records", "data", "runs"},
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
LIMIT = 400  # lines: the brief's house rule (modules <= 400 lines)


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


# (module, name): a name a module imports and others still import from it, with who (issue 26: no re-export shims;
# each entry goes once its importers import the name from the module that defines it)
REEXPORTS: dict = {}  # none left (issue 26); an entry names a re-export still imported and who imports it


def _top_level_names(path: Path) -> tuple[set, set]:
    """(names a module binds itself, names it binds by importing them), at its top level."""
    bound, imported = set(), set()
    stack = list(ast.parse(path.read_text()).body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        else:
            bound |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            stack += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]  # if / try / for bodies
    return bound, imported - bound


def test_names_are_imported_from_the_module_that_defines_them():
    """No re-export shims: ``from offbench.X import name`` (in the package, its tests and scripts) names a module
    that defines ``name`` (or a submodule), not one that only imports it from elsewhere."""
    known = modules()
    names = {m: _top_level_names(p) for m, p in known.items()}
    files = [*(ROOT / "offbench").rglob("*.py"), *(ROOT / "algorithms").glob("*.py")]
    files += [*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")]
    bad, used = [], set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or node.module not in names:
                continue
            bound, imported = names[node.module]
            for a in node.names:
                if a.name in imported and f"{node.module}.{a.name}" not in known:
                    if (node.module, a.name) in REEXPORTS:
                        used.add((node.module, a.name))
                    else:
                        bad.append(f"{f.relative_to(ROOT)}:{node.lineno} imports {a.name} from {node.module}")
    assert not bad, "import these from the module that defines them:\n" + "\n".join(sorted(bad))
    assert used == set(REEXPORTS), f"no longer imported (drop from REEXPORTS and the module): {set(REEXPORTS) - used}"
