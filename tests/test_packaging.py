"""What users install is the wheel: build it, install it into a fresh virtual environment, and use
it from an empty folder that has nothing of this repository in it.

The app built there is the docs' example ("Quick start: your own CDK app", docs/quickstart.md),
taken from that page verbatim: an app with its own ``infra`` package that protects two
services with the construct.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.harness import REPOSITORY

pytestmark = pytest.mark.slow

PAGE = REPOSITORY / "docs" / "quickstart.md"
SECTION = "# Quick start: your own CDK app"
#: What a checkout holds beside its source: environments, build output, caches.
NOT_SOURCE = (".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "cdk.out", "mutants", "__pycache__")
#: Where each folder of the repository lands in the package (pyproject's package-dir).
PACKAGE_FOLDERS = {
    "sfn_breaker": "sfn_breaker",
    "infra": "sfn_breaker/cdk",
    "lambdas": "sfn_breaker/lambdas",
}
#: Each of the section's Python blocks starts with a comment naming its file.
FILE_COMMENT = re.compile(r"\A# (?P<path>[\w/]+\.py)\n")


def readme_app() -> dict[str, str]:
    """The files of the docs' example app, by path, exactly as the page shows them."""
    text = PAGE.read_text()
    section = text[text.index(SECTION) :]
    end = section.find("\n## ", len(SECTION))
    section = section if end == -1 else section[:end]
    files = {}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        match = FILE_COMMENT.match(block)
        assert match, f"a Python block in {PAGE.name}'s {SECTION!r} does not name its file:\n{block}"
        files[match["path"]] = block
    return files


def run(command: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the working tree, built from a clean copy of it: setuptools builds in place
    (``build/lib``) and never removes what an earlier build left there, so a wheel built in a
    checkout can carry modules that no longer exist."""
    source = tmp_path_factory.mktemp("source") / "sfn-breaker"
    shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out, source], cwd=out)
    (built,) = out.glob("sfn_breaker-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its cdk and cli extras; returns its bin/."""
    environment = tmp_path_factory.mktemp("venv")
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", f"{wheel}[cdk,cli]"], cwd=environment)
    return bin_dir


def outside_env() -> dict[str, str]:
    """This process's environment without anything that points back into the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CDK_CONTEXT_JSON")}
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    return env


def test_the_wheel_claims_one_import_name_and_carries_the_workflow_and_the_lambda_code(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = archive.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()

    assert top_level == ["sfn_breaker"]
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"sfn_breaker"}
    assert "sfn_breaker/statemachine/circuit_breaker.asl.json" in names
    # Exactly the modules of the source tree: nothing stale from an earlier build, nothing missing.
    source_modules = {
        f"{installed_as}/{path.relative_to(REPOSITORY / folder).as_posix()}"
        for folder, installed_as in PACKAGE_FOLDERS.items()
        for path in (REPOSITORY / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    source_modules.add("sfn_breaker/statemachine/__init__.py")
    assert {name for name in names if name.endswith(".py")} == source_modules
    assert {
        "sfn_breaker/lambdas/record_failure.py",
        "sfn_breaker/lambdas/claim_probe.py",
        "sfn_breaker/lambdas/stream_mirror.py",
        "sfn_breaker/lambdas/demo_service.py",
        "sfn_breaker/core/transitions.py",
        "sfn_breaker/cdk/demo_app.py",
        "sfn_breaker/py.typed",
    } <= set(names)


def test_the_readme_app_synthesizes_from_the_installed_wheel_in_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    # GIVEN an empty folder with the docs' app, which has an infra package of its own
    for path, text in readme_app().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    (tmp_path / "infra" / "__init__.py").write_text("")
    assert sorted(readme_app()) == ["app.py", "infra/orders_stack.py"]
    where = run(
        [installed / "python", "-c", "import sfn_breaker, infra; print(sfn_breaker.__file__, infra.__file__)"],
        cwd=tmp_path,
        env=outside_env(),
    ).split()
    assert Path(where[0]).is_relative_to(installed.parent) and Path(where[1]).is_relative_to(tmp_path)

    # WHEN it is synthesized with the wheel's construct
    out = tmp_path / "cdk.out"
    run([installed / "python", "app.py"], cwd=tmp_path, env={**outside_env(), "CDK_OUTDIR": str(out)})

    # THEN the workflow routes both services, each to its own function and settings
    template = json.loads((out / "Orders.template.json").read_text())
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = json.loads(machine["Properties"]["DefinitionString"])
    choices = definition["States"]["RouteService"]["Choices"]
    routes = {c["StringEquals"]: c["Next"] for c in choices if c["Variable"] == "$.ServiceName"}
    assert routes == {"inventory": "Configure inventory", "orders": "Configure orders"}
    timeouts = {name: definition["States"][state]["Result"]["TimeoutSeconds"] for name, state in routes.items()}
    assert timeouts == {"inventory": 10, "orders": 3}
    assert machine["Properties"]["StateMachineType"] == "EXPRESS"
    # ... and the breaker's functions ship the package's Lambda code, found inside the wheel
    handlers = {
        r["Properties"]["Handler"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"].startswith("sfn_breaker.")
    }
    assert handlers == {
        "sfn_breaker.lambdas.record_failure.handler",
        "sfn_breaker.lambdas.claim_probe.handler",
        "sfn_breaker.lambdas.stream_mirror.handler",
    }
    manifest = json.loads((out / "Orders.assets.json").read_text())
    shipped = {
        str(file.relative_to(out / asset["source"]["path"]))
        for asset in manifest["files"].values()
        if asset["source"].get("packaging") == "zip"
        for file in (out / asset["source"]["path"]).rglob("*.py")
    }
    assert "sfn_breaker/lambdas/record_failure.py" in shipped
    assert {path.split("/")[1] for path in shipped if path.count("/") > 1} == {"core", "lambdas"}
    assert "sfn_breaker/lambdas/demo_service.py" not in shipped


def test_breaker_help_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    output = run([installed / "breaker", "--help"], cwd=tmp_path, env=outside_env())

    assert "Call services through the serverless circuit breaker" in output
    for command in ("invoke", "status", "open", "close", "local", "demo"):
        assert command in output


@pytest.fixture(scope="module")
def installed_local(installed: Path, wheel: Path) -> Path:
    """The same environment with the local extra added (the emulator: moto, Powertools, matplotlib)."""
    run([installed / "python", "-m", "pip", "install", "--quiet", f"{wheel}[local]"], cwd=installed)
    return installed


def test_breaker_local_up_runs_the_packaged_demo_app_from_an_empty_folder(
    installed_local: Path, tmp_path: Path
) -> None:
    env = {**outside_env(), "BREAKER_STATE_DIR": str(tmp_path / "state")}
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(variable, None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    breaker = installed_local / "breaker"
    folder = tmp_path / "empty"
    folder.mkdir()

    up = run([breaker, "local", "up"], cwd=folder, env=env)
    try:
        answer = run([breaker, "invoke", "payment", "--payload", '{"mode": "ok", "order": 7}'], cwd=folder, env=env)
        status = run([breaker, "status", "payment", "--json"], cwd=folder, env=env)
    finally:
        down = run([breaker, "local", "down"], cwd=folder, env=env)

    assert "Local emulator running at http://127.0.0.1:" in up
    assert json.loads(answer) == {"status": "paid", "service": "payment", "echo": {"mode": "ok", "order": 7}}
    assert json.loads(status)["state"] == "closed"
    assert "stopped" in down
    assert sorted(p.name for p in folder.iterdir()) == []  # nothing written into the user's folder
