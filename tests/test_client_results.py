"""Reading a ``StartSyncExecution`` response (``result_from``): no emulator, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sfn_breaker.client import (
    CircuitOpenError,
    CircuitStoreUnavailableError,
    InvalidRequestError,
    ResponseTooLargeError,
    ServiceCallError,
    result_from,
)
from sfn_breaker.contract import USABLE_REQUEST_BYTES


def sync_response(**fields: Any) -> dict[str, Any]:
    return {"executionArn": "arn:aws:states:us-east-1:1:express:m:e:1", **fields}


def test_result_from_a_success_is_the_output() -> None:
    assert result_from("payment", sync_response(status="SUCCEEDED", output='{"ok": true}')) == {"ok": True}
    assert result_from("payment", sync_response(status="SUCCEEDED")) is None


@pytest.mark.parametrize(
    ("response", "timed_out", "error"),
    [
        (sync_response(status="FAILED", error="States.Timeout", cause="late"), True, "States.Timeout"),
        (sync_response(status="FAILED", error="ServiceTimeout", cause="late"), True, "ServiceTimeout"),
        (sync_response(status="TIMED_OUT"), True, "States.Timeout"),
        (sync_response(status="FAILED", error="PaymentFailed", cause="{}"), False, "PaymentFailed"),
        (sync_response(status="FAILED"), False, "States.Runtime"),
    ],
)
def test_result_from_a_failure_names_the_error(response: dict[str, Any], timed_out: bool, error: str) -> None:
    with pytest.raises(ServiceCallError) as caught:
        result_from("payment", response)

    assert (caught.value.timed_out, caught.value.error) == (timed_out, error)


def test_result_from_an_open_circuit_reads_the_time_to_retry() -> None:
    cause = "Circuit open for service payment until 2026-11-23T08:28:10.000Z: the service was not called."

    with pytest.raises(CircuitOpenError) as caught:
        result_from("payment", sync_response(status="FAILED", error="CircuitOpen", cause=cause))

    assert caught.value.retry_after == datetime(2026, 11, 23, 8, 28, 10, tzinfo=UTC)
    assert str(caught.value) == cause


def test_result_from_a_half_open_circuit_reads_when_its_probe_lapses() -> None:
    cause = (
        "Circuit half-open for service payment until 2026-11-23T08:28:15.000Z: a probe call is in flight, "
        "so the service was not called. Retry after that time."
    )

    with pytest.raises(CircuitOpenError) as caught:
        result_from("payment", sync_response(status="FAILED", error="CircuitOpen", cause=cause))

    assert caught.value.retry_after == datetime(2026, 11, 23, 8, 28, 15, tzinfo=UTC)
    assert caught.value.held_open is False


def test_result_from_an_unreadable_circuit_under_a_fail_fast_policy() -> None:
    cause = (
        "The circuit of service payment could not be read (States.TaskFailed) and its store-fault policy is FAIL_FAST"
    )

    with pytest.raises(CircuitStoreUnavailableError) as caught:
        result_from("payment", sync_response(status="FAILED", error="CircuitStoreUnavailable", cause=cause))

    assert (caught.value.service, caught.value.error, caught.value.cause) == (
        "payment",
        "CircuitStoreUnavailable",
        cause,
    )


def data_limit(state: str) -> dict[str, Any]:
    """How Step Functions ends an execution whose state data passed 256 KiB (cause as moto and AWS word it)."""
    cause = (
        f"The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."
    )
    return sync_response(status="FAILED", error="States.DataLimitExceeded", cause=cause)


@pytest.mark.parametrize(
    "state", ["ValidateInput", "NormalizeInput", "Configure payment", "dynamodb", "GetCircuitStatus", "IsCircuitClosed"]
)
def test_a_request_too_large_for_the_breakers_states_is_an_invalid_request_not_a_service_failure(state: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        result_from("payment", data_limit(state))

    assert caught.value.error == "States.DataLimitExceeded"
    assert "The service was not called" in caught.value.cause and f"'{state}'" in caught.value.cause
    assert f"{USABLE_REQUEST_BYTES:,} bytes" in caught.value.cause


@pytest.mark.parametrize("state", ["lambda", "ExecuteLambda", "WasCircuitOpen", "Succeeded"])
def test_an_answer_too_large_says_the_service_answered(state: str) -> None:
    with pytest.raises(ResponseTooLargeError) as caught:
        result_from("payment", data_limit(state))

    assert caught.value.service == "payment" and caught.value.error == "States.DataLimitExceeded"
    assert caught.value.cause.startswith("Service payment was called, but its answer")
    assert f"'{state}'" in caught.value.cause and caught.value.execution_arn is not None


def test_the_workflows_own_end_for_an_answer_too_large_is_not_a_service_failure() -> None:
    cause = "Service payment was called and answered, but its answer is larger than a Step Functions state can hold"

    with pytest.raises(ResponseTooLargeError) as caught:
        result_from("payment", sync_response(status="FAILED", error="ServiceResponseTooLarge", cause=cause))

    assert caught.value.cause == cause and caught.value.service == "payment"
