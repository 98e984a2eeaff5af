"""The local emulator: the synthesized stack on moto behind a loopback endpoint, and its
``StartSyncExecution``, which moto lacks."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sfn_breaker.contract import MAX_INPUT_BYTES
from sfn_breaker.errors import EmulatorError
from sfn_breaker.local.assembly import Assembly
from sfn_breaker.local.background import start_background
from sfn_breaker.local.breaker import LocalBreaker
from sfn_breaker.local.deploy import check_deployment
from sfn_breaker.local.state import HEALTH_PATH, EmulatorState
from sfn_breaker.local.sync_api import input_refusal, sync_response
from tests.local_fixtures import DEMO_SERVICE, reset_circuits, service_calls


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state") / "local.json"


@pytest.fixture(scope="module")
def local(fast_assembly: Assembly, state_file: Path) -> Iterator[LocalBreaker]:
    with LocalBreaker(assembly=fast_assembly, state_file=state_file) as running:
        yield running


@pytest.fixture(autouse=True)
def _closed(local: LocalBreaker) -> None:
    reset_circuits(local)


@pytest.fixture
def sfn(local: LocalBreaker) -> Any:
    return local.boto3_client("stepfunctions")


def sync_call(local: LocalBreaker, sfn: Any, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"ServiceName": DEMO_SERVICE}
    if payload is not None:
        request["Payload"] = payload
    response: dict[str, Any] = sfn.start_sync_execution(
        stateMachineArn=local.stack.state_machine_arn, input=json.dumps(request), **kwargs
    )
    return response


# --------------------------------------------------------------------------- the deployment


def test_what_runs_locally_matches_the_template(local: LocalBreaker, fast_assembly: Assembly) -> None:
    assert check_deployment(fast_assembly, local.stack, local.session) == []

    described = local.boto3_client("stepfunctions").describe_state_machine(
        stateMachineArn=local.stack.state_machine_arn
    )
    assert described["type"] == "EXPRESS"
    assert "${" not in described["definition"]
    assert local.stack.outputs["TableName"] in described["definition"]


def test_a_definition_that_differs_from_the_template_is_reported(local: LocalBreaker, fast_assembly: Assembly) -> None:
    template = json.loads(json.dumps(fast_assembly.template))
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    machine["Properties"]["DefinitionSubstitutions"]["RegisteredServices"] = "payment, refunds"

    class Tampered(Assembly):
        @property
        def template(self) -> dict[str, Any]:
            return template

    problems = check_deployment(Tampered(fast_assembly.directory, fast_assembly.stack_name), local.stack, local.session)

    assert len(problems) == 1
    assert "the running definition differs from the template's" in problems[0]


def test_the_state_file_names_this_emulator(local: LocalBreaker, state_file: Path) -> None:
    state = EmulatorState.read(state_file)

    assert state is not None
    assert (state.pid, state.endpoint_url, state.stack_name) == (os.getpid(), local.endpoint_url, "CircuitBreaker")
    assert state.is_alive()
    assert not EmulatorState(**{**state.__dict__, "pid": state.pid + 1}).is_alive()


def test_the_health_endpoint_identifies_the_emulator(local: LocalBreaker) -> None:
    with urllib.request.urlopen(f"{local.endpoint_url}{HEALTH_PATH}", timeout=5) as response:
        health = json.loads(response.read())

    assert health == {"ok": True, "pid": os.getpid(), "stackName": "CircuitBreaker", "region": "us-east-1"}


# --------------------------------------------------------------------------- StartSyncExecution


def test_start_sync_execution_answers_like_aws(local: LocalBreaker, sfn: Any) -> None:
    before = local.sync_executions

    response = sync_call(local, sfn, {"mode": "ok", "order": 7}, name="order-7")

    assert response["status"] == "SUCCEEDED"
    assert json.loads(response["output"]) == {
        "status": "paid",
        "service": "payment",
        "echo": {"mode": "ok", "order": 7},
    }
    assert response["name"] == "order-7"
    assert response["stateMachineArn"] == local.stack.state_machine_arn
    assert json.loads(response["input"]) == {"ServiceName": "payment", "Payload": {"mode": "ok", "order": 7}}
    assert response["inputDetails"] == {"included": True}
    assert response["outputDetails"] == {"included": True}
    assert response["startDate"] <= response["stopDate"]
    assert response["billingDetails"]["billedMemoryUsedInMB"] == 64
    assert response["billingDetails"]["billedDurationInMilliseconds"] % 100 == 0
    assert "error" not in response and "cause" not in response
    assert local.sync_executions == before + 1
    # The execution is moto's own: its history shows the one call of the service.
    history = sfn.get_execution_history(executionArn=response["executionArn"])["events"]
    lambda_tasks = [
        e
        for e in history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
    ]
    assert len(lambda_tasks) == 1


def test_start_sync_execution_reports_a_failure_with_its_error_and_cause(local: LocalBreaker, sfn: Any) -> None:
    calls = service_calls(local)

    response = sync_call(local, sfn, {"mode": "fail", "message": "card declined"})

    assert response["status"] == "FAILED"
    assert response["error"] == "PaymentFailed"
    cause = json.loads(response["cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("PaymentFailed", "card declined")
    assert "output" not in response
    assert service_calls(local) == calls + 3  # one call and two retries


def test_each_sync_execution_gets_its_own_name(local: LocalBreaker, sfn: Any) -> None:
    first, second = sync_call(local, sfn), sync_call(local, sfn)

    assert first["status"] == second["status"] == "SUCCEEDED"
    assert first["name"] != second["name"]


def test_an_unknown_state_machine_is_aws_error(local: LocalBreaker, sfn: Any) -> None:
    with pytest.raises(ClientError) as caught:
        sfn.start_sync_execution(stateMachineArn=local.stack.state_machine_arn + "-nope", input="{}")

    assert caught.value.response["Error"]["Code"] == "StateMachineDoesNotExist"


def test_a_standard_state_machine_is_refused_as_aws_does(local: LocalBreaker, sfn: Any) -> None:
    standard = sfn.create_state_machine(
        name="standard-machine",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/any",
        type="STANDARD",
    )

    with pytest.raises(ClientError) as caught:
        sfn.start_sync_execution(stateMachineArn=standard["stateMachineArn"], input="{}")

    assert caught.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"


@pytest.mark.parametrize("operation", ["start_sync_execution", "start_execution"])
def test_input_that_is_not_json_is_aws_invalid_execution_input(local: LocalBreaker, sfn: Any, operation: str) -> None:
    executions, calls = local.sync_executions, service_calls(local)

    with pytest.raises(ClientError) as caught:
        getattr(sfn, operation)(stateMachineArn=local.stack.state_machine_arn, input="{not json")

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Code"] == "InvalidExecutionInput"
    assert caught.value.response["Error"]["Message"].startswith("Invalid State Machine Execution Input: ")
    assert (local.sync_executions, service_calls(local)) == (executions, calls)


@pytest.mark.parametrize("operation", ["start_sync_execution", "start_execution"])
def test_input_over_256_kib_is_refused_up_front_as_aws_does(local: LocalBreaker, sfn: Any, operation: str) -> None:
    too_big = json.dumps({"ServiceName": DEMO_SERVICE, "Payload": {"blob": "x" * 300_000}})
    executions, calls = local.sync_executions, service_calls(local)

    with pytest.raises(ClientError) as caught:
        getattr(sfn, operation)(stateMachineArn=local.stack.state_machine_arn, input=too_big)

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "1 validation error detected: Value at 'input' failed to satisfy constraint: "
        "Member must have length less than or equal to 262144",
    }
    assert (local.sync_executions, service_calls(local)) == (executions, calls)


def test_the_input_limit_counts_utf8_bytes_up_to_exactly_256_kib() -> None:
    def sized(size: int, char: str = "x") -> str:
        text = json.dumps({"p": ""})
        filler = (size - len(text.encode())) // len(char.encode())
        return json.dumps({"p": char * filler}, ensure_ascii=False)

    assert len(sized(MAX_INPUT_BYTES).encode()) == MAX_INPUT_BYTES
    assert input_refusal(sized(MAX_INPUT_BYTES)) is None
    assert input_refusal(sized(MAX_INPUT_BYTES + 1))[0] == "ValidationException"  # type: ignore[index]
    two_byte = sized(MAX_INPUT_BYTES + 2, "é")  # fewer characters than the limit, more bytes
    assert len(two_byte) < MAX_INPUT_BYTES
    assert input_refusal(two_byte)[0] == "ValidationException"  # type: ignore[index]


def test_a_failed_services_cause_is_lambdas_error_without_the_emulators_frames(local: LocalBreaker, sfn: Any) -> None:
    response = sync_call(local, sfn, {"mode": "fail", "message": "card declined"})

    cause = json.loads(response["cause"])
    assert list(cause) == ["errorMessage", "errorType", "stackTrace"]
    assert not [frame for frame in cause["stackTrace"] if "sfn_breaker/local" in frame]
    assert cause["stackTrace"]  # the function's own frames, as AWS reports them


def test_describe_stacks_shows_the_templates_outputs_only(local: LocalBreaker, fast_assembly: Assembly) -> None:
    cloudformation = local.boto3_client("cloudformation")

    outputs = cloudformation.describe_stacks(StackName="CircuitBreaker")["Stacks"][0]["Outputs"]
    template = cloudformation.get_template(StackName="CircuitBreaker")["TemplateBody"]

    assert sorted(o["OutputKey"] for o in outputs) == sorted(fast_assembly.template["Outputs"])
    assert sorted(template["Outputs"]) == sorted(fast_assembly.template["Outputs"])


def test_a_body_that_is_not_json_is_refused(local: LocalBreaker) -> None:
    request = urllib.request.Request(
        local.endpoint_url,
        data=b"{not json",
        headers={"X-Amz-Target": "AWSStepFunctions.StartSyncExecution", "Content-Type": "application/x-amz-json-1.0"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)

    assert caught.value.code == 400
    assert json.loads(caught.value.read())["__type"] == "SerializationException"


class _Sent(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def _url_of_sync_call(client: Any) -> str:
    def stop(request: Any, **kwargs: Any) -> None:
        raise _Sent(request.url)

    client.meta.events.register("before-send.sfn.StartSyncExecution", stop)
    with pytest.raises(_Sent) as caught:
        client.start_sync_execution(stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:x")
    return caught.value.url


def test_botocore_sends_start_sync_execution_to_a_sync_host_unless_told_not_to(local: LocalBreaker) -> None:
    session: Any = local.session
    default = session.client("stepfunctions", endpoint_url=local.endpoint_url)
    without_prefix = session.client(
        "stepfunctions", endpoint_url=local.endpoint_url, config=Config(inject_host_prefix=False)
    )

    assert _url_of_sync_call(default).startswith(local.endpoint_url.replace("http://", "http://sync-"))
    assert _url_of_sync_call(without_prefix).startswith(local.endpoint_url)
    assert _url_of_sync_call(local.client()._connection.client("stepfunctions")).startswith(local.endpoint_url)


def test_against_aws_the_client_keeps_the_sync_host() -> None:
    import boto3

    from sfn_breaker.client import BreakerClient

    client = BreakerClient(session=boto3.Session(region_name="eu-west-1"), state_machine_arn="arn:x", table_name="t")

    assert (
        _url_of_sync_call(client._connection.client("stepfunctions")) == "https://sync-states.eu-west-1.amazonaws.com/"
    )


# --------------------------------------------------------------------------- the response shape


@pytest.mark.parametrize(
    ("described", "expected"),
    [
        ({"status": "TIMED_OUT"}, {"status": "TIMED_OUT", "error": "States.Timeout"}),
        ({"status": "ABORTED", "error": "Stopped"}, {"status": "FAILED", "error": "Stopped"}),
        ({"status": "FAILED", "error": "Boom", "cause": "why"}, {"status": "FAILED", "error": "Boom", "cause": "why"}),
    ],
)
def test_an_execution_that_did_not_succeed_has_error_and_cause_and_no_output(
    described: dict[str, Any], expected: dict[str, Any]
) -> None:
    base = {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e",
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        "name": "e",
        "startDate": "2026-11-23T08:00:00.000+00:00",
        "stopDate": "2026-11-23T08:00:00.250+00:00",
    }

    response = sync_response({**base, **described}, "{}")

    assert {key: response.get(key) for key in expected} == expected
    assert "output" not in response
    assert response["billingDetails"]["billedDurationInMilliseconds"] == 300


# --------------------------------------------------------------------------- the background process


def test_a_background_emulator_that_cannot_start_says_why(tmp_path: Path) -> None:
    empty = tmp_path / "not-an-assembly"
    empty.mkdir()

    with pytest.raises(EmulatorError) as caught:
        start_background(tmp_path / "local.json", assembly_dir=empty, timeout=120)

    assert "exited with status" in str(caught.value)
    assert "CircuitBreaker.template.json" in str(caught.value)  # the log's last lines
    assert not (tmp_path / "local.json").exists()
