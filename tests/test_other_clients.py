"""Other AWS clients against the emulator, configured exactly as ``breaker local up`` prints and
the README shows: the real AWS CLI, boto3 in a process of its own, and the real AWS SDK for
JavaScript v3 (from npm, like the CDK CLI). Each starts a sync execution, reads the stack's
outputs and reads the table, from outside the emulator's process, as a user's tool would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sfn_breaker.cli.local import client_instructions
from sfn_breaker.contract import MAX_INPUT_BYTES
from sfn_breaker.local.breaker import LocalBreaker
from tests.local_fixtures import NO_AWS_ENV, service_calls

REPOSITORY = Path(__file__).resolve().parent.parent
AWS_CLI = Path(sys.executable).with_name("aws")  # the dev extra's pinned awscli
JS_CLIENT = REPOSITORY / "tests" / "js" / "emulator_client.mjs"
TEMPLATE_OUTPUTS = ["DemoServiceFunctionName", "StateMachineArn", "TableName"]
OK_INPUT = json.dumps({"ServiceName": "payment", "Payload": {"mode": "ok", "order": 3}})


def printed_variables(local: LocalBreaker) -> dict[str, str]:
    """The environment variables that ``breaker local up`` tells users to export."""
    text = client_instructions(local.endpoint_url, local.region)
    return dict(re.findall(r"\b(AWS_[A-Z_]+)=(\S+)", text))


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any AWS configuration, plus ``variables``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({key: value for key, value in NO_AWS_ENV.items() if value is not None})
    env.update(variables)
    return env


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPOSITORY)


def aws(*args: str, env: dict[str, str]) -> Any:
    result = run([str(AWS_CLI), *args, "--output", "json"], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


# --------------------------------------------------------------------------- the AWS CLI


def test_the_aws_cli_with_what_local_up_prints(local: LocalBreaker) -> None:
    env = clean_environment(**printed_variables(local))

    stacks = aws("cloudformation", "describe-stacks", "--stack-name", "CircuitBreaker", env=env)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0]["Outputs"]}
    execution = aws(
        "stepfunctions",
        "start-sync-execution",
        "--state-machine-arn",
        outputs["StateMachineArn"],
        "--input",
        OK_INPUT,
        env=env,
    )
    aws(
        "dynamodb",
        "put-item",
        "--table-name",
        outputs["TableName"],
        "--item",
        '{"ServiceName": {"S": "payment"}, "Forced": {"S": "CLOSED"}}',
        env=env,
    )
    scanned = aws("dynamodb", "scan", "--table-name", outputs["TableName"], env=env)

    assert sorted(outputs) == TEMPLATE_OUTPUTS  # the template's outputs, none of the emulator's own
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["echo"] == {"mode": "ok", "order": 3}
    assert [item["ServiceName"]["S"] for item in scanned["Items"]] == ["payment"]


def test_the_aws_cli_finds_the_stack_whatever_region_it_is_configured_for(local: LocalBreaker) -> None:
    env = clean_environment(
        **{**printed_variables(local), "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1"}
    )

    stacks = aws("cloudformation", "describe-stacks", "--stack-name", "CircuitBreaker", env=env)

    assert stacks["Stacks"][0]["StackName"] == "CircuitBreaker"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "InvalidExecutionInput"),
        (json.dumps({"ServiceName": "payment", "Payload": {"blob": "x" * MAX_INPUT_BYTES}}), "ValidationException"),
    ],
)
def test_the_aws_cli_gets_aws_errors_for_input_aws_refuses(
    local: LocalBreaker, tmp_path: Path, body: str, code: str
) -> None:
    env = clean_environment(**printed_variables(local))
    request = tmp_path / "input.json"
    request.write_text(body)
    executions, calls = local.sync_executions, service_calls(local)

    result = run(
        [
            str(AWS_CLI),
            "stepfunctions",
            "start-sync-execution",
            "--state-machine-arn",
            local.stack.state_machine_arn,
            "--input",
            f"file://{request}",
        ],
        env,
    )

    assert result.returncode == 255  # AWS CLI v1: the service answered with an error
    assert f"An error occurred ({code}) when calling the StartSyncExecution operation" in result.stderr
    assert (local.sync_executions, service_calls(local)) == (executions, calls)  # nothing ran


# --------------------------------------------------------------------------- boto3, in a process of its own


def test_boto3_with_what_local_up_prints(local: LocalBreaker) -> None:
    script = f"""
import json, boto3
stack = boto3.client("cloudformation").describe_stacks(StackName="CircuitBreaker")["Stacks"][0]
outputs = {{o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}}
execution = boto3.client("stepfunctions").start_sync_execution(
    stateMachineArn=outputs["StateMachineArn"], input={OK_INPUT!r})
items = boto3.client("dynamodb").scan(TableName=outputs["TableName"])["Items"]
print(json.dumps({{"outputs": sorted(outputs), "status": execution["status"], "items": len(items)}}))
"""
    result = run([sys.executable, "-c", script], clean_environment(**printed_variables(local)))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"outputs": TEMPLATE_OUTPUTS, "status": "SUCCEEDED", "items": 0}


# --------------------------------------------------------------------------- the AWS SDK for JavaScript v3


def node() -> str:
    found = shutil.which("node")
    assert found is not None, "Node.js is needed (make setup installs the npm packages)"
    assert (REPOSITORY / "node_modules" / "@aws-sdk" / "client-sfn").is_dir(), "run `make setup` (npm install)"
    return found


@pytest.mark.parametrize("configured", ["in code", "from the environment"])
def test_the_javascript_sdk_with_what_local_up_prints(local: LocalBreaker, configured: str) -> None:
    variables = printed_variables(local)
    endpoint = local.endpoint_url if configured == "in code" else "env"
    env = clean_environment(**variables)
    env.pop("AWS_DISABLE_HOST_PREFIX_INJECTION")  # the JavaScript SDK does not read it: disableHostPrefix does

    result = run([node(), str(JS_CLIENT), endpoint, variables["AWS_REGION"], "CircuitBreaker", OK_INPUT], env)

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["outputKeys"] == TEMPLATE_OUTPUTS
    assert answer["status"] == "SUCCEEDED", answer
    assert json.loads(answer["output"])["echo"] == {"mode": "ok", "order": 3}
    assert answer["items"] == []
    assert answer["refused"]["name"] == "InvalidExecutionInput"
    assert answer["refused"]["status"] == 400
