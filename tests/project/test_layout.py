"""Rules of the code's layout that import-linter cannot see, checked on the source itself."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = (
    "accounts",
    "cases",
    "dunning",
    "integrations",
    "reporting",
    "predictions",
    "privacy",
    "portal",
    "demo",
    "collections_mgmt",
)
TIMELINE = ROOT / "accounts" / "timeline.py"


def product_modules():
    for app in PRODUCT:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def activity_writes(tree: ast.AST) -> list[int]:
    """Lines that build or insert Activity rows: Activity(...), Activity.objects.create /
    bulk_create / get_or_create, or `insert_rows(Activity, ...)` (the COPY writer)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        builds = isinstance(func, ast.Name) and func.id == "Activity"
        creates = (
            isinstance(func, ast.Attribute)
            and func.attr in ("create", "bulk_create", "get_or_create")
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "objects"
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id == "Activity"
        )
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        inserts = name in ("insert_rows", "bulk_insert") and any(
            isinstance(arg, ast.Name) and arg.id == "Activity" for arg in node.args[:1]
        )
        if builds or creates or inserts:
            lines.append(node.lineno)
    return lines


def test_only_the_timeline_module_writes_activity_rows():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in product_modules()
        if path != TIMELINE
        for line in activity_writes(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert offenders == [], "write timeline entries through accounts.timeline"


def test_the_layout_check_finds_a_direct_write():
    source = (
        "Activity(customer=c)\n"
        "Activity.objects.bulk_create(rows)\n"
        "insert_rows(Activity, COLUMNS, rows)\n"
        "Activity.objects.filter(kind='note')\n"
        "admin.register(Activity)\n"
        "bulk.insert_rows(Activity, COLUMNS, rows)\n"
    )
    assert activity_writes(ast.parse(source)) == [1, 2, 3, 6]
    assert activity_writes(ast.parse(TIMELINE.read_text()))  # the timeline itself does write
