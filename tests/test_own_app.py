"""A user's own CDK app on the emulator: ``breaker local up --app/--assembly/--stack`` and
``LocalBreaker(app=..., assembly=...)``, and the one-line errors for what the app gets wrong.

The app is the quick start's (docs/quickstart.md), synthesized once for the module with this
environment's Python; the error cases change a copy of its assembly, or hand-write a small one.
The quick start as a whole, from the wheel and the CDK CLI, is run by ``tests/test_packaging.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sfn_breaker.cli.app import EXIT_USAGE, app
from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.assembly import Assembly, choose_stack
from tests.local_fixtures import NO_AWS_ENV, quiet_functions
from tests.test_packaging import quickstart_files

runner = CliRunner()


@pytest.fixture(scope="module")
def user_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick start's app folder, with its cloud assembly synthesized into cdk.out."""
    folder = tmp_path_factory.mktemp("orders")
    for path, text in quickstart_files().items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    env = {**os.environ, "CDK_OUTDIR": str(folder / "cdk.out")}
    # As the CDK CLI runs an app: with version reporting, which adds AWS::CDK::Metadata
    env["CDK_CONTEXT_JSON"] = json.dumps({"aws:cdk:version-reporting": True})
    subprocess.run([sys.executable, "app.py"], cwd=folder, env=env, check=True, capture_output=True)
    return folder


@pytest.fixture
def assembly_copy(user_app: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cdk.out"
    shutil.copytree(user_app / "cdk.out", copy)
    return copy


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"BREAKER_STATE_DIR": str(tmp_path / "state")}
    from sfn_breaker.local.background import stop_background

    stop_background(tmp_path / "state" / "local.json")


def local_up(*args: str, env: dict[str, str]) -> Result:
    return runner.invoke(app, ["local", "up", *args], env=env)


def assert_one_line_usage_error(result: Result, *fragments: str) -> None:
    output = result.output.strip()
    assert result.exit_code == EXIT_USAGE, output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("error: ")
    for fragment in fragments:
        assert fragment in output


def write_assembly(directory: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    """A minimal cloud assembly: a manifest naming ``stacks`` and their templates."""
    directory.mkdir(parents=True)
    artifacts = {
        name: {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{name}.template.json"}}
        for name in stacks
    }
    (directory / "manifest.json").write_text(json.dumps({"version": "40.0.0", "artifacts": artifacts}))
    for name, template in stacks.items():
        (directory / f"{name}.template.json").write_text(json.dumps(template))
    return directory


PLAIN_FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Properties": {"Handler": "index.handler", "Runtime": "python3.13", "Code": {"ZipFile": "x"}, "Role": "r"},
}


# -- the user's stack runs -------------------------------------------------------------------------


def test_a_users_assembly_deploys_and_its_own_services_answer(user_app: Path) -> None:
    # GIVEN the quick start's synthesized app (it has AWS::CDK::Metadata, which moto listed
    # without a LogicalResourceId: the KeyError)
    assembly = Assembly(user_app / "cdk.out", "Orders")
    assert choose_stack(user_app / "cdk.out") == assembly
    assert any(r["Type"] == "AWS::CDK::Metadata" for r in assembly.template["Resources"].values())

    # WHEN it runs on the emulator
    with quiet_functions(), LocalBreaker(assembly=assembly) as local:
        client = local.client()
        orders = client.call("orders", {"id": 7})
        inventory = client.call("inventory", {"item": "tea"})
        calls = [invocation.function_name for invocation in local.runtime.invocations]

    # THEN the user's own handlers answered, each once
    assert orders == {"order": 7, "status": "accepted"}
    assert inventory == {"item": "tea", "stock": 3}
    assert sum("OrdersFunction" in name for name in calls) == 1
    assert sum("InventoryFunction" in name for name in calls) == 1


def test_two_inline_functions_each_run_their_own_index_module(tmp_path: Path) -> None:
    # GIVEN an app whose two services are inline code, both index.handler
    (tmp_path / "app.py").write_text(
        """\
import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from sfn_breaker.cdk import CircuitBreaker, ProtectedService

app = cdk.App()
stack = cdk.Stack(app, "Inline")
functions = {
    name: lambda_.Function(
        stack, name.title(), runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
        code=lambda_.Code.from_inline(f"def handler(event, context):\\n    return {{'from': '{name}'}}"),
    )
    for name in ("orders", "inventory")
}
breaker = CircuitBreaker(stack, "Breaker", services={n: ProtectedService(function=f) for n, f in functions.items()})
cdk.CfnOutput(stack, "StateMachineArn", value=breaker.state_machine.state_machine_arn)
cdk.CfnOutput(stack, "TableName", value=breaker.table.table_name)
app.synth()
"""
    )
    # WHEN LocalBreaker synthesizes and runs it
    with quiet_functions(), LocalBreaker(app=f"{sys.executable} app.py", app_dir=tmp_path) as local:
        client = local.client()
        answers = {name: client.call(name, {}) for name in ("orders", "inventory")}

    # THEN each service ran its own code
    assert answers == {"orders": {"from": "orders"}, "inventory": {"from": "inventory"}}


def test_local_up_in_the_apps_folder_runs_its_cdk_json_app(
    user_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: dict[str, str]
) -> None:
    # GIVEN the quick start's folder, whose cdk.json runs its app (with this environment's Python)
    folder = tmp_path / "orders"
    shutil.copytree(user_app, folder, ignore=shutil.ignore_patterns("cdk.out"))
    cdk_json = json.loads((folder / "cdk.json").read_text())
    (folder / "cdk.json").write_text(json.dumps({**cdk_json, "app": f"{sys.executable} app.py"}))
    monkeypatch.chdir(folder)

    # WHEN `breaker local up` is run there with no --app, --assembly or --stack
    up = local_up(env=state_dir)
    answer = runner.invoke(app, ["invoke", "orders", "-p", '{"id": 7}'], env={**state_dir, **NO_AWS_ENV})

    # THEN it ran the user's stack (as `cdk synth` would, into ./cdk.out), not the demo
    assert up.exit_code == 0, up.output
    assert f"It runs stack Orders, from app `{sys.executable} app.py` in {folder.resolve()}." in up.stdout
    assert (folder / "cdk.out" / "Orders.template.json").is_file()
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout) == {"order": 7, "status": "accepted"}


# -- what the app gets wrong: one line, exit 2 ------------------------------------------------------


def test_no_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: dict[str, str]) -> None:
    monkeypatch.chdir(tmp_path)

    assert_one_line_usage_error(local_up("--stack", "Orders", env=state_dir), "no CDK app", "--app")


def test_an_app_that_fails_to_synthesize(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: dict[str, str]
) -> None:
    (tmp_path / "app.py").write_text("raise RuntimeError('ORDERS_TABLE is not set')\n")
    monkeypatch.chdir(tmp_path)

    result = local_up("--app", f"{sys.executable} app.py", env=state_dir)

    assert_one_line_usage_error(result, "failed to synthesize (exit 1)", "RuntimeError: ORDERS_TABLE is not set")


def test_a_stack_without_a_circuit_breaker(tmp_path: Path, state_dir: dict[str, str]) -> None:
    assembly = write_assembly(tmp_path / "cdk.out", {"Plain": {"Resources": {"Fn": PLAIN_FUNCTION}}})

    result = local_up("--assembly", str(assembly), env=state_dir)

    assert_one_line_usage_error(result, "stack Plain has no CircuitBreaker construct")


def test_several_stacks_and_no_stack_chosen(tmp_path: Path, state_dir: dict[str, str]) -> None:
    template = {"Resources": {"Fn": PLAIN_FUNCTION}}
    assembly = write_assembly(tmp_path / "cdk.out", {"Orders": template, "Billing": template})

    result = local_up("--assembly", str(assembly), env=state_dir)

    assert_one_line_usage_error(result, "several stacks (Billing, Orders)", "--stack")


def test_a_stack_that_is_not_in_the_app(assembly_copy: Path, state_dir: dict[str, str]) -> None:
    result = local_up("--assembly", str(assembly_copy), "--stack", "Billing", env=state_dir)

    assert_one_line_usage_error(result, "no stack 'Billing'", "Orders")


def _orders_asset(assembly: Path) -> Path:
    (orders,) = [path for path in assembly.glob("asset.*/orders.py")]
    return orders


def test_a_handler_that_cannot_be_imported(assembly_copy: Path, state_dir: dict[str, str]) -> None:
    # GIVEN the orders service imports a module its asset does not hold
    orders = _orders_asset(assembly_copy)
    orders.write_text("import orders_db\n\n" + orders.read_text())

    result = local_up("--assembly", str(assembly_copy), "--stack", "Orders", env=state_dir)

    assert_one_line_usage_error(
        result, "function OrdersFunction", "'orders.handler'", "ModuleNotFoundError: No module named 'orders_db'"
    )


def test_a_service_that_is_not_python(assembly_copy: Path, state_dir: dict[str, str]) -> None:
    # GIVEN the orders service runs on Node.js
    template_file = assembly_copy / "Orders.template.json"
    template = json.loads(template_file.read_text())
    (logical_id,) = [
        k
        for k in template["Resources"]
        if k.startswith("OrdersFunction") and template["Resources"][k]["Type"] == "AWS::Lambda::Function"
    ]
    template["Resources"][logical_id]["Properties"]["Runtime"] = "nodejs20.x"
    template_file.write_text(json.dumps(template))

    result = local_up("--assembly", str(assembly_copy), env=state_dir)

    assert_one_line_usage_error(result, f"function {logical_id}", "nodejs20.x", "only Python handlers run in-process")


def test_a_handler_that_names_a_function_its_file_lacks(assembly_copy: Path) -> None:
    # GIVEN the orders function's handler is misspelt in the template
    template_file = assembly_copy / "Orders.template.json"
    template = json.loads(template_file.read_text())
    (logical_id,) = [
        k
        for k, r in template["Resources"].items()
        if k.startswith("OrdersFunction") and r["Type"] == "AWS::Lambda::Function"
    ]
    template["Resources"][logical_id]["Properties"]["Handler"] = "orders.handlr"
    template_file.write_text(json.dumps(template))
    from sfn_breaker.local.assembly import AppError

    # WHEN it runs on the emulator
    with pytest.raises(AppError) as raised:
        LocalBreaker(assembly=Assembly(assembly_copy, "Orders")).start()

    # THEN the error names the handler and the file as the user wrote them, not the module's private name
    assert str(raised.value) == (
        f"function {logical_id}: its handler 'orders.handlr' cannot be found: orders.py has no function 'handlr'"
    )


def test_local_breaker_names_the_same_errors(assembly_copy: Path) -> None:
    from sfn_breaker.local.assembly import AppError

    orders = _orders_asset(assembly_copy)
    orders.write_text("import orders_db\n")

    with pytest.raises(AppError, match=r"'orders\.handler' cannot be imported"):
        LocalBreaker(assembly=Assembly(assembly_copy, "Orders")).start()


# -- the pytest plugin -----------------------------------------------------------------------------


def test_the_pytest_plugin_imports_nothing_heavy() -> None:
    code = "import sys, sfn_breaker.pytest_plugin; print(sorted(m for m in ('moto', 'aws_cdk', 'boto3') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert loaded.strip() == "[]"


def test_the_plugins_fixtures_name_the_extra_they_need(monkeypatch: pytest.MonkeyPatch) -> None:
    from sfn_breaker.pytest_plugin import require_local_extra

    monkeypatch.setitem(sys.modules, "moto", None)  # as if the local extra were not installed

    with pytest.raises(
        pytest.UsageError,
        match=r'^the breaker_emulator fixture needs the local extra \(moto is not installed\): pip install "sfn-breaker\[local\]"$',
    ):
        require_local_extra()


# -- the Node.js the CDK runs on: 22 or newer, checked before any synth ------------------------------

NODE_REFUSAL = (
    "the CDK needs Node.js 22 or newer, and `node` on PATH ({node}) is v20.11.0: install Node.js 22 or newer "
    "(https://nodejs.org), or run `npm install node@22` and put node_modules/node/bin first on PATH"
)


@pytest.fixture
def node_20(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``node`` first on PATH that says it is Node 20 (and leaves a mark if it is ever run for more)."""
    node = tmp_path / "old-node" / "node"
    node.parent.mkdir()
    node.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo v20.11.0; else touch "$0.ran"; fi\n')
    node.chmod(0o755)
    monkeypatch.setenv("PATH", f"{node.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("JSII_NODE", raising=False)
    return node


@pytest.fixture
def marked_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with cdk.json and an app that leaves a mark when it runs (it is never meant to)."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "app.py").write_text("open('synthesized', 'w').close()\n")
    (folder / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py"}))
    monkeypatch.chdir(folder)
    return folder


def test_the_suite_runs_the_cdk_on_a_supported_node() -> None:
    """Every synth in these tests checks the node on PATH: the suite runs with Node 22+ first (make test)."""
    from sfn_breaker.local.assembly import require_node

    assert int(require_node().lstrip("v").split(".")[0]) >= 22


@pytest.mark.parametrize(
    "args", [[], ["--app", f"{sys.executable} app.py"], ["--demo"]], ids=["cdk.json", "app", "demo"]
)
def test_local_up_refuses_node_20_in_one_line_before_any_synth(
    node_20: Path, marked_app: Path, state_dir: dict[str, str], args: list[str]
) -> None:
    result = local_up(*args, env=state_dir)

    assert_one_line_usage_error(result)
    assert result.output.strip() == f"error: {NODE_REFUSAL.format(node=node_20)}"
    assert not (marked_app / "synthesized").exists()
    assert not (marked_app / "cdk.out").exists()
    assert not Path(state_dir["BREAKER_STATE_DIR"], "local.json").exists()  # nothing was started


def test_local_up_of_an_assembly_needs_no_node(node_20: Path, tmp_path: Path, state_dir: dict[str, str]) -> None:
    assembly = write_assembly(tmp_path / "cdk.out", {"Plain": {"Resources": {"Fn": PLAIN_FUNCTION}}})

    result = local_up("--assembly", str(assembly), env=state_dir)

    assert_one_line_usage_error(result, "stack Plain has no CircuitBreaker construct")  # not the Node refusal


def test_breaker_demo_refuses_node_20_in_one_line(node_20: Path, marked_app: Path) -> None:
    result = runner.invoke(app, ["demo", "--where", "local", "--no-chart", "--out-dir", str(marked_app / "out")])

    assert_one_line_usage_error(result)
    assert result.output.strip() == f"error: {NODE_REFUSAL.format(node=node_20)}"
    assert not Path(f"{node_20}.ran").exists()


def test_local_breaker_refuses_node_20_before_any_synth(node_20: Path, marked_app: Path) -> None:
    from sfn_breaker.local.assembly import NodeVersionError

    for local in (LocalBreaker(app=f"{sys.executable} app.py", app_dir=marked_app), LocalBreaker()):
        with pytest.raises(NodeVersionError) as raised:
            local.start()
        assert str(raised.value) == NODE_REFUSAL.format(node=node_20)
    assert not (marked_app / "synthesized").exists()
    assert not Path(f"{node_20}.ran").exists()


def test_jsii_node_is_the_node_checked(node_20: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sfn_breaker.local.assembly import NodeVersionError, require_node

    monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])  # Node 22 first again
    require_node()
    monkeypatch.setenv("JSII_NODE", str(node_20))

    with pytest.raises(
        NodeVersionError, match=rf"^the CDK needs Node.js 22 or newer, and JSII_NODE \({node_20}\) is v20"
    ):
        require_node()


def test_the_pytest_plugin_refuses_node_20_in_one_line(node_20: Path, marked_app: Path) -> None:
    (marked_app / "test_orders.py").write_text("def test_it(breaker_circuits):\n    pass\n")

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_orders.py"],
        cwd=marked_app,
        capture_output=True,
        text=True,
        check=False,
    )

    # THEN the test errors with the refusal as its one line: no frames, no exception it replaced
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"breaker_emulator: {NODE_REFUSAL.format(node=node_20)}" in output.splitlines()
    assert "Traceback" not in output and "During handling" not in output and "def breaker_emulator" not in output
    assert not (marked_app / "synthesized").exists()
