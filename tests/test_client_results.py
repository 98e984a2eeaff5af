"""Reading a ``StartSyncExecution`` response (``result_from``): no emulator, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sfn_breaker.client import CircuitOpenError, CircuitStoreUnavailableError, ServiceCallError, result_from


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
