"""The integrations app's layout: one folder per concern, no import cycles, no upward imports.

Read from the source (the `ast` of every module), not by importing it: an import that
dodges a cycle by hiding inside a function is exactly what these tests look for.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_APPS = {"accounts", "collections_mgmt", "dunning", "integrations", "reporting"}
CONCERNS = {"intake", "gateways", "bank", "reconciliation", "twilio"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(app: str) -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
    }


def imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from . import x` may name a submodule: count both the package and x.
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.extend((target, id(node) in top_level) for target in targets)
    return found


def graph(app: str) -> dict[str, set[str]]:
    known = modules(app)
    return {
        name: {target for target, _top in imports(name, path) if target in known} - {name}
        for name, path in known.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (one per back edge)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def concern(module: str) -> str:
    """integrations.intake.kinds -> intake; integrations.models -> models."""
    return module.split(".")[1] if "." in module else module


def test_no_module_of_integrations_imports_itself_back():
    assert cycles(graph("integrations")) == []


def test_the_concerns_depend_on_each_other_one_way():
    by_concern: dict[str, set[str]] = {}
    for module, targets in graph("integrations").items():
        if concern(module) in CONCERNS:
            by_concern.setdefault(concern(module), set()).update(
                concern(t)
                for t in targets
                if concern(t) in CONCERNS and concern(t) != concern(module)
            )
    assert cycles(by_concern) == []
    assert by_concern["intake"] == set()  # every other concern builds on intake, not back


def test_project_code_is_imported_at_module_level_only():
    """Lazy imports of third-party libraries are fine (openpyxl, psycopg's sql); an import
    of our own code inside a function hides a dependency, usually a cycle."""
    hidden = [
        f"{name} imports {target} inside a function"
        for name, path in modules("integrations").items()
        for target, top in imports(name, path)
        if not top and target.split(".")[0] in PROJECT_APPS
    ]
    assert hidden == []


def test_each_provider_and_concern_has_its_folder():
    flat = sorted(
        path.stem
        for path in (ROOT / "integrations").glob("*.py")
        # uploads: the limits every concern's uploads share (spreadsheets, bank files)
        if path.stem not in {"__init__", "admin", "api", "apps", "models", "urls", "uploads"}
    )
    assert flat == []
    assert all((ROOT / "integrations" / name / "__init__.py").exists() for name in CONCERNS)


def test_accounts_imports_nothing_of_integrations():
    integrations = modules("integrations")
    upward = sorted(
        f"{name} -> {target}"
        for name, path in modules("accounts").items()
        for target, _top in imports(name, path)
        if target in integrations
    )
    assert upward == []
