"""The sync client against the in-process emulator; ``test_client_async.py`` mirrors it for the
async client, and ``test_client_results.py`` reads ``StartSyncExecution`` responses."""

from __future__ import annotations

import json
import math
import time
import traceback
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from sfn_breaker.client import (
    BreakerClient,
    CircuitOpenError,
    ConfigurationError,
    InvalidRequestError,
    ServiceCallError,
    StackNotFoundError,
)
from sfn_breaker.contract import MAX_INPUT_BYTES
from sfn_breaker.core import reading
from sfn_breaker.core.model import CircuitState
from sfn_breaker.local import LocalBreaker
from tests.local_fixtures import DEMO_SERVICE, NO_AWS_ENV, ascii_payload, chinese_payload, item, service_calls


@pytest.fixture
def client(local: LocalBreaker) -> BreakerClient:
    """A client that finds the stack by its outputs, as a user's would."""
    return BreakerClient(session=local.session, endpoint_url=local.endpoint_url)


def open_by_failure(client: BreakerClient, local: LocalBreaker) -> None:
    with pytest.raises(ServiceCallError):
        client.call(DEMO_SERVICE, {"mode": "fail"})
    local.runtime.settle()


# --------------------------------------------------------------------------- finding the breaker


def test_the_client_finds_the_workflow_and_table_from_the_stack_outputs(
    client: BreakerClient, local: LocalBreaker
) -> None:
    assert client.state_machine_arn == local.stack.state_machine_arn
    assert client.table_name == local.stack.outputs["TableName"]
    assert client.registered_services() == ["payment"]


def test_a_stack_that_is_not_deployed_is_named(local: LocalBreaker) -> None:
    client = BreakerClient(session=local.session, endpoint_url=local.endpoint_url, stack_name="Elsewhere")

    with pytest.raises(StackNotFoundError, match=f"Stack Elsewhere is not deployed at {local.endpoint_url}"):
        client.call(DEMO_SERVICE)


def test_an_endpoint_that_does_not_answer_is_a_configuration_error(local: LocalBreaker) -> None:
    client = BreakerClient(session=local.session, endpoint_url="http://127.0.0.1:9", state_machine_arn="arn:x")

    with pytest.raises(ConfigurationError, match=r"Could not reach the breaker.*breaker local up"):
        client.call(DEMO_SERVICE)


def test_no_credentials_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in NO_AWS_ENV.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    client = BreakerClient(session=boto3.Session(region_name="us-east-1"), state_machine_arn="arn:x", table_name="t")

    with pytest.raises(ConfigurationError, match="No AWS credentials found"):
        client.call(DEMO_SERVICE)
    with pytest.raises(ConfigurationError, match="No AWS credentials found"):
        client.status(DEMO_SERVICE)


@pytest.mark.parametrize("region", [None, "eu-west-1"])
def test_without_credentials_or_a_running_emulator_a_client_says_what_the_cli_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, region: str | None
) -> None:
    for name, value in {**NO_AWS_ENV, "AWS_DEFAULT_REGION": region, "AWS_REGION": None}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("BREAKER_STATE_DIR", str(tmp_path))  # no emulator recorded there
    cli_says = (  # the same words as tests/test_cli.py's test_no_credentials_and_no_emulator_exits_1_with_what_to_do
        "No AWS credentials found and the local emulator is not running: start it with "
        "`breaker local up`, or configure AWS credentials (aws configure, AWS_PROFILE, ...)."
    )

    client = BreakerClient()

    assert client.endpoint_url is None
    for attempt in (lambda: client.call(DEMO_SERVICE), lambda: client.status(DEMO_SERVICE), client.list_circuits):
        with pytest.raises(ConfigurationError) as raised:
            attempt()
        assert str(raised.value) == cli_says
        # ... alone: botocore's NoRegionError/NoCredentialsError is not chained to it (no screenful of traceback)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        assert "NoRegionError" not in "".join(traceback.format_exception(raised.value))


def test_against_an_emulator_endpoint_nothing_needs_configuring(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**NO_AWS_ENV, "AWS_DEFAULT_REGION": None, "AWS_REGION": None}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)

    client = BreakerClient()

    assert client.call(DEMO_SERVICE, {"n": 1})["echo"] == {"n": 1}
    assert client.session.region_name == "us-east-1"
    assert client.status(DEMO_SERVICE).state is CircuitState.CLOSED


# --------------------------------------------------------------------------- calling


def test_a_successful_call_returns_the_service_response(client: BreakerClient, local: LocalBreaker) -> None:
    calls = service_calls(local)

    assert client.call(DEMO_SERVICE, {"mode": "ok", "amount": 5}) == {
        "status": "paid",
        "service": "payment",
        "echo": {"mode": "ok", "amount": 5},
    }
    assert client.call(DEMO_SERVICE) == {"status": "paid", "service": "payment", "echo": {}}
    assert service_calls(local) == calls + 2


def test_a_failing_service_raises_its_error_and_opens_the_circuit(client: BreakerClient, local: LocalBreaker) -> None:
    calls = service_calls(local)

    with pytest.raises(ServiceCallError) as caught:
        client.call(DEMO_SERVICE, {"mode": "fail", "message": "card declined"})
    local.runtime.settle()

    failure = caught.value
    assert (failure.service, failure.error, failure.timed_out) == ("payment", "PaymentFailed", False)
    assert failure.message == "card declined"
    assert json.loads(failure.cause or "")["errorType"] == "PaymentFailed"
    assert failure.execution_arn
    assert str(failure) == "service payment failed with PaymentFailed: card declined"
    assert service_calls(local) == calls + 3
    assert client.status(DEMO_SERVICE).state is CircuitState.OPEN


def test_an_open_circuit_fails_fast_with_the_time_to_retry(client: BreakerClient, local: LocalBreaker) -> None:
    open_by_failure(client, local)
    calls = service_calls(local)

    with pytest.raises(CircuitOpenError) as caught:
        client.call(DEMO_SERVICE, {"mode": "ok"})

    expiry = int(item(local)["ExpiryTimeStamp"])  # type: ignore[index]
    assert caught.value.retry_after == datetime.fromtimestamp(expiry, tz=UTC)
    assert caught.value.held_open is False
    assert caught.value.service == "payment"
    assert caught.value.cause.startswith("Circuit open for service payment until ")
    assert service_calls(local) == calls  # the service was not called


def test_a_circuit_held_open_fails_fast_without_a_time_to_retry(client: BreakerClient, local: LocalBreaker) -> None:
    before = int(time.time())
    change = client.force_open(DEMO_SERVICE, reason="maintenance")
    after = int(time.time())
    calls = service_calls(local)

    with pytest.raises(CircuitOpenError) as caught:
        client.call(DEMO_SERVICE)

    assert caught.value.retry_after is None
    assert caught.value.held_open is True
    assert "until further notice" in caught.value.cause
    assert service_calls(local) == calls
    assert (change.before.state, change.after.state) == (CircuitState.CLOSED, CircuitState.FORCED_OPEN)
    assert item(local) == {
        "ServiceName": "payment",
        "Forced": "OPEN",
        "OpenedAt": item(local)["OpenedAt"],  # type: ignore[index]
        "Reason": "maintenance",
    }
    # When it was opened, by the client's clock: written by the client, not copied from the item.
    assert item(local)["OpenedAt"] in {reading.iso_timestamp(t) for t in range(before, after + 1)}  # type: ignore[index]


@pytest.mark.slow
def test_a_service_that_times_out_is_reported_as_a_timeout(client: BreakerClient, local: LocalBreaker) -> None:
    calls = service_calls(local)

    with pytest.raises(ServiceCallError) as caught:
        client.call(DEMO_SERVICE, {"mode": "slow", "delayMs": 1500})

    assert caught.value.timed_out is True
    assert caught.value.error == "ServiceTimeout"  # the workflow's name; States.Timeout never reaches a caller
    assert service_calls(local) - calls == 3  # every attempt (maxAttempts 3) timed out


def test_an_unknown_service_is_an_invalid_request(client: BreakerClient, local: LocalBreaker) -> None:
    calls = service_calls(local)

    with pytest.raises(InvalidRequestError) as caught:
        client.call("refunds", {"amount": 1})

    assert caught.value.error == "UnknownService"
    assert "Registered services: payment." in caught.value.cause
    assert service_calls(local) == calls


@pytest.mark.parametrize("payload", [[1, 2], [], "text", 42])
def test_a_payload_that_is_not_an_object_is_invalid_input_and_never_sent(
    client: BreakerClient, local: LocalBreaker, payload: Any
) -> None:
    executions = local.sync_executions

    with pytest.raises(InvalidRequestError) as caught:
        client.call(DEMO_SERVICE, payload)

    assert caught.value.error == "InvalidInput"
    assert '"Payload" must be a JSON object' in caught.value.cause
    assert local.sync_executions == executions
    assert item(local) is None  # a caller's mistake never opens the circuit


def test_a_payload_over_256_kib_is_an_invalid_request_from_step_functions(
    client: BreakerClient, local: LocalBreaker
) -> None:
    calls = service_calls(local)

    with pytest.raises(InvalidRequestError) as caught:
        client.call(DEMO_SERVICE, {"blob": "x" * 300_000})

    assert caught.value.error == "ValidationException"
    assert "less than or equal to 262144" in caught.value.cause
    assert service_calls(local) == calls
    assert item(local) is None


def test_a_chinese_payload_of_200_kb_in_utf8_round_trips_unchanged(client: BreakerClient, local: LocalBreaker) -> None:
    payload = chinese_payload(200_000)  # 66,660 characters: 400 KB as \\u escapes, refused if sent so
    calls = service_calls(local)

    answer = client.call(DEMO_SERVICE, payload)

    assert answer["echo"] == payload  # reached the service unchanged, and came back unchanged
    assert service_calls(local) == calls + 1


def test_a_chinese_payload_over_256_kib_in_utf8_is_refused_by_step_functions(
    client: BreakerClient, local: LocalBreaker
) -> None:
    calls = service_calls(local)

    with pytest.raises(InvalidRequestError) as caught:
        client.call(DEMO_SERVICE, chinese_payload(MAX_INPUT_BYTES + 10))

    assert caught.value.error == "ValidationException"
    assert "less than or equal to 262144" in caught.value.cause
    assert service_calls(local) == calls


def test_a_request_too_large_for_the_breakers_states_is_an_invalid_request_and_the_service_is_not_called(
    client: BreakerClient, local: LocalBreaker
) -> None:
    payload = ascii_payload(262_000)  # Step Functions accepts it; with the service's settings added, no state holds it
    calls = service_calls(local)

    with pytest.raises(InvalidRequestError) as caught:
        client.call(DEMO_SERVICE, payload)

    assert caught.value.error == "States.DataLimitExceeded"
    assert "The service was not called" in caught.value.cause and "'Configure payment'" in caught.value.cause
    assert service_calls(local) == calls
    assert item(local) is None  # not counted as a failure of the service


def test_the_client_reports_an_operators_reason(client: BreakerClient) -> None:
    client.force_open(DEMO_SERVICE, for_seconds=60, reason="maintenance")

    assert client.status(DEMO_SERVICE).reason == "maintenance"
    assert [v.reason for v in client.list_circuits()] == ["maintenance"]
    assert client.close(DEMO_SERVICE).before.reason == "maintenance"


def test_a_payload_that_is_not_json_is_refused_before_calling(client: BreakerClient, local: LocalBreaker) -> None:
    executions = local.sync_executions

    with pytest.raises(InvalidRequestError, match="not JSON"):
        client.call(DEMO_SERVICE, {"when": datetime.now(UTC)})

    assert local.sync_executions == executions


# --------------------------------------------------------------------------- reading and operating circuits


def test_status_and_list_read_the_circuits(client: BreakerClient, local: LocalBreaker) -> None:
    assert [(v.service, v.state) for v in client.list_circuits()] == [("payment", CircuitState.CLOSED)]

    open_by_failure(client, local)
    view = client.status(DEMO_SERVICE)

    assert view.state is CircuitState.OPEN
    assert view.open_until == int(item(local)["ExpiryTimeStamp"])  # type: ignore[index]
    assert view.last_error == "PaymentFailed"
    assert "the payment provider is down" in (view.last_cause or "")
    assert client.list_circuits() == [view]


def test_list_shows_circuits_of_services_that_are_no_longer_registered(
    client: BreakerClient, local: LocalBreaker
) -> None:
    table = local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(client.table_name)
    table.put_item(Item={"ServiceName": "retired", "ExpiryTimeStamp": Decimal(int(time.time()) + 60)})
    local.runtime.settle()

    assert [(v.service, v.state) for v in client.list_circuits()] == [
        ("payment", CircuitState.CLOSED),
        ("retired", CircuitState.OPEN),
    ]
    assert client.status("retired").state is CircuitState.OPEN


def test_a_circuit_whose_open_period_is_over_reads_half_open(client: BreakerClient, local: LocalBreaker) -> None:
    table = local.session.resource("dynamodb", endpoint_url=local.endpoint_url).Table(client.table_name)
    expired = int(time.time()) - 5
    table.put_item(Item={"ServiceName": "payment", "ExpiryTimeStamp": Decimal(expired)})
    local.runtime.settle()

    view = client.status(DEMO_SERVICE)

    assert (view.state, view.open_until) == (CircuitState.HALF_OPEN, expired)


def test_status_of_an_unknown_service_is_an_invalid_request(client: BreakerClient) -> None:
    with pytest.raises(InvalidRequestError, match="No service named refunds"):
        client.status("refunds")


def test_open_for_a_while_then_calls_fail_fast_until_then(local: LocalBreaker) -> None:
    now = time.time()
    client = BreakerClient(session=local.session, endpoint_url=local.endpoint_url, clock=lambda: now)

    change = client.force_open(DEMO_SERVICE, for_seconds=600)
    with pytest.raises(CircuitOpenError) as caught:
        client.call(DEMO_SERVICE)

    expiry = math.ceil(now) + 600
    assert change.after.state is CircuitState.FORCED_OPEN
    assert change.after.open_until == expiry
    assert change.changed
    assert caught.value.retry_after == datetime.fromtimestamp(expiry, tz=UTC)
    assert int(item(local)["ExpiryTimeStamp"]) == expiry  # type: ignore[index]


def test_open_until_a_time(client: BreakerClient) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)

    change = client.force_open(DEMO_SERVICE, until=until)

    assert change.after.open_until == int(until.timestamp())
    assert client.status(DEMO_SERVICE).state is CircuitState.FORCED_OPEN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"until": datetime.now(UTC) - timedelta(minutes=1)}, "in the past"),
        ({"until": datetime(2099, 1, 1)}, "time zone"),
        ({"until": datetime(2099, 1, 1, tzinfo=UTC), "for_seconds": 5}, "not both"),
        ({"for_seconds": 0}, "positive"),
    ],
)
def test_open_refuses_a_time_it_cannot_use(client: BreakerClient, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        client.force_open(DEMO_SERVICE, **kwargs)

    assert client.status(DEMO_SERVICE).state is CircuitState.CLOSED


def test_open_refuses_an_unknown_service(client: BreakerClient, local: LocalBreaker) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.force_open("refunds", for_seconds=60)

    assert caught.value.error == "UnknownService"
    assert item(local, "refunds") is None


def test_close_reopens_the_way_to_the_service(client: BreakerClient, local: LocalBreaker) -> None:
    open_by_failure(client, local)

    change = client.close(DEMO_SERVICE)
    again = client.close(DEMO_SERVICE)

    assert (change.before.state, change.after.state, change.changed) == (CircuitState.OPEN, CircuitState.CLOSED, True)
    assert (again.before.state, again.changed) == (CircuitState.CLOSED, False)
    assert item(local) is None
    assert client.call(DEMO_SERVICE)["status"] == "paid"


def test_a_circuit_forced_closed_always_calls_and_never_opens(client: BreakerClient, local: LocalBreaker) -> None:
    open_by_failure(client, local)

    change = client.force_closed(DEMO_SERVICE, reason="the provider says it is fine")
    calls = service_calls(local)
    for _ in range(2):
        with pytest.raises(ServiceCallError):
            client.call(DEMO_SERVICE, {"mode": "fail"})
    local.runtime.settle()

    assert (change.before.state, change.after.state) == (CircuitState.OPEN, CircuitState.FORCED_CLOSED)
    assert service_calls(local) == calls + 6  # every call reached the service, with its retries
    assert client.status(DEMO_SERVICE).state is CircuitState.FORCED_CLOSED
    assert client.close(DEMO_SERVICE).before.state is CircuitState.FORCED_CLOSED
