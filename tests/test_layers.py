"""The house's shape: ingest <- train <- publish and sweep (side by side), entry points on top,
no cycles.

Every import in every library module counts, the ones inside functions too (a lazy import is
still a dependency)."""

import ast
from pathlib import Path

from conftest import ROOT

PKG = ROOT / "src" / "huggingtweets"
ENTRY_POINTS = {p.stem for p in ROOT.glob("*.py")}  # train, fetch, generate, app, push, report


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of everything `path` imports (modules, or module.attribute)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


MODULES = {module_name(p): imports(p) for p in sorted(PKG.rglob("*.py"))}


def layer(name: str) -> str:
    """ingest, train, publish or sweep; "entry" for the entry points' Hydra glue (config.py, the
    resolvers, which may use any layer); "base" for errors.py and files.py, under all of them."""
    parts = name.split(".")
    if name == "huggingtweets.config":
        return "entry"
    return parts[1] if len(parts) > 1 and parts[1] in ("ingest", "train", "publish", "sweep") else "base"


def ours(names: set[str]) -> set[str]:
    """The package modules among `names` (module.attribute -> module)."""
    found = set()
    for n in names:
        while n and n not in MODULES:
            n = n.rpartition(".")[0]
        if n and n != "huggingtweets":
            found.add(n)
    return found


# who may import whom: ingest <- train <- publish <- entry, and sweep beside publish (neither
# imports the other); errors and files ("base") under all of them
ALLOWED = {"base": {"base"}, "ingest": {"base", "ingest"}, "train": {"base", "ingest", "train"},
           "publish": {"base", "ingest", "train", "publish"},
           "sweep": {"base", "ingest", "train", "sweep"},
           "entry": {"base", "ingest", "train", "publish", "sweep", "entry"}}


def test_the_layers_depend_one_way():
    bad = [f"{m} imports {d}" for m, names in MODULES.items() for d in ours(names)
           if layer(d) not in ALLOWED[layer(m)]]
    assert not bad, bad


def test_training_never_reaches_the_sources():
    bad = [f"{m} imports {d}" for m, names in MODULES.items() if layer(m) == "train"
           for d in ours(names) if d.startswith("huggingtweets.ingest.sources")]
    assert not bad, bad


def test_library_code_never_imports_an_entry_point():
    bad = [f"{m} imports {n}" for m, names in MODULES.items() for n in names
           if n.split(".")[0] in ENTRY_POINTS]
    assert not bad, bad


def test_no_import_cycles():
    graph = {m: ours(names) - {m} for m, names in MODULES.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for d in graph[m]:
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_the_checker_sees_a_violation(tmp_path):
    """The rules above are not vacuous: a lazy import of publish inside ingest is caught, and
    publish and sweep may not import each other."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from huggingtweets.publish import card\n")
    assert "huggingtweets.publish.card" in ours(imports(bad))
    assert layer("huggingtweets.publish.card") not in ALLOWED[layer("huggingtweets.ingest.clean")]
    assert layer("huggingtweets.sweep.report") not in ALLOWED[layer("huggingtweets.publish.card")]
    assert layer("huggingtweets.publish.card") not in ALLOWED[layer("huggingtweets.sweep.plots")]
