"""`loyalty_site/lib` imports no app, and `apps/platform` (the bottom app) imports no other app."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _imported_modules(package: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_lib_imports_no_app():
    offenders = {
        path: sorted(name for name in names if name == "apps" or name.startswith("apps."))
        for path, names in _imported_modules(ROOT / "loyalty_site" / "lib").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_platform_imports_no_other_app():
    offenders = {
        path: sorted(
            name
            for name in names
            if (name == "apps" or name.startswith("apps."))
            and not (name == "apps.platform" or name.startswith("apps.platform."))
        )
        for path, names in _imported_modules(ROOT / "apps" / "platform").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}
