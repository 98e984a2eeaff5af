"""The construct on its own: in a bare ``Stack`` of a bare ``App``, with two services and no CDK
context (nothing of the demo stack or ``cdk.json``), as a platform team would use it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from sfn_breaker.cdk import BreakerSettings, CircuitBreaker, ProtectedService, SettingsError
from sfn_breaker.cdk.assets import function_code


def bare_breaker(**props: Any) -> tuple[cdk.Stack, CircuitBreaker]:
    stack = cdk.Stack(cdk.App(), "Bare")
    functions = {
        name: lambda_.Function(
            stack,
            name.title(),
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return event"),
        )
        for name in ("orders", "inventory")
    }
    services = {"orders": ProtectedService(function=functions["orders"])}
    services["inventory"] = ProtectedService(function=functions["inventory"], settings={"maxAttempts": 1})
    return stack, CircuitBreaker(stack, "Breaker", services=services, **props)


@pytest.fixture(scope="module")
def bare() -> tuple[Template, dict[str, Any]]:
    stack, _ = bare_breaker(settings=BreakerSettings(open_duration_seconds=45))
    template = Template.from_stack(stack)
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    return template, machine["Properties"]


def test_the_workflow_routes_both_services_with_their_own_settings(bare: tuple[Template, dict[str, Any]]) -> None:
    _, machine = bare
    definition = json.loads(machine["DefinitionString"])

    routes = {
        c["StringEquals"]: c["Next"]
        for c in definition["States"]["RouteService"]["Choices"]
        if c["Variable"] == "$.ServiceName"
    }
    assert routes == {"inventory": "Configure inventory", "orders": "Configure orders"}
    configs = {name: definition["States"][state]["Result"] for name, state in routes.items()}
    assert {name: (c["Retries"], c["Policy"]["OpenDurationSeconds"]) for name, c in configs.items()} == {
        "inventory": (0, 45),
        "orders": (2, 45),
    }
    assert machine["StateMachineType"] == "EXPRESS"


def test_each_service_enters_through_its_own_placeholder(bare: tuple[Template, dict[str, Any]]) -> None:
    _, machine = bare
    definition = json.loads(machine["DefinitionString"])
    substitutions = machine["DefinitionSubstitutions"]

    arns = {
        name: definition["States"][f"Configure {name}"]["Result"]["FunctionArn"] for name in ("orders", "inventory")
    }
    assert arns == {"inventory": "${ServiceFunctionArn0}", "orders": "${ServiceFunctionArn1}"}
    targets = {key: substitutions[key]["Fn::GetAtt"] for key in ("ServiceFunctionArn0", "ServiceFunctionArn1")}
    assert [(target[0].rstrip("0123456789ABCDEF"), target[1]) for target in targets.values()] == [
        ("Inventory", "Arn"),
        ("Orders", "Arn"),
    ]
    assert substitutions["RegisteredServices"] == "inventory, orders"


def test_the_workflow_may_invoke_exactly_the_two_services_and_the_breaker_functions(
    bare: tuple[Template, dict[str, Any]],
) -> None:
    template, machine = bare
    role = machine["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "lambda:InvokeFunction"
    ]

    (invoke,) = statements
    invoked = sorted(resource["Fn::GetAtt"][0] for resource in invoke["Resource"])
    assert [name.rstrip("0123456789ABCDEF") for name in invoked] == [
        "BreakerFunctionsClaimProbe",
        "BreakerFunctionsRecordFailure",
        "Inventory",
        "Orders",
    ]


def test_the_table_keeps_its_data_by_default(bare: tuple[Template, dict[str, Any]]) -> None:
    template, _ = bare
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {"TimeToLiveSpecification": {"AttributeName": "ExpiryTimeStamp", "Enabled": True}}
            ),
        },
    )


def test_a_service_setting_out_of_bounds_fails_synth_with_its_name() -> None:
    with pytest.raises(SettingsError, match="max_attempts must be from 1 to 10"):
        bare_breaker(service_overrides={"orders": {"maxAttempts": 11}})


def test_the_functions_run_from_their_asset_alone() -> None:
    """The Lambda asset holds the package's __init__, core and lambdas: enough to import every
    handler with nothing else of the package on the path (only the Lambda runtime's boto3 and the
    Powertools layer beside it)."""
    asset = function_code()
    site = next(p for p in sys.path if p.endswith("site-packages"))
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import sfn_breaker.lambdas.record_failure, sfn_breaker.lambdas.claim_probe\n"
        "import sfn_breaker.lambdas.stream_mirror, sfn_breaker\n"
        "assert sfn_breaker.__file__.startswith(sys.argv[1]), sfn_breaker.__file__\n"
        "print(sorted(m for m in sys.modules if m.startswith('sfn_breaker')))\n"
    )
    # -S: no site-packages processing, so the editable install of the checkout is not found.
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(asset), site],
        capture_output=True,
        text=True,
        check=False,
        env={"TABLE_NAME": "t", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    assert "sfn_breaker.client" not in result.stdout
    shipped = sorted(str(p.relative_to(asset)) for p in Path(asset).rglob("*.py"))
    assert shipped == [
        "sfn_breaker/__init__.py",
        "sfn_breaker/core/__init__.py",
        "sfn_breaker/core/model.py",
        "sfn_breaker/core/reading.py",
        "sfn_breaker/core/store.py",
        "sfn_breaker/core/transitions.py",
        "sfn_breaker/lambdas/__init__.py",
        "sfn_breaker/lambdas/claim_probe.py",
        "sfn_breaker/lambdas/observability.py",
        "sfn_breaker/lambdas/record_failure.py",
        "sfn_breaker/lambdas/stream_mirror.py",
        "sfn_breaker/lambdas/table.py",
    ]
