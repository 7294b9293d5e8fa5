"""What the deployed layer and functions carry: locked dependencies, no development code, bytecode checked."""

from __future__ import annotations

import ast
import compileall
import importlib.util
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from leadflow_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers/leadflow"
CHECK_BYTECODE = ROOT / "infra/packaging/check_bytecode.py"
TAG = sys.implementation.cache_tag

# The Lambda runtime's boto3 and what only it needs (README, "Deploying"): never a second copy in the layer.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil"}
# Modules of development tools: the layer's code must not import them. (PyYAML is a runtime dependency since
# the scoring model, a YAML file, is loaded on Lambda too.)
DEVELOPMENT_ONLY = {"leadflow.cli", "leadflow.cli_report", "leadflow_local", "moto", "pytest", "hypothesis", "tests"}
# Each shipped default (infra/<name>/default.yaml) → the loader the functions call and what it compiles to
LOADERS = {
    "scoring": ("leadflow.scoring_model", "current_model", "ScoringModel"),
    "journeys": ("leadflow.journey_config", "configured_journeys", "JourneyConfig"),
    "routing": ("leadflow.routing_config", "configured_routing", "RoutingConfig"),
    "conversions": ("leadflow.ads.config", "conversion_config", "ConversionConfig"),
    "crm_feedback": ("leadflow.crm_feedback_config", "configured_feedback", "FeedbackConfig"),
    "funnel": ("leadflow.funnel_config", "current_config", "FunnelConfig"),
}


def _lock() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {name: (pinned version, sha256 hashes)}."""
    text = (LAYER / "requirements.lock").read_text(encoding="utf-8")
    entries = {}
    for block in re.split(r"\n(?=\S)", re.sub(r"\\\n", " ", text)):
        line = block.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split(" --")
        name, _, version = requirement.strip().partition("==")
        hashes = [o.split(":", 1)[1].strip() for o in options if o.startswith("hash=sha256:")]
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


def _runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(d) for d in project["dependencies"]]


def test_every_runtime_dependency_of_pyproject_is_pinned_in_the_lock_at_the_same_version():
    # Given pyproject's runtime dependencies, less what the Lambda runtime provides
    shipped = [r for r in _runtime_dependencies() if canonicalize_name(r.name) not in RUNTIME_PROVIDED]

    # When the layer's lock is read
    lock = _lock()

    # Then each is in the lock at its exact pyproject pin
    assert shipped
    for requirement in shipped:
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is not in requirements.lock: run `make lock`"
        assert lock[name][0] == spec.version, f"{requirement}: requirements.lock has {lock[name][0]}, run `make lock`"


def test_the_lock_pins_every_package_with_hashes_and_leaves_boto3_and_botocore_to_the_runtime():
    # Given the layer's lock
    lock = _lock()

    # Then every package is pinned to one version with at least one sha256 hash (pip --require-hashes)
    assert len(lock) >= 10
    for name, (version, hashes) in lock.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), name
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    # and nothing the runtime provides is shipped a second time
    assert not RUNTIME_PROVIDED & set(lock)


def test_the_layer_is_built_by_its_makefile_from_the_lock():
    # Given the template's layer resource
    layer = load_template(ROOT / "template.yaml")["Resources"]["LeadflowLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"

    # When its build target is planned as `sam build` runs it (in the layer's folder, with ARTIFACTS_DIR)
    plan = subprocess.run(
        ["make", "-n", "-C", str(ROOT / layer["Properties"]["ContentUri"]), "build-LeadflowLayer", "ARTIFACTS_DIR=/x"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")

    # Then it installs exactly the hash-locked wheels for arm64 CPython 3.12, nothing resolved on the fly
    (install,) = [line for line in plan.splitlines() if " pip install " in line]
    for option in ("--require-hashes", "--no-deps", "--only-binary=:all:", "-r requirements.lock", "--target"):
        assert option in install
    assert "--python-version 3.12" in install and "aarch64" in install


def test_the_layer_code_is_the_leadflow_package_without_the_cli_or_local_caches(tmp_path):
    # Given a source tree that was run locally (so it has __pycache__ folders)
    compileall.compile_dir(LAYER / "leadflow", quiet=1)

    # When the layer's code step runs as `sam build` runs it
    subprocess.run(
        ["make", "-s", "-C", str(LAYER), "layer-code", f"ARTIFACTS_DIR={tmp_path}", f"PYTHON={sys.executable}"],
        check=True,
        capture_output=True,
    )

    # Then the layer holds every module of the package but the operator CLI, and no bytecode of this machine
    built = tmp_path / "python"
    source_modules = {p.relative_to(LAYER).as_posix() for p in (LAYER / "leadflow").rglob("*.py")}
    layer_modules = {p.relative_to(built).as_posix() for p in built.rglob("*.py")}
    assert {"leadflow/cli.py", "leadflow/cli_report.py"} <= source_modules
    assert layer_modules == source_modules - {"leadflow/cli.py", "leadflow/cli_report.py"}
    assert (built / "leadflow/schemas/lead_input.v1.json").is_file()
    assert not list(built.rglob("__pycache__"))
    # and none of its modules imports a development tool
    for path in built.rglob("*.py"):
        for imported in _imports(path):
            assert not any(imported == d or imported.startswith(d + ".") for d in DEVELOPMENT_ONLY), (path, imported)


def test_the_layer_ships_the_default_configurations_and_loads_them_with_no_checkout(tmp_path):
    # Given the layer's code step run as `sam build` runs it: in a scratch copy of the layer folder, with the
    # Makefile named by its path in the checkout
    scratch = tmp_path / "scratch"
    shutil.copytree(LAYER, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        ["make", "-s", "--makefile", str(LAYER / "Makefile"), "-C", str(scratch), "layer-code"]
        + [f"ARTIFACTS_DIR={tmp_path / 'artifacts'}", f"PYTHON={sys.executable}"],
        check=True,
        capture_output=True,
    )
    built = tmp_path / "artifacts" / "python"

    # Then every shipped default (infra/<name>/default.yaml) is in the package, unchanged, with its JSON twin
    # holding the same document (what a cold start reads without PyYAML)
    shipped = sorted(ROOT.glob("infra/*/default.yaml"))
    assert {p.parent.name for p in shipped} >= set(LOADERS)
    for default in shipped:
        packaged = built / "leadflow" / "defaults" / default.parent.name / "default.yaml"
        assert packaged.read_bytes() == default.read_bytes()
        twin = json.loads((packaged.parent / "default.json").read_text(encoding="utf-8"))
        assert twin == yaml.safe_load(default.read_text(encoding="utf-8")), default

    # and a Lambda-like process (only the layer on the path, no checkout, no LEADFLOW_* settings) loads each of
    # them with its own loader, from the layer's copy
    assert {p.parent.name for p in shipped} <= set(LOADERS), "a shipped default without a loader check here"
    probe = (
        "import importlib, json, sys; sys.path.insert(0, sys.argv[1]); import leadflow\n"
        "from leadflow import yaml_config\n"
        "opened, read = [], yaml_config.read\n"
        "def reading(path, source, invalid):\n"
        "    opened.append(str(path.resolve()))\n"
        "    return read(path, source, invalid)\n"
        "yaml_config.read = reading\n"
        "loaded = {}\n"
        "for name, (module, function, _) in json.loads(sys.argv[2]).items():\n"
        "    config = getattr(importlib.import_module(module), function)()\n"
        "    loaded[name] = {'type': type(config).__name__, 'opened': opened[-1]}\n"
        "print(json.dumps({'package': leadflow.__file__, 'loaded': loaded, 'modules': sorted(sys.modules)}))\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "PYTHON"))}
    answer = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(built), json.dumps(LOADERS)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["package"].startswith(str(built))
    assert set(result["loaded"]) == set(LOADERS)
    for name, loaded in result["loaded"].items():
        assert loaded["opened"] == str((built / "leadflow/defaults" / name / "default.json").resolve()), name
        assert loaded["type"] == LOADERS[name][2], name
    assert "yaml" not in result["modules"]  # the JSON twins are read without importing PyYAML


@pytest.mark.parametrize("missing", sorted(LOADERS))
def test_the_layer_build_fails_when_a_default_a_loader_needs_is_missing(tmp_path, missing):
    # Given an infra/ folder with every shipped default but one a loader needs
    infra = tmp_path / "infra"
    for default in ROOT.glob("infra/*/default.yaml"):
        if default.parent.name != missing:
            (infra / default.parent.name).mkdir(parents=True)
            shutil.copy(default, infra / default.parent.name / "default.yaml")

    # When the layer's code step runs with it
    build = subprocess.run(
        ["make", "-s", "-C", str(LAYER), "layer-code", f"ARTIFACTS_DIR={tmp_path / 'artifacts'}", f"INFRA_DIR={infra}"],
        capture_output=True,
        text=True,
    )

    # Then the build fails and names the missing file, rather than shipping a layer that fails on AWS
    assert build.returncode != 0
    assert f"{infra}/{missing}/default.yaml is missing: the layer would ship without it" in build.stderr


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# ---------------------------------------------------------------- the bytecode check


def _build_tree(root: Path) -> list[Path]:
    """A miniature `.aws-sam/build`: a function and a layer package."""
    files = {
        "SomeFunction/app.py": "from shared import greet\n\ndef handler(event, context):\n    return greet()\n",
        "SomeLayer/python/shared/__init__.py": "from shared.text import greet\n",
        "SomeLayer/python/shared/text.py": "def greet():\n    return 'hello'\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return [root / name for name in files]


def _check(root: Path, tag: str = TAG) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHECK_BYTECODE), "--python-tag", tag, str(root)], capture_output=True, text=True
    )


def test_the_bytecode_check_fails_on_a_build_without_bytecode_and_passes_once_it_is_compiled(tmp_path):
    # Given a build without bytecode
    modules = _build_tree(tmp_path)

    # When it is checked
    result = _check(tmp_path)

    # Then the check fails and names every module
    assert result.returncode == 1
    assert f"3 of 3 modules have no usable {TAG} bytecode" in result.stdout
    for module in modules:
        assert f"{module}: no .pyc" in result.stdout

    # When the build is compiled as `make build` does it
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-f", "--invalidation-mode", "unchecked-hash", str(tmp_path)],
        check=False,
    )
    result = _check(tmp_path)

    # Then the check passes
    assert compiled.returncode == 0
    assert result.returncode == 0, result.stdout
    assert f"ok: 3 modules have hash-based {TAG} bytecode (SomeFunction 1, SomeLayer 2)" in result.stdout


def test_the_bytecode_check_refuses_timestamp_stale_and_other_version_bytecode(tmp_path):
    # Given a build whose modules each have bytecode Lambda could not use as it is
    app, init, text = _build_tree(tmp_path)
    py_compile.compile(str(app), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    py_compile.compile(str(init), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    init.write_text("from shared.text import greet as hello\n", encoding="utf-8")  # edited after compiling
    cached = Path(py_compile.compile(str(text), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))
    other_magic = (int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little") - 10).to_bytes(2, "little")
    cached.write_bytes(other_magic + cached.read_bytes()[2:])

    # When the build is checked
    result = _check(tmp_path)

    # Then each is refused for its own reason
    assert result.returncode == 1
    assert f"{app}: a timestamp-based .pyc" in result.stdout
    assert f"{init}: a stale .pyc" in result.stdout
    assert f"{text}: a .pyc of another Python version" in result.stdout


def test_the_bytecode_check_refuses_to_judge_with_another_python_than_the_runtimes(tmp_path):
    # Given a compiled build
    _build_tree(tmp_path)
    compileall.compile_dir(tmp_path, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)

    # When the check is asked for another Python version than the one running it
    result = _check(tmp_path, tag="cpython-399")

    # Then it stops with a usage error rather than passing
    assert result.returncode == 2
    assert "run me with the runtime's Python (cpython-399)" in result.stderr


# ---------------------------------------------------------------- the layer's dependencies alone

# Formats the schemas use that the layer's dependencies do not enforce (README, "Deploying"): none today.
FORMATS_NOT_ENFORCED: set[str] = set()

_PROBE = """
import importlib.util, json, sys
from jsonschema import Draft202012Validator
from leadflow import schemas

used = json.loads(sys.argv[1])
def errors(submitted_at):
    document = {"email": "ada@example.com", "submitted_at": submitted_at}
    return [[e.field, e.message] for e in schemas.field_errors("lead_input.v1.json", document)]
print(json.dumps({
    "enforced": sorted(f for f in used if f in Draft202012Validator.FORMAT_CHECKER.checkers),
    "good": errors("2026-11-29T08:15:00Z"),
    "bad": [errors("yesterday"), errors("2026-11-29T25:00:00Z"), errors("2026-11-29")],
    "not_installed": [m for m in ("moto", "botocore", "boto3", "leadflow_local") if not importlib.util.find_spec(m)],
}))
"""


def _formats_used() -> set[str]:
    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("format"), str):
                yield node["format"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return {f for path in (LAYER / "leadflow/schemas").glob("*.json") for f in walk(json.loads(path.read_text()))}


@pytest.fixture(scope="module")
def layer_only_python(tmp_path_factory) -> Path:
    """A clean virtual environment with the layer's locked requirements and nothing else (no moto, no boto3)."""
    venv = tmp_path_factory.mktemp("layer-only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin/python"
    install = [*_pip(python), "install", "-q", "--no-compile", "--no-deps", "--require-hashes", "--only-binary=:all:"]
    subprocess.run([*install, "-r", str(LAYER / "requirements.lock")], check=True)
    return python


def _pip(python: Path) -> list[str]:
    """This interpreter's pip, acting on the environment of `python` (faster than bootstrapping pip there)."""
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]


@pytest.mark.slow
def test_the_layer_requirements_alone_enforce_every_format_the_schemas_use(layer_only_python):
    # Given a clean environment with only the layer's requirements, and the leadflow package as the layer ships it
    used = _formats_used()
    assert "date-time" in used  # lead_input's submitted_at

    # When the real schema check runs there
    probe = subprocess.run(
        [layer_only_python, "-s", "-c", _PROBE, json.dumps(sorted(used))],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(LAYER), "TZ": "UTC"},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(probe.stdout)

    # Then it is really the layer alone (none of the test tools, and no AWS SDK: Lambda's runtime provides that)
    assert sorted(result["not_installed"]) == ["boto3", "botocore", "leadflow_local", "moto"]
    # and every format the schemas use is enforced, as it is in the tests
    from jsonschema import Draft202012Validator

    assert set(result["enforced"]) == used - FORMATS_NOT_ENFORCED
    assert set(result["enforced"]) == {f for f in used if f in Draft202012Validator.FORMAT_CHECKER.checkers}
    # and a bad submitted_at is refused while a good one is accepted
    assert result["good"] == []
    assert result["bad"] == [[["submitted_at", "must be a valid date-time"]]] * 3


@pytest.mark.slow
def test_the_lock_is_complete_but_for_what_the_lambda_runtime_provides(layer_only_python):
    # Given the clean environment with only the layer's requirements

    # When pip checks every installed package's requirements
    check = subprocess.run([*_pip(layer_only_python), "check"], capture_output=True, text=True)

    # Then the only missing ones are provided by the Lambda runtime (boto3 and botocore), nothing conflicts
    missing = set()
    for line in check.stdout.splitlines():
        match = re.fullmatch(r"\S+ \S+ requires ([\w.-]+), which is not installed\.", line.strip())
        assert match, line  # not a version conflict
        missing.add(canonicalize_name(match.group(1)))
    assert "botocore" in missing  # pynamodb's and aws-xray-sdk's
    assert missing <= RUNTIME_PROVIDED
