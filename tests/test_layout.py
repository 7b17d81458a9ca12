"""The three rules the layout keeps (docs/architecture.md, "Code layout"), read from the
source, so that a change that breaks one fails here naming the file and line:

- only ``service/ledger/`` has SQL on ``geoload.*``. The one exception is a call of the
  lookup's public SQL functions, ``geoload.lookup(...)`` and ``geoload.lookup_many(...)``:
  users call them from their own SQL, and ``service/lookup/query.py`` calls them the same
  way (a call, not bookkeeping); the ledger creates them;
- only ``service/pipeline/`` (and ``actors/``, the Dramatiq layer over it) sends messages
  or knows the broker;
- the stages (fetch, read, repair, load, publish) import neither the ledger nor the
  pipeline (nor ``actors/``).

And one for the tests: helpers shared between test modules live in ``tests/support/``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("service", "actors", "devtools")
LEDGER = ("service/ledger/",)
SENDERS = ("service/pipeline/", "actors/")
STAGES = ("service/fetch/", "service/read.py", "service/repair/", "service/load/",
          "service/publish/")
#: ``geoload.<name>``, not inside a longer dotted name, a path, an address or a URL, nor
#: a lock's key (``geoload.publish:<dataset>``).
GEOLOAD_NAME = re.compile(r"(?<![\w.@/-])geoload\.([A-Za-z_]\w*)\b(?!:)")
#: The lookup's public SQL face, which anyone may call (not create: ``FUNCTION geoload.``).
PUBLIC_CALL = re.compile(r"(?<!FUNCTION )geoload\.(lookup|lookup_many)\s*\(", re.I)
SEND_METHODS = {"send", "send_with_options", "enqueue"}
BOOKKEEPING = ("service.ledger", "service.pipeline", "actors")


def _modules(*under: str, tops: tuple[str, ...] = SOURCES
             ) -> Iterator[tuple[str, ast.Module, list[str]]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if under and not name.startswith(under):
                continue
            text = path.read_text(encoding="utf-8")
            yield name, ast.parse(text, name), text.splitlines()


def _docs(tree: ast.Module) -> set[int]:
    """Strings that are statements (docstrings, notes): text for readers, not SQL."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _spans(tree: ast.Module) -> dict[int, ast.expr]:
    """Each f-string's pieces → the f-string, whose position Python 3.11 gives them."""
    return {id(piece): node for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
            for piece in node.values}


def _line_of(found: str, nth: int, node: ast.expr, lines: list[str]) -> int:
    """The line of ``node`` holding its ``nth`` (0-based) ``found``: a string spans lines."""
    end = node.end_lineno or node.lineno
    holding = [number for number in range(node.lineno, end + 1)
               for _ in re.finditer(re.escape(found) + r"\b", lines[number - 1])]
    return holding[min(nth, len(holding) - 1)] if holding else node.lineno


def _sql_on_geoload(name: str, tree: ast.Module, lines: list[str]) -> Iterator[str]:
    docs, spans = _docs(tree), _spans(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = PUBLIC_CALL.sub("", node.value)
            seen: dict[str, int] = {}
            for match in GEOLOAD_NAME.finditer(text):
                nth = seen[match[0]] = seen.get(match[0], -1) + 1
                line = _line_of(match[0], nth, spans.get(id(node), node), lines)
                yield f"{name}:{line}: {match[0]}"
        if (isinstance(node, ast.Call) and _called(node) == "Identifier" and node.args
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "geoload"):
            yield f"{name}:{node.lineno}: sql.Identifier('geoload', ...)"


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _sends(tree: ast.Module) -> Iterator[ast.Call]:
    """``x.send(...)``-like calls: an actor's or a broker's (an ASGI ``send(...)`` is a
    bare name)."""
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in SEND_METHODS)


def _typing_only(tree: ast.Module) -> set[int]:
    """Imports under ``if TYPE_CHECKING:``: names for annotations, nothing run."""
    return {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for inner in ast.walk(node)}


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module (and ``module.name``) imported when the module runs."""
    typing_only = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def test_only_the_ledger_has_sql_on_geoload():
    found = [hit for name, tree, lines in _modules() if not name.startswith(LEDGER)
             for hit in _sql_on_geoload(name, tree, lines)]
    assert not found, ("SQL on geoload.* outside service/ledger/ (add a function to the "
                       "ledger and call it):\n" + "\n".join(found))


def test_only_the_pipeline_sends_messages():
    found = []
    for name, tree, _ in _modules():
        if name.startswith(SENDERS):
            continue
        found += [f"{name}:{node.lineno}: .{_called(node)}(...)" for node in _sends(tree)]
        found += [f"{name}:{line}: imports {module}" for line, module in _imported(tree)
                  if module == "dramatiq" or module.startswith("dramatiq.")]
    assert not found, ("messages sent, or the broker known, outside service/pipeline/ and "
                       "actors/ (return a Next and let the pipeline send it):\n"
                       + "\n".join(found))


def test_the_stages_know_neither_the_ledger_nor_the_pipeline():
    found = [f"{name}:{line}: imports {module}"
             for name, tree, _ in _modules(*STAGES) for line, module in _imported(tree)
             if module.startswith(BOOKKEEPING) or module in ("service.ledger", "service.pipeline")]
    assert not found, ("a stage imports the ledger or the pipeline (pass it what it needs, "
                       "or move the bookkeeping into service/pipeline/):\n" + "\n".join(found))


def test_tests_share_helpers_through_tests_support_not_through_test_modules():
    """A test module imported by another runs its tests twice and hides a helper where
    nobody looks: shared helpers live in tests/support/ (fixtures in tests/conftest.py)."""
    found = [f"{name}:{line}: imports {module}"
             for name, tree, _ in _modules(tops=("tests",)) for line, module in _imported(tree)
             if module.startswith("tests.") and not module.startswith("tests.conftest")
             and any(part.startswith("test_") or part == "conftest"
                     for part in module.split(".")[1:])]
    assert not found, ("a test imports a test module or a package's conftest (move the "
                       "helper into tests/support/):\n" + "\n".join(found))


def test_the_rules_catch_what_they_are_for():
    """The scanners themselves, on made-up source: a rule that finds nothing proves nothing."""
    tree = ast.parse('"""geoload.loads in a docstring is prose."""\n'
                     'q = "SELECT * FROM geoload.loads"\n'
                     'ok = "SELECT * FROM geoload.lookup_many(%s, %s)"\n'
                     'ddl = "CREATE FUNCTION geoload.lookup(lon float8)"\n'
                     'i = sql.Identifier("geoload", "runs")\n'
                     'url = "https://example.org/geoload.zip"\n'
                     'key = "geoload.publish:gadm"\n')
    lines = ast.unparse(tree).splitlines()
    assert [h.split(": ", 1)[1] for h in _sql_on_geoload("x.py", tree, lines)] == [
        "geoload.loads", "geoload.lookup", "sql.Identifier('geoload', ...)"]
    sends = ast.parse("from service.ledger import loads\nimport dramatiq\nfetch.send(1)\n"
                      "await send(message)\nif TYPE_CHECKING:\n    import dramatiq.broker\n")
    assert [m for _, m in _imported(sends)] == ["service.ledger", "service.ledger.loads",
                                                "dramatiq"]
    assert [_called(n) for n in _sends(sends)] == ["send"]
