"""The layers point one way (adapters → bot → memory), and code stays in small pieces.

Imports are read from the source (ast), including those inside functions, so a lazy import
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = ("discord", "slack_bolt", "slack_sdk")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
# Text and configuration tables: long by nature.
TABLES = ("bot/texts.py", "bot/settings.py")
# Over the limits today and left to their owners (the core is being reshaped by the adapter
# work of issue 10): `test_nothing_is_too_long` fails until they are split.


def _modules(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def _offences(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if name.split(".")[0] in forbidden
    ]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _long_functions() -> list[str]:
    found = []
    for path in _modules("bot") + _modules("memory"):
        if _name(path) in TABLES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                # The signature and docstring count: they are part of what a reader reads.
                lines = node.end_lineno - min(
                    [node.lineno, *(d.lineno for d in node.decorator_list)]
                )
                if lines + 1 > MAX_FUNCTION_LINES:
                    found.append(f"{_name(path)}:{node.name}")
    return found


def _long_modules() -> list[str]:
    return [
        _name(path)
        for path in _modules("bot") + _modules("memory")
        if _name(path) not in TABLES
        and len(path.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES
    ]


def test_the_layer_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text(
        "import os\n\ndef f():\n    from bot.core import Parley\n    import slack_sdk.web\n"
    )
    assert list(_imports(module)) == ["os", "bot.core", "slack_sdk.web"]


def test_memory_imports_neither_bot_nor_adapters() -> None:
    assert _offences("memory", ("bot", "adapters")) == []


def test_bot_imports_no_platform_library() -> None:
    assert _offences("bot", PLATFORM_LIBRARIES) == []


def test_bot_imports_no_adapter() -> None:
    """Adapters are plug-ins found through entry points (bot/plugins.py), never imported."""
    assert _offences("bot", ("adapters",)) == []


def test_no_function_or_module_is_too_long() -> None:
    assert (_long_functions(), _long_modules()) == ([], [])
