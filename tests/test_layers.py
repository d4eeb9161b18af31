"""The house rules of docs/architecture.md, read from the source: arrows point down, Qt only in ui/, ib_async
only in the IB adapters, and the engine's sub-engines hold no reference back to the engine core."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workstation"
LOWER = ("domain", "pricing", "strategy", "risk", "execution", "portfolio", "market", "storage", "alerts",
         "analytics", "sim")
IB_ADAPTERS = {"market/ib.py", "market/ib_session.py", "execution/ib.py"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by `path` (relative imports resolved against the package)."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[:len(parts) - node.level]
                out.add(".".join(base + ((node.module,) if node.module else ())))
            elif node.module:
                out.add(node.module)
    return out


SOURCES = {str(p.relative_to(PACKAGE)): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _importing(prefix: str) -> set[str]:
    return {path for path, mods in SOURCES.items() if any(m == prefix or m.startswith(prefix + ".") for m in mods)}


def test_the_source_tree_was_read():
    assert "engine/core.py" in SOURCES and len(SOURCES) > 100


def test_qt_is_imported_only_in_ui():
    assert any(p.startswith("ui/") for p in _importing("PySide6"))       # the reader sees Qt where it is
    for qt in ("PySide6", "pyqtgraph", "qasync"):
        assert {p for p in _importing(qt) if not p.startswith("ui/")} == set(), qt


def test_ib_async_is_imported_only_in_the_ib_adapters():
    assert "execution/ib.py" in _importing("ib_async") and _importing("ib_async") <= IB_ADAPTERS


def test_nothing_imports_ui_but_the_commands():
    outside = {p for p in _importing("workstation.ui") if not p.startswith("ui/")}
    assert outside <= {"cli.py", "backtest/command.py", "doctor.py"}, outside


@pytest.mark.parametrize("package", LOWER)
def test_lower_packages_do_not_import_the_engine_or_the_window(package):
    for layer in ("workstation.engine", "workstation.ui"):
        assert {p for p in _importing(layer) if p.startswith(package + "/")} == set(), (package, layer)


def test_sub_engines_hold_no_reference_back_to_the_engine_core():
    """Only the package's front door, the wiring and the reporting (type hints) name the core."""
    users = {p for p in _importing("workstation.engine.core") if p.startswith("engine/")}
    assert users <= {"engine/__init__.py", "engine/wiring.py", "engine/reporting.py"}, users


def test_no_engine_module_is_a_monolith():
    """Issue 17's bar: no module over ~400 lines in the engine package, no class over ~300."""
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        text = path.read_text()
        assert text.count("\n") <= 420, path.name
        for node in ast.parse(text).body:
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno - node.lineno < 310, (path.name, node.name)
