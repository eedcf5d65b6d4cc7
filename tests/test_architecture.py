"""The package layering of ARCHITECTURE.md, and the one installed namespace, as tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What each package may import from fidelite (besides itself).
ALLOWED = {
    "features": {"errors"},
    "training": {"features", "errors"},
    "reports": {"training", "features", "errors"},
    "serving": {"reports", "training", "features", "errors"},
}


def _fidelite_imports(path: Path) -> list[str]:
    """Top-level fidelite packages a module imports (``fidelite.x.y`` -> ``x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [n.split(".")[1] for n in names if n.startswith("fidelite.")]
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_flow_downstream(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    violations = [
        f"{path.relative_to(ROOT)} imports fidelite.{name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _fidelite_imports(path)
        if name not in allowed
    ]
    assert not violations, "\n".join(violations)


def test_only_the_fidelite_namespace_is_installed(tmp_path: Path) -> None:
    # Run outside the repository so its folders are not on sys.path.
    def imports(module: str) -> bool:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=tmp_path, capture_output=True
        )
        return probe.returncode == 0

    assert imports("fidelite.features") and imports("fidelite.serving.schemas")
    assert not imports("features") and not imports("training") and not imports("serving")


def test_serving_does_not_load_matplotlib(tmp_path: Path) -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fidelite.serving.handlers, fidelite.training.model; "
            "print('matplotlib' in sys.modules)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"


# Issue 9's readability limits: a newcomer reads any module in one sitting and any
# function on one screen.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
SIZED_PACKAGES = ("features", "training", "serving", "reports", "fidelite")


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", SIZED_PACKAGES)
def test_modules_and_functions_stay_small(package: str) -> None:
    too_long = []
    for path in _python_files(package):
        source = path.read_text()
        name = path.relative_to(ROOT)
        if source.count("\n") > MAX_MODULE_LINES and package != "fidelite":
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}::{node.name}: {length} lines")
    assert not too_long, "over the size limits:\n" + "\n".join(too_long)
