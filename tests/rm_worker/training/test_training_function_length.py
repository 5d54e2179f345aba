"""Every function in rm_worker/training fits on a screen (issue 17: no function longer than 80 lines)."""

import ast
from pathlib import Path

import rm_worker.training

MAX_LINES = 80


def _long_functions(source: str, name: str) -> list[str]:
    return [
        f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def test_no_function_in_the_training_package_is_longer_than_80_lines():
    package = Path(rm_worker.training.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 10  # the walk found the package
    too_long = [line for path in modules for line in _long_functions(path.read_text(encoding="utf-8"), path.name)]
    assert not too_long, f"split these functions: {too_long}"


def test_the_check_counts_a_function_from_its_def_to_its_last_line_nested_ones_too():
    def function(name: str, lines: int, indent: str = "") -> str:
        return f"{indent}def {name}():\n" + "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))

    assert _long_functions(function("fits", MAX_LINES), "m.py") == []
    assert _long_functions(function("long", MAX_LINES + 1), "m.py") == ["m.py:1 long (81 lines)"]
    method = "class C:\n" + function("method", MAX_LINES + 1, indent="    ")
    assert _long_functions(method, "m.py") == ["m.py:2 method (81 lines)"]
