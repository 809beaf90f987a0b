"""The layering the project promises: heads and models never import tasks, no task family imports another,
and no two modules import each other (directly or around a cycle), lazily or not."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "heads", "tasks", "benchmarks")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere in the file (top level or inside a function)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # "from . import kinds"
    return {m for m in found if m.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    return {name: {m for m in imports(path) if m in files and m != name} for name, path in files.items()}


def test_heads_and_models_never_import_tasks():
    for name, targets in graph().items():
        if name.startswith(("heads", "models")):
            assert not any(t.startswith(("tasks", "benchmarks")) for t in targets), (name, targets)
        if name.startswith("heads"):
            assert not any(t.startswith("models") for t in targets), (name, targets)


FAMILIES = {"ner", "qa", "glue", "superglue"}
TOOLS = {"families", "multitask", "serve"}  # cross-family: they reach families through tasks/families.py


def test_no_task_family_imports_another():
    for name, targets in graph().items():
        parts = name.split(".")
        if parts[0] != "tasks" or len(parts) < 2 or parts[1] not in FAMILIES:
            continue
        reached = {t.split(".")[1] for t in targets if t.startswith("tasks.") and len(t.split(".")) > 1}
        others = reached & (FAMILIES | TOOLS) - {parts[1]}
        if parts[1] == "superglue":  # the SuperGLUE entry point is a thin alias of the GLUE family
            others -= {"glue"}
        assert not others, (name, others)


def test_no_import_cycles():
    edges = graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        for target in sorted(edges.get(node, ())):
            # importing a package runs its __init__, importing its parent is not a cycle through the child
            if not node.startswith(target + "."):
                visit(target, path + [node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])



def test_the_shared_pipeline_names_no_family_or_tool():
    for name, targets in graph().items():
        if not name.startswith("tasks.common"):
            continue
        reached = {t.split(".")[1] for t in targets if t.startswith("tasks.") and len(t.split(".")) > 1}
        assert not reached & (FAMILIES | TOOLS), (name, reached & (FAMILIES | TOOLS))


def test_serving_and_multitask_reach_families_only_through_the_registry():
    for name, targets in graph().items():
        parts = name.split(".")
        if parts[0] != "tasks" or len(parts) < 2 or parts[1] not in ("serve", "multitask"):
            continue
        reached = {t.split(".")[1] for t in targets if t.startswith("tasks.") and len(t.split(".")) > 1}
        assert not reached & FAMILIES, (name, reached & FAMILIES)


def test_no_module_imports_another_modules_private_name():
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, (name, node.module, private)


def test_one_readout_and_one_model_class():
    """The head's readout is written once (models/readout.py) and every model is models.adapted.AdaptedModel."""
    readouts, models = [], []
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            readouts += [path for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "read_out"]
            models += [(path, n.name) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                       and any(getattr(b, "id", getattr(b, "attr", "")) == "Module" for b in n.bases)
                       and n.name.endswith("Model")]
    assert [p.relative_to(REPO).as_posix() for p in readouts] == ["models/readout.py"]
    assert [(p.relative_to(REPO).as_posix(), n) for p, n in models] == [("models/adapted.py", "AdaptedModel")]
