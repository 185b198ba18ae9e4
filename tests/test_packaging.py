"""The package as installed: a wheel with every module and data file, console scripts,
and layering that a newcomer can read off the imports."""

import ast
import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "wsms_viz"
SCRIPTS = {"wsms-train", "wsms-evaluate", "wsms-report", "wsms-complexity", "wsms-features"}


def _package_files() -> list[str]:
    return sorted(p.relative_to(REPO).as_posix() for p in PACKAGE.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json", ".js"))


def _modules() -> list[str]:
    return [f.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for f in _package_files() if f.endswith(".py")]


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_data_file_and_imports_from_itself(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "wsms_viz", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("wsms_viz-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
        entry = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    missing = [f for f in _package_files() if f not in names]
    assert not missing, f"not in the wheel: {missing}"
    scripts = configparser.ConfigParser()
    scripts.read_string(entry)
    assert set(scripts["console_scripts"]) == SCRIPTS
    # Import every module, and resolve every console script, from the unpacked wheel alone:
    # a fresh interpreter in another directory, the repository not on the path.
    code = (f"import importlib, sys\nsite = {str(tmp_path / 'site')!r}\n"
            f"for name in {_modules()!r}:\n"
            "    m = importlib.import_module(name)\n"
            "    assert m.__file__.startswith(site), (name, m.__file__)\n"
            f"for target in {list(scripts['console_scripts'].values())!r}:\n"
            "    mod, fn = target.split(':')\n"
            "    assert callable(getattr(importlib.import_module(mod), fn)), target\n"
            "print('ok', len(sys.modules))\n")
    run = subprocess.run([sys.executable, "-s", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                         timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stderr[-3000:]


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` (in the package) imports."""
    parts = path.relative_to(REPO).parts
    package = parts[:-1]  # the package a relative import in this file starts from
    return _imports_of(path.read_text(encoding="utf-8"), package)


def _imports_of(source: str, package: tuple[str, ...]) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                mod = ".".join(base + ([node.module] if node.module else []))
                out |= {mod} | {f"{mod}.{a.name}" for a in node.names}
            else:
                out.add(node.module)
    return out


LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if "app" not in p.relative_to(PACKAGE).parts)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_library_never_imports_the_app_or_streamlit(path):
    bad = sorted(m for m in _imports(path) if m.startswith(("wsms_viz.app", "streamlit")))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}: only app.py, wsms_viz/app/pages/ and wsms_viz/app/ may"


def test_the_import_walk_sees_a_violation():
    # The walk must be able to fail: the relative import report.py once had is caught.
    seen = _imports_of("from ..app.catalog import teaching_order\nimport streamlit as st\n",
                       ("wsms_viz", "evaluation"))
    assert {"wsms_viz.app.catalog", "streamlit"} <= seen
    assert _imports(PACKAGE / "evaluation" / "report.py") >= {"wsms_viz.cards", "wsms_viz.models"}


# Functions over the limit, each with the reason it stays long (none today).
LONG_FUNCTION_LIMIT = 80
LONG_FUNCTION_EXCEPTIONS: dict[str, str] = {}


def _long_functions() -> dict[str, int]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > LONG_FUNCTION_LIMIT:
                    out[f"{path.relative_to(REPO).as_posix()}:{node.name}"] = n
    return out


def test_no_function_in_the_package_is_over_80_lines():
    long = {k: n for k, n in _long_functions().items() if k not in LONG_FUNCTION_EXCEPTIONS}
    assert not long, f"functions over {LONG_FUNCTION_LIMIT} lines: {long}"


def test_the_length_walk_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(LONG_FUNCTION_LIMIT + 1))
    node = ast.parse(f"def f():\n{body}\n").body[0]
    assert node.end_lineno - node.lineno + 1 > LONG_FUNCTION_LIMIT


ANALYSIS = sorted((PACKAGE / "analysis").glob("*.py"))


@pytest.mark.parametrize("path", ANALYSIS, ids=lambda p: p.name)
def test_analysis_computes_and_never_draws(path):
    # analysis/ returns numbers and arrays; figures are the app's (wsms_viz/app/*_figure(s).py).
    bad = sorted(m for m in _imports(path) if m.startswith(("plotly", "matplotlib")))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}: draw in wsms_viz/app/"
