"""STYLE: the domain is pure. No module of stockledger.domain imports a framework,
a database library or an outer layer of stockledger."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stockledger.domain

DOMAIN = Path(stockledger.domain.__file__).resolve().parent
FORBIDDEN = ("sqlalchemy", "fastapi", "typer", "pydantic", "yaml", "rich", "orjson", "alembic",
             "psycopg", "stockledger.adapters", "stockledger.service", "stockledger.cli",
             "stockledger.api")
MODULES = sorted(DOMAIN.rglob("*.py"))


def package_of(path: Path) -> str:
    return ".".join(("stockledger", *path.relative_to(DOMAIN.parent).parts[:-1]))


def imported_names(source: str, package: str) -> list[tuple[int, str]]:
    """Every module (and imported name) a source imports, anywhere in the file;
    relative imports resolved against `package`."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append((node.lineno, module))
            names.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)) \
                and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                    "__import__", "import_module") \
                and node.args and isinstance(node.args[0], ast.Constant):
            names.append((node.lineno, str(node.args[0].value)))
    return names


def forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def test_the_domain_package_is_found() -> None:
    assert {p.name for p in MODULES} >= {"money.py", "setup.py", "states.py", "pools.py",
                                         "evaluate.py", "resolve.py", "sequences.py"}


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(DOMAIN)) for p in MODULES])
def test_domain_module_imports_nothing_outside_the_core(path: Path) -> None:
    bad = [f"{path.name}:{line} imports {name}"
           for line, name in imported_names(path.read_text(), package_of(path)) if forbidden(name)]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_forbidden_imports_wherever_they_hide() -> None:
    source = (
        "import decimal\n"
        "def f():\n"
        "    from sqlalchemy import select\n"        # inside a function
        "    from ..service import ingest\n"          # relative, resolves to stockledger.service
        "    import importlib; importlib.import_module('yaml')\n"
        "    return __import__('orjson')\n"
    )
    names = [name for _, name in imported_names(source, "stockledger.domain")]
    caught = sorted({name for name in names if forbidden(name)})
    assert caught == ["orjson", "sqlalchemy", "sqlalchemy.select", "stockledger.service",
                      "stockledger.service.ingest", "yaml"]
    assert not forbidden("decimal") and not forbidden("stockledger.domain.money")
    assert not forbidden("richtext")  # a prefix match needs a dot
