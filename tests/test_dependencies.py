"""Every runtime dependency is used: nothing is installed into the image for nothing.

fiona and psycopg2-binary were declared for a long time and never imported. A dependency
counts as used when service/ or actors/ import one of its top-level modules; the only
exceptions are listed with the reason they are needed all the same.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from tests.conftest import ROOT

#: Needed, though never imported by geoload itself: distribution → why.
USED_INDIRECTLY = {
    "python-multipart": "Starlette parses the dashboard's form posts with it "
                        "(service/dashboard/endpoints.py: request.form())",
}


def _runtime_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0] for spec in project["dependencies"]]


def _imported_modules(*folders: str) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in Path(ROOT, folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_dependency_is_imported_by_the_library_or_the_actors():
    modules = _imported_modules("service", "actors")
    provides: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            provides.setdefault(_normal(distribution), set()).add(module)
    unused = [name for name in _runtime_dependencies()
              if not provides.get(_normal(name), set()) & modules
              and name not in USED_INDIRECTLY]
    assert unused == [], f"declared in pyproject.toml but never imported: {unused}"


def test_the_exceptions_are_still_declared():
    assert set(USED_INDIRECTLY) <= set(_runtime_dependencies())
