"""The package as installed: a wheel with every module and data file, console scripts
that work from a fresh virtual environment, requirement files that agree with
pyproject.toml, and layering that a newcomer can read off the imports."""

import ast
import configparser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from tiny_data import make_imagefolder

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "wsms_viz"
SCRIPTS = {"wsms-train", "wsms-evaluate", "wsms-report", "wsms-study", "wsms-complexity", "wsms-features",
           "wsms-app"}
DATA_SUFFIXES = (".py", ".json", ".js", ".png", ".jpg", ".md")


def _package_files() -> list[str]:
    return sorted(p.relative_to(REPO).as_posix() for p in PACKAGE.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix in DATA_SUFFIXES)


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of what pyproject.toml builds from (no stray files of the checkout)."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "wsms_viz", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    return next((tmp_path / "dist").glob("wsms_viz-*.whl"))


def _modules() -> list[str]:
    """Every importable module; the page scripts are left out: Streamlit runs them, and
    importing one would run a page."""
    return [f.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for f in _package_files() if f.endswith(".py") and not f.startswith("wsms_viz/app/pages/")]


@pytest.mark.slow
def test_the_wheel_holds_every_module_data_file_script_and_its_licence(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    missing = [f for f in _package_files() if f not in names]
    assert not missing, f"not in the wheel: {missing}"
    scripts = configparser.ConfigParser()
    scripts.read_string(entry)
    assert set(scripts["console_scripts"]) == SCRIPTS
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata and "# wsms-viz" in metadata  # the README is the description


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


# --- requirement files, extras and the app's settings ----------------------------------------

def _requirements(path: Path) -> dict[str, str]:
    """``{name: specifier}`` of a requirements file, following ``-r`` includes."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            out |= _requirements(path.parent / line[3:].strip())
        elif line:
            name, spec = re.match(r"([A-Za-z0-9_.\-\[\],]+)\s*(.*)", line).groups()
            out[name.lower()] = spec.replace(" ", "")
    return out


def _specs(reqs: list[str]) -> dict[str, str]:
    return {m[1].lower(): m[2] for m in (re.match(r"([A-Za-z0-9_.\-\[\],]+)(.*)", r.replace(" ", "")) for r in reqs)}


PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_requirement_files_and_extras_agree():
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {"app", "cifar", "test"}
    everything = _specs(PROJECT["dependencies"] + extras["app"] + extras["cifar"])
    assert _requirements(REPO / "requirements.txt") == everything
    test = _specs(extras["test"])
    assert test.pop("wsms-viz[app,cifar]") == ""  # the test extra is everything plus the test tools
    assert _requirements(REPO / "requirements-test.txt") == everything | test
    pinned = _requirements(REPO / "constraints.txt")
    assert set(pinned) == set(everything) | set(test), "constraints.txt pins exactly what the requirements name"
    assert all(v.startswith("==") for v in pinned.values())
    # The app's imports are the [app] extra's: captum for attributions, no torchvision.
    assert {"streamlit", "plotly", "captum"} == set(_specs(extras["app"]))


def test_nothing_needs_scikit_image():
    for name in ("pyproject.toml", "requirements.txt", "requirements-test.txt", "constraints.txt"):
        assert "scikit-image" not in (REPO / name).read_text(encoding="utf-8"), name
    code = [*PACKAGE.rglob("*.py"), *(REPO / "benchmarks").glob("*.py"), *(REPO / "scripts").glob("*.py"),
            *(REPO / "tests").glob("*.py"), REPO / "app.py"]
    users = [p.relative_to(REPO).as_posix() for p in code
             if any(m.split(".")[0] == "skimage" for m in _imports_of(p.read_text(encoding="utf-8"), ("x",)))]
    assert not users, f"imports skimage: {users}"


def test_wsms_app_passes_the_settings_of_streamlit_config_toml():
    from streamlit import config as st_config

    from wsms_viz.app import cli, images

    toml = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    flat = {f"{section}.{key}": value for section, table in toml.items() for key, value in table.items()}
    assert flat == cli.SETTINGS, "wsms_viz/app/cli.py's SETTINGS and .streamlit/config.toml must say the same"
    assert cli.SETTINGS["server.maxUploadSize"] == images.MAX_UPLOAD_MB
    for key, value in cli.SETTINGS.items():  # every one a real Streamlit option, of its type
        assert isinstance(value, st_config._config_options_template[key].type), key


def test_wsms_app_runs_the_packaged_entry_with_the_settings_first(monkeypatch, tmp_path):
    from streamlit.web import cli as streamlit_cli

    from wsms_viz.app import cli

    seen = {}

    def fake_main(args, prog_name, standalone_mode):
        seen["args"], seen["env"] = args, os.environ.get("WSMS_CHECKPOINTS")
        return 0

    monkeypatch.setattr(streamlit_cli, "main", fake_main)
    monkeypatch.delenv("WSMS_CHECKPOINTS", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(["--checkpoints", "ck", "--server.port", "8600", "--server.maxUploadSize=5"])
    assert e.value.code == 0
    assert seen["args"] == ["run", str(PACKAGE / "app" / "entry" / "wsms_app.py"), *cli.flags(),
                            "--server.port", "8600", "--server.maxUploadSize=5"]  # the user's come last and win
    assert seen["env"] == str(tmp_path / "ck")
    assert "--runner.postScriptGC=false" in cli.flags() and "--client.toolbarMode=viewer" in cli.flags()


# --- the wheel in a fresh virtual environment --------------------------------------------------

SHIPPED = REPO / "checkpoints"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel installed with its [app] extra into a new venv (no system site-packages),
    and a working directory with ``checkpoints/`` (copies of two shipped checkpoints) and a
    tiny ImageFolder. Shared by the tests below: the install is most of their time."""
    base = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(base)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    start = time.monotonic()
    # --no-compile: byte-compiling torch's thousands of files would take longer than the rest.
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", f"{wheel}[app]",
                          "-c", str(REPO / "constraints.txt")], capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-3000:]
    print(f"pip install wheel[app]: {time.monotonic() - start:.0f} s")
    work = base / "work"
    for name in ("resnet20", "wsms_resnet20"):
        shutil.copytree(SHIPPED / name, work / "checkpoints" / name)
    make_imagefolder(work / "data", per_class=10)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(base / "home"), "PYTHONNOUSERSITE": "1",
           "LANG": "C.UTF-8", "WSMS_CACHE": str(base / "cache")}
    return venv, work, env


def _run(installed, *cmd, timeout=300, **kw) -> subprocess.CompletedProcess:
    venv, work, env = installed
    return subprocess.run([str(venv / "bin" / cmd[0]), *cmd[1:]], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


def _ok(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, f"{run.args}: exit {run.returncode}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    return run.stdout


needs_shipped = pytest.mark.skipif(not (SHIPPED / "wsms_resnet20" / "card.json").is_file(),
                                   reason="no shipped checkpoints")


@pytest.mark.slow
@needs_shipped
def test_the_installed_package_is_itself_and_brings_no_scikit_image(installed):
    listed = {p["name"].lower() for p in json.loads(_ok(_run(installed, "python", "-m", "pip", "list",
                                                               "--format=json")))}
    assert {"wsms-viz", "torch", "streamlit", "plotly", "captum"} <= listed
    assert not listed & {"scikit-image", "scipy", "torchvision"}, listed  # torchvision is [cifar]'s
    # Every module, and every console script's function, from the venv alone (the
    # repository is nowhere on the path).
    code = ("import importlib, sys, wsms_viz\n"
            f"for name in {_modules()!r}:\n"
            "    m = importlib.import_module(name)\n"
            f"    assert m.__file__.startswith({str(installed[0])!r}), (name, m.__file__)\n"
            "from importlib.metadata import entry_points\n"
            "scripts = {e.name: e.load() for e in entry_points(group='console_scripts') if e.name.startswith('wsms')}\n"
            "print(sorted(scripts), all(map(callable, scripts.values())), sys.path)\n")
    out = _ok(_run(installed, "python", "-c", code))
    assert out.startswith(f"{sorted(SCRIPTS)!r} True") and str(REPO) not in out, out
    venv, work, env = installed
    helps = {script: subprocess.Popen([str(venv / "bin" / script), "--help"], cwd=work, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for script in SCRIPTS}
    for script, proc in helps.items():  # all at once: each is mostly an interpreter importing torch
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "usage:" in out, f"{script} --help: exit {proc.returncode}\n{err[-2000:]}"


@pytest.mark.slow
@needs_shipped
def test_the_installed_commands_train_evaluate_study_and_report(installed):
    assert "| WSMS-ResNet-110 (1x1) | Table 2 |" in _ok(_run(installed, "wsms-complexity"))
    common = ["--data", "imagefolder:data", "--threads", "1"]
    _ok(_run(installed, "wsms-train", "--model", "wsms_resnet20", *common, "--out", "runs/tiny", "--epochs", "1",
             "--batch-size", "8", "--no-progress", "--zooms", "1"))
    card = json.loads((installed[1] / "runs" / "tiny" / "card.json").read_text())
    assert card["classes"] == ["cat", "dog", "frog"] and card["recipe"]["epochs"] == 1
    assert "wsms_resnet20" in _ok(_run(installed, "wsms-evaluate", "runs/tiny", *common, "--zooms", "0.5", "1",
                                       "--resamples", "20"))
    assert "same image" in _ok(_run(installed, "wsms-features", "--checkpoint", "runs/tiny", "--images", "4"))
    _ok(_run(installed, "wsms-study", "runs/tiny", *common, "--attr-images", "2", "--attr-steps", "2",
             "--resamples", "20"))
    assert "scale_study" in json.loads((installed[1] / "runs" / "tiny" / "card.json").read_text())
    # The shipped cards' tables, from checkpoints/ in the working directory.
    report = _ok(_run(installed, "wsms-report", "checkpoints/resnet20", "checkpoints/wsms_resnet20"))
    assert "| resnet20 | 0.270M |" in report and "| wsms_resnet20 (1x1, c=128) | 0.286M |" in report, report
    # The cifar10: source names the extra it needs (torchvision is not installed here).
    cifar = _run(installed, "wsms-train", "--model", "resnet20", "--data", "cifar10:nowhere", "--out", "runs/c",
                 "--epochs", "1")
    assert cifar.returncode == 2 and "wsms-viz[cifar]" in cifar.stderr, cifar.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_shipped
def test_wsms_app_serves_the_app_from_the_installed_package(installed):
    venv, work, env = installed
    port = _free_port()
    log = (work / "app.log").open("w")
    proc = subprocess.Popen([str(venv / "bin" / "wsms-app"), "--server.port", str(port), "--server.address",
                             "127.0.0.1", "--server.headless", "true"], cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        health, deadline = None, time.monotonic() + 120
        while health != "ok" and proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                    health = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert health == "ok", (work / "app.log").read_text()[-3000:]
        # The installed st.App's own "No such page" for a path Streamlit alone leaves blank.
        with pytest.raises(urllib.error.HTTPError) as deep:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/a/b", timeout=30)
        assert deep.value.code == 404 and "<title>No such page</title>" in deep.value.read().decode()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()
    # One real run of the installed entry script: the models from ./checkpoints, the
    # sample photo from the package's data.
    script = ("from streamlit.testing.v1 import AppTest\n"
              "import wsms_viz.app.cli as c\n"
              "at = AppTest.from_file(str(c.ENTRY), default_timeout=300).run()\n"
              "assert not at.exception, at.exception\n"
              "print(sorted(at.sidebar.multiselect(key='models').options))\n"
              "at.sidebar.radio(key='source').set_value('Sample photos').run()\n"
              "assert not at.exception, at.exception\n"
              "print([c.value for c in at.caption])\n")
    out = _ok(_run(installed, "python", "-c", script))
    assert out.startswith("['resnet20', 'wsms_resnet20']") and "Image: **chelsea (a cat)**" in out, out
