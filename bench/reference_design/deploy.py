"""The reference design in the embedded emulator: its table, its two functions and its workflow.

The functions run in this process through the emulator's ``LambdaRuntime`` (stand-ins for
their names), as the project's own handlers do; the workflow is the published definition with
its ARNs substituted and the shared timeout in place of its 12 s.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.reference_design.functions import TABLE_NAME, get_circuit_status, update_circuit_status

DEFINITION_FILE = Path(__file__).with_name("circuitbreaker.asl.json")
STATE_MACHINE_NAME = "CircuitBreaker-StepFunction"
GET_FUNCTION = "GetCircuitStatus"
UPDATE_FUNCTION = "UpdateCircuitStatus"
FUNCTION_MEMORY_MB = 256  # its SAM template
PUBLISHED_TASK_TIMEOUT_SECONDS = 12


@dataclass(frozen=True)
class ReferenceDesign:
    state_machine_arn: str
    table_name: str
    get_function: str
    update_function: str


def definition(get_arn: str, update_arn: str, timeout_seconds: int) -> dict[str, Any]:
    """The published definition, ARNs substituted, ``Execute Lambda`` timing out after ``timeout_seconds``."""
    text = DEFINITION_FILE.read_text()
    text = text.replace("${GetCircuitStatusFunctionArn}", get_arn).replace(
        "${UpdateCircuitStatusFunctionArn}", update_arn
    )
    parsed: dict[str, Any] = json.loads(text)
    task = parsed["States"]["Execute Lambda"]
    assert task["TimeoutSeconds"] == PUBLISHED_TASK_TIMEOUT_SECONDS, "the published definition changed"
    task["TimeoutSeconds"] = timeout_seconds
    return parsed


def deploy(session: Any, runtime: Any, *, timeout_seconds: int, open_seconds: int) -> ReferenceDesign:
    """Create the reference design in the emulator that ``session`` reaches in-process."""
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE_NAME,
        KeySchema=[
            {"AttributeName": "ServiceName", "KeyType": "HASH"},
            {"AttributeName": "ExpireTimeStamp", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "ServiceName", "AttributeType": "S"},
            {"AttributeName": "ExpireTimeStamp", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=TABLE_NAME, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ExpireTimeStamp"}
    )
    iam = session.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="ReferenceDesignRole", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    lambdas = session.client("lambda")
    arns = {}
    for name in (GET_FUNCTION, UPDATE_FUNCTION):
        arns[name] = lambdas.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="functions.handler",
            Code={"ZipFile": _placeholder_zip()},
            MemorySize=FUNCTION_MEMORY_MB,
            Timeout=30,
        )["FunctionArn"]

    shared = session.client("dynamodb")  # a static client, as the .NET code keeps one

    def client() -> Any:
        return shared

    runtime.stand_in(GET_FUNCTION, get_circuit_status(client))
    runtime.stand_in(UPDATE_FUNCTION, update_circuit_status(client, open_seconds=open_seconds))
    machine = session.client("stepfunctions").create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=json.dumps(definition(arns[GET_FUNCTION], arns[UPDATE_FUNCTION], timeout_seconds)),
        roleArn=role,
        type="STANDARD",
    )
    return ReferenceDesign(machine["stateMachineArn"], TABLE_NAME, GET_FUNCTION, UPDATE_FUNCTION)


def _placeholder_zip() -> bytes:
    """moto wants code; what runs is the stand-in registered with the runtime."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("functions.py", "def handler(event, context):\n    raise NotImplementedError\n")
    return buffer.getvalue()
