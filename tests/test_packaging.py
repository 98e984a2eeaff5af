"""What users install is the wheel: build it, install it into a fresh virtual environment, and use
it from an empty folder that has nothing of this repository in it.

The app built there is the quick start's (docs/quickstart.md), its files and commands taken from
it verbatim: an app that protects two services of its own with the construct, synthesized with
the CDK CLI, run with ``breaker local up --app`` and tested with the quick start's pytest example.
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

QUICKSTART = REPOSITORY / "docs" / "quickstart.md"
#: A fenced block that is a file of the quick start names it: ```python title="app.py"
TITLED_BLOCK = re.compile(r'```\w+ title="(?P<path>[^"]+)"\n(?P<text>.*?)```', flags=re.DOTALL)
BASH_BLOCK = re.compile(r"```bash\n(?P<text>.*?)```", flags=re.DOTALL)
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


def quickstart_files() -> dict[str, str]:
    """The files of the quick start's app, by path, exactly as docs/quickstart.md shows them."""
    return {m["path"]: m["text"] for m in TITLED_BLOCK.finditer(QUICKSTART.read_text())}


def quickstart_commands() -> list[str]:
    """The quick start's shell commands, one a line, without their comments."""
    lines = []
    for block in BASH_BLOCK.finditer(QUICKSTART.read_text()):
        for line in block["text"].splitlines():
            command = line.split("  #")[0].strip()
            if command:
                lines.append(command)
    return lines


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


def quickstart_env(bin_dir: Path, tmp_path: Path) -> dict[str, str]:
    """A shell with the quick start's virtual environment active, no AWS account and a state
    folder of its own (so it never meets another emulator). Nothing silences a warning: the
    Node.js on PATH is the user's (``make test`` puts the Node 22 of ``make setup`` first)."""
    env = {**outside_env(), "BREAKER_STATE_DIR": str(tmp_path / "state"), "VIRTUAL_ENV": str(bin_dir.parent)}
    del env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"]
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(variable, None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    return env


def shell(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_the_quick_start_runs_as_written_from_an_empty_folder(
    installed_local: Path, wheel: Path, tmp_path: Path
) -> None:
    commands = quickstart_commands()
    # GIVEN the quick start's installation: the wheel stands for the package index's sfn-breaker
    pip = 'pip install "sfn-breaker[cdk,local]" pytest'
    assert pip in commands
    run([installed_local / "python", "-m", "pip", "install", "--quiet", f"{wheel}[cdk,local]", "pytest"], cwd=tmp_path)
    # ... and its CDK CLI: the very package and range this repository's package.json pins, so the
    # repository's own `npm install` (node_modules/.bin/cdk) stands in for the quick start's
    pinned = json.loads((REPOSITORY / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert f"npm install --no-save aws-cdk@{pinned}" in commands
    cdk = REPOSITORY / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "run `make setup` (npm install) first"

    # ... and an empty folder with the quick start's files, verbatim
    folder = tmp_path / "orders"
    folder.mkdir()
    files = quickstart_files()
    assert sorted(files) == [
        ".gitignore",
        "app.py",
        "cdk.json",
        "orders_stack.py",
        "services/inventory.py",
        "services/orders.py",
        "tests/test_orders.py",
    ]
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    env = quickstart_env(installed_local, tmp_path)

    # ... and the Node.js the quick start asks for (22+), first on PATH
    node = shell("node --version", cwd=folder, env=env).stdout.strip()
    assert int(node.lstrip("v").split(".")[0]) >= 22, f"node {node} on PATH: run the tests with `make test`"

    # WHEN it is synthesized with the CDK CLI, as the quick start says
    assert "npx cdk synth --quiet" in commands
    synth = shell(f"{cdk} synth --quiet", cwd=folder, env=env)

    # THEN it synthesizes with no output at all (no warning from the construct, no unconfigured
    # feature flag, no Node.js banner), and the workflow routes both services to their own code
    assert synth.returncode == 0, synth.stderr
    assert (synth.stdout, synth.stderr) == ("", "")
    template = json.loads((folder / "cdk.out" / "Orders.template.json").read_text())
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = json.loads(machine["Properties"]["DefinitionString"])
    choices = definition["States"]["RouteService"]["Choices"]
    routes = {c["StringEquals"]: c["Next"] for c in choices if c["Variable"] == "$.ServiceName"}
    assert routes == {"inventory": "Configure inventory", "orders": "Configure orders"}
    timeouts = {name: definition["States"][state]["Result"]["TimeoutSeconds"] for name, state in routes.items()}
    assert timeouts == {"inventory": 10, "orders": 3}
    handlers = sorted(
        r["Properties"]["Handler"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    )
    assert handlers == [
        "inventory.handler",
        "orders.handler",
        "sfn_breaker.lambdas.claim_probe.handler",
        "sfn_breaker.lambdas.record_failure.handler",
        "sfn_breaker.lambdas.stream_mirror.handler",
    ]

    # ... and the breaker's functions ship the package's Lambda code, found inside the wheel
    out = folder / "cdk.out"
    manifest = json.loads((out / "Orders.assets.json").read_text())
    shipped = {
        str(file.relative_to(out / asset["source"]["path"]))
        for asset in manifest["files"].values()
        if asset["source"].get("packaging") == "zip"
        for file in (out / asset["source"]["path"]).rglob("*.py")
    }
    assert {"sfn_breaker/lambdas/record_failure.py", "orders.py", "inventory.py"} <= shipped
    assert {path.split("/")[1] for path in shipped if path.count("/") > 1} == {"core", "lambdas"}
    assert "sfn_breaker/lambdas/demo_service.py" not in shipped

    # WHEN the quick start's emulator commands run, as written
    emulator_commands = [c for c in commands if c.startswith("breaker ")]
    assert emulator_commands == [
        'breaker local up --app "python3 app.py"',
        "breaker invoke orders --payload '{\"id\": 7}'",
        "breaker status --stack-name Orders",
        "breaker local down",
    ]
    results = {}
    try:
        for command in emulator_commands[:-1]:
            results[command] = shell(command, cwd=folder, env=env)
    finally:
        down = shell(emulator_commands[-1], cwd=folder, env=env)
    for command, result in results.items():
        assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"

    # THEN the user's own orders service answered through the breaker, and both circuits are closed
    up, invoke, status = results.values()
    assert "Local emulator running at http://127.0.0.1:" in up.stdout
    assert json.loads(invoke.stdout) == {"order": 7, "status": "accepted"}
    assert re.search(r"inventory\s*│\s*closed", status.stdout) and re.search(r"orders\s*│\s*closed", status.stdout)
    assert "stopped" in down.stdout

    # WHEN the quick start's pytest example runs with the plugin the wheel registers
    assert "pytest tests" in commands
    tests = shell("pytest tests", cwd=folder, env=env)

    # THEN all of it passes
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
