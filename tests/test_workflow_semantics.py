"""Thresholds, half-open probes, growing open periods, retries that respect an open circuit,
forced states under concurrency, and store faults, on the synthesized workflow (moto)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from sfn_breaker.local.assembly import Assembly
from tests.conftest import READ_SHARDS
from tests.harness import Breaker, ScriptedService, concurrently
from tests.sharding import breaker_on


@pytest.fixture(params=["tuned", "tuned_sharded"])
def tuned(
    request: pytest.FixtureRequest, assemblies: dict[str, Assembly], service: ScriptedService
) -> Iterator[Breaker]:
    """conftest.TUNED_CONTEXT: threshold 2, growth 2.0, fail fast on store faults, 5 s timeout;
    and the same with ``payment`` on READ_SHARDS items: every test must pass on both."""
    read_shards = READ_SHARDS if request.param.endswith("_sharded") else 1
    with breaker_on(assemblies[request.param], service, read_shards) as deployed:
        yield deployed


@pytest.fixture(params=["fast", "fast_sharded"])
def breaker(
    request: pytest.FixtureRequest, assemblies: dict[str, Assembly], service: ScriptedService
) -> Iterator[Breaker]:
    """conftest's ``breaker`` (the fast settings), unsharded and sharded."""
    read_shards = READ_SHARDS if request.param.endswith("_sharded") else 1
    with breaker_on(assemblies[request.param], service, read_shards) as deployed:
        yield deployed


def expired_item(**extra: Any) -> dict[str, Any]:
    """A circuit whose open period is over and that no success has closed yet (half-open)."""
    return {"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) - 5, **extra}


def run_all(deployed: Breaker, count: int) -> list[Any]:
    arns = concurrently(count, lambda _: deployed.start({"ServiceName": "payment", "Payload": {}}))
    results = [deployed.wait(arn) for arn in arns]
    deployed.runtime.settle()
    return results


# --------------------------------------------------------------------------- failure threshold


def test_the_circuit_opens_at_the_failure_threshold(tuned: Breaker) -> None:
    tuned.service.behave(then="fail")

    first = tuned.call({})
    counted = tuned.item()
    second = tuned.call({})
    opened = tuned.item()
    third = tuned.call({})

    assert (first.error, second.error, third.error) == ("ServiceError", "ServiceError", "CircuitOpen")
    assert counted is not None and "ExpiryTimeStamp" not in counted and len(counted["Failures"]) == 1
    assert opened is not None and opened["ExpiryTimeStamp"] > time.time() and "Failures" not in opened
    assert tuned.service_calls() == 4  # two executions, two attempts each; none for the third


def test_successes_below_the_threshold_write_nothing(tuned: Breaker) -> None:
    tuned.service.behave("fail", "fail", then="ok")
    tuned.call({})
    counted = tuned.item()
    assert counted is not None and len(counted["Failures"]) == 1  # one failure recorded, below the threshold

    for _ in range(3):
        assert tuned.call({}).status == "SUCCEEDED"

    assert tuned.item() == counted  # the closed-circuit success path never writes


# --------------------------------------------------------------------------- half-open


def test_exactly_one_probe_reaches_the_service_in_half_open(tuned: Breaker) -> None:
    tuned.operator_writes(expired_item())
    tuned.service.behave("hold", then="ok")
    probe = tuned.start({"ServiceName": "payment", "Payload": {"probe": True}})
    deadline = time.monotonic() + 10
    while tuned.service_calls() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the probe is inside the service
    assert tuned.service_calls() == 1

    others = run_all(tuned, 8)
    tuned.service.proceed()
    probe_result = tuned.wait(probe)
    tuned.runtime.settle()

    assert [r.error for r in others] == ["CircuitOpen"] * 8
    assert all("a probe call is in flight" in (r.cause or "") for r in others)
    assert probe_result.status == "SUCCEEDED"
    assert tuned.service_calls() == 1  # only the probe
    assert tuned.item() is None  # the probe's success closed the circuit
    assert tuned.call({}).status == "SUCCEEDED"


def test_a_failed_probe_opens_the_circuit_again_for_longer(tuned: Breaker) -> None:
    tuned.operator_writes(expired_item(Opens=1))
    tuned.service.behave(then="fail")

    result = tuned.call({})

    item = tuned.item()
    assert result.error == "ServiceError"
    assert tuned.service_calls() == 1  # the probe is one call: a failed probe is not retried
    assert item is not None and item["Opens"] == 2
    # The second consecutive open lasts 30 s x 2.0 (openDurationGrowth).
    assert 60 - 2 <= int(item["ExpiryTimeStamp"]) - time.time() <= 60 + 1
    assert "Probes" not in item


def test_a_dead_probes_claim_lapses(tuned: Breaker) -> None:
    # A probe that claimed the circuit and died: its claim ran out a second ago.
    tuned.operator_writes(expired_item(Probes={"arn:dead-execution": Decimal(int(time.time()) - 1)}))

    result = tuned.call({})

    assert result.status == "SUCCEEDED"
    assert tuned.service_calls() == 1
    assert tuned.item() is None


def test_a_live_probe_claim_turns_callers_away(tuned: Breaker) -> None:
    tuned.operator_writes(expired_item(Probes={"arn:live-execution": Decimal(int(time.time()) + 60)}))

    result = tuned.call({})

    assert result.error == "CircuitOpen"
    assert "Circuit half-open for service payment until" in (result.cause or "")
    assert tuned.service_calls() == 0


# --------------------------------------------------------------------------- retries respect the breaker


def test_retries_stop_when_another_execution_opens_the_circuit(breaker: Breaker) -> None:
    def another_execution_opens_the_circuit() -> None:
        breaker.table.put_item(Item={"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) + 60})
        breaker.runtime.settle()

    breaker.service.behave(another_execution_opens_the_circuit, then="fail")

    result = breaker.call({})

    assert result.error == "CircuitOpen"
    assert breaker.service_calls() == 1  # the retries (maxAttempts 3) were not sent
    assert breaker.runtime.calls_to("RecordFailure") == []


# --------------------------------------------------------------------------- forced states under concurrency


def test_a_forced_closed_circuit_survives_concurrent_failures(breaker: Breaker) -> None:
    forced = {"ServiceName": "payment", "Forced": "CLOSED", "Reason": "incident 42"}
    breaker.operator_writes(forced)
    breaker.service.behave(then="fail")

    results = run_all(breaker, 10)

    assert {r.error for r in results} == {"ServiceError"}
    assert breaker.item() == forced
    assert breaker.service_calls() == 30


@pytest.mark.parametrize("variant", ["fast", "fast_sharded"])
def test_an_operator_write_during_concurrent_failures_is_never_overwritten(
    assemblies: dict[str, Assembly], variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sfn_breaker.lambdas.record_failure as record_failure

    # Four executions: their 8 failed attempts before a retry stay under failedAttemptsThreshold (10).
    service = ScriptedService(then="fail", gate=4)
    forced = {"ServiceName": "payment", "Forced": "CLOSED"}
    decisions: list[str | None] = []
    decide = record_failure.on_failure
    one_at_a_time = threading.Lock()  # no other decision's write can land before the operator's

    read_shards = READ_SHARDS if variant.endswith("_sharded") else 1
    with breaker_on(assemblies[variant], service, read_shards) as deployed:

        def operator_writes_between_read_and_write(circuit: Any, now: float, policy: Any) -> Any:
            # The race itself: the first RecordFailure has read the circuit (closed) and decided to
            # open it; before its write lands, the operator forces the circuit closed.
            with one_at_a_time:
                after, outcome = decide(circuit, now, policy)
                decisions.append(circuit.forced)
                if len(decisions) == 1:
                    deployed.table.put_item(Item=forced)
                return after, outcome

        monkeypatch.setattr(record_failure, "on_failure", operator_writes_between_read_and_write)
        arns = concurrently(4, lambda _: deployed.start({"ServiceName": "payment", "Payload": {}}))
        results = [deployed.wait(arn) for arn in arns]
        deployed.runtime.settle()
        assert deployed.item() == forced
        recorded = deployed.runtime.calls_to("RecordFailure")

    assert {r.error for r in results} <= {"ServiceError", "ServiceTimeout"}
    assert decisions[0] is None  # the first decision was made on the circuit as it was before the write
    assert "CLOSED" in decisions  # ... and its write was refused: it read again and found the forced state
    assert {r.result["Result"] for r in recorded} == {"forced"}


def test_a_held_open_circuit_survives_concurrent_callers(breaker: Breaker) -> None:
    held = {"ServiceName": "payment", "Forced": "OPEN"}
    breaker.operator_writes(held)

    results = run_all(breaker, 10)

    assert {r.error for r in results} == {"CircuitOpen"}
    assert breaker.service_calls() == 0
    assert breaker.item() == held


# --------------------------------------------------------------------------- store faults


def _delete_table(deployed: Breaker) -> None:
    deployed.session.client("dynamodb").delete_table(TableName=deployed.table_name)


def test_an_unreachable_table_calls_the_service_by_default(breaker: Breaker, caplog: pytest.LogCaptureFixture) -> None:
    _delete_table(breaker)

    result = breaker.run({"ServiceName": "payment", "Payload": {"n": 1}})

    assert result.status == "SUCCEEDED"
    assert breaker.service_calls() == 1
    (reported,) = breaker.runtime.calls_to("RecordFailure")
    assert reported.event["Kind"] == "store"
    assert any(r.getMessage().startswith("Circuit status could not be read") for r in caplog.records)


def test_an_unreachable_table_fails_fast_when_the_policy_says_so(tuned: Breaker) -> None:
    _delete_table(tuned)

    result = tuned.run({"ServiceName": "payment", "Payload": {}})

    assert result.error == "CircuitStoreUnavailable"
    assert "store-fault policy is FAIL_FAST" in (result.cause or "")
    assert tuned.service_calls() == 0
    assert len(tuned.runtime.calls_to("RecordFailure")) == 1  # logged and counted


@pytest.mark.slow
def test_a_throttled_table_is_retried_then_follows_the_policy(
    breaker: Breaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import DynamoDBBackend

    reads = []

    def throttled_get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(threading.current_thread().name)
        raise DynamodbException(
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        )

    monkeypatch.setattr(DynamoDBBackend, "get_item", throttled_get_item)

    result = breaker.run({"ServiceName": "payment", "Payload": {}})

    assert result.status == "SUCCEEDED"  # policy "call"
    assert breaker.service_calls() == 1
    assert len(reads) == 3  # the read and its two retries
    assert len(breaker.runtime.calls_to("RecordFailure")) == 1


@pytest.mark.slow
def test_a_failure_that_cannot_be_recorded_is_retried_and_logged_loudly(
    breaker: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    breaker.service.behave(lambda: _delete_table(breaker), then="fail")

    result = breaker.call({})

    assert result.error == "ServiceError"  # the service's own failure is never lost
    # (The retries' circuit reads also fail: each is reported as a store fault, Kind "store".)
    attempts = [a for a in breaker.runtime.calls_to("RecordFailure") if a.event["Kind"] == "service"]
    assert len(attempts) == 3 and not any(a.ok for a in attempts)
    loud = [r for r in caplog.records if r.getMessage().startswith("Could not record the failure")]
    assert len(loud) == 3 and all(r.levelname == "ERROR" for r in loud)
    assert json.loads(result.cause or "")["errorType"] == "ServiceError"
