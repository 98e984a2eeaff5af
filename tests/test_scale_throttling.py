"""The breaker with its circuit item throttled (bench/scale/throttling.py injects DynamoDB's
ProvisionedThroughputExceededException on the item, as AWS answers for a hot partition key).

Bursts of concurrent calls, small counts, fast settings; what is checked is counts and endings:
every call ends (none lost, none hung), the store-fault policy decides what a throttled read
means, an outage still opens the circuit (RecordFailure's opening write is retried by the AWS SDK
when it is throttled, and logged as RecordFailureFailed when it cannot be made), and the success
path writes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.scale.throttling import ThrottledItems, TokenBucket
from sfn_breaker.lambdas import table
from sfn_breaker.local.assembly import Assembly
from tests.harness import Breaker, Execution, ScriptedService, concurrently, deployed_breaker

CALLS = 8


@pytest.fixture
def fast(fast_assembly: Assembly, service: ScriptedService) -> Iterator[Breaker]:
    """storeFaultPolicy ``call`` (the default), 3 attempts, no retry waits."""
    with deployed_breaker(fast_assembly, service) as deployed:
        yield deployed


@pytest.fixture
def tuned(tuned_assembly: Assembly, service: ScriptedService) -> Iterator[Breaker]:
    """storeFaultPolicy ``fail_fast`` for payment, 2 attempts."""
    with deployed_breaker(tuned_assembly, service) as deployed:
        yield deployed


def burst(deployed: Breaker, count: int = CALLS) -> list[Execution]:
    arns = concurrently(count, lambda _: deployed.start({"ServiceName": "payment", "Payload": {}}))
    results = [deployed.wait(arn, timeout=120) for arn in arns]  # a call that never ends fails here
    deployed.runtime.settle()
    return results


def reads_tried(execution: Execution) -> int:
    """GetCircuitStatus requests an execution made (each throttled one is retried by the workflow)."""
    return sum(
        1
        for e in execution.history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "getItem"
    )


def store_faulted(execution: Execution) -> bool:
    return "ReportStoreFault" in execution.states()


def test_every_read_throttled_under_the_call_policy_calls_the_service_unchecked(fast: Breaker) -> None:
    with ThrottledItems(frozenset({"payment"}), read_rate=1.0).installed() as throttle:
        results = burst(fast)

    assert len(results) == CALLS and all(r.status == "SUCCEEDED" for r in results)
    assert all(store_faulted(r) for r in results)
    assert [reads_tried(r) for r in results] == [3] * CALLS  # one read, two retries, then the policy
    assert throttle.reads() == (0, 3 * CALLS)
    assert fast.service_calls() == CALLS
    assert throttle.writes() == (0, 0) and fast.item() is None  # the success path writes nothing


def test_every_read_throttled_under_fail_fast_calls_nothing(tuned: Breaker) -> None:
    with ThrottledItems(frozenset({"payment"}), read_rate=1.0).installed() as throttle:
        results = burst(tuned)

    assert [r.error for r in results] == ["CircuitStoreUnavailable"] * CALLS
    assert all("ProvisionedThroughputExceededException" in (r.cause or "") for r in results)
    assert tuned.service_calls() == 0
    assert throttle.writes() == (0, 0)


@pytest.mark.parametrize("rate", [0.3, 0.7])
def test_partly_throttled_reads_the_policy_decides_each_call(tuned: Breaker, rate: float) -> None:
    with ThrottledItems(frozenset({"payment"}), read_rate=rate).installed() as throttle:
        results = burst(tuned)

    faulted = [r for r in results if store_faulted(r)]
    answered = [r for r in results if not store_faulted(r)]
    assert len(faulted) + len(answered) == CALLS  # nothing lost
    assert all(r.error == "CircuitStoreUnavailable" for r in faulted)  # three throttled reads in a row
    assert all(r.status == "SUCCEEDED" for r in answered)
    assert tuned.service_calls() == len(answered)
    served, throttled = throttle.reads()
    assert served == len(answered) and throttled == sum(reads_tried(r) for r in results) - served
    assert throttle.writes() == (0, 0) and tuned.item() is None


def test_an_outage_still_opens_the_circuit_with_reads_and_counter_writes_throttled(fast: Breaker) -> None:
    fast.service.behave(then="fail")
    with ThrottledItems(frozenset({"payment"}), read_rate=0.5, rates={"update_item": 1.0}).installed() as throttle:
        results = burst(fast)

    assert len(results) == CALLS and all(r.error in {"ServiceError", "CircuitOpen"} for r in results)
    assert fast.service_calls() <= CALLS * 3  # no call made more than its attempts
    assert throttle.requests("update_item")[1] > 0  # CountFailedAttempt was refused, and the retries went on
    assert throttle.requests("update_item")[0] == 0
    item = fast.item()
    assert item is not None and item["ExpiryTimeStamp"] > time.time()  # RecordFailure opened it
    calls = fast.service_calls()
    assert fast.call({}).error == "CircuitOpen" and fast.service_calls() == calls


def record_failures(deployed: Breaker) -> list[Any]:
    """RecordFailure's invocations that record a failure (service or fleet attempts), not store faults."""
    return [i for i in deployed.runtime.calls_to("RecordFailure") if i.event["Kind"] in ("service", "attempts")]


def test_throttled_opening_writes_are_retried_by_the_sdk_and_the_circuit_still_opens(
    fast: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    fast.service.behave(then="fail")
    # The first three PutItems of the base item are refused: RecordFailure's write that opens it.
    with ThrottledItems(frozenset({"payment"}), refuse_first={"put_item": 3}).installed() as throttle:
        results = burst(fast)

    assert len(results) == CALLS and all(r.error in {"ServiceError", "CircuitOpen"} for r in results)
    puts_served, puts_refused = throttle.requests("put_item")
    assert puts_refused == 3 and puts_served >= 1  # retried within one invocation, then made
    assert all(i.ok for i in record_failures(fast))  # no invocation failed: the SDK's retries were enough
    assert not [r for r in caplog.records if r.getMessage().startswith("Could not record the failure")]
    item = fast.item()
    assert item is not None and item["ExpiryTimeStamp"] > time.time()
    calls = fast.service_calls()
    assert fast.call({}).error == "CircuitOpen" and fast.service_calls() == calls


@pytest.mark.slow
def test_an_opening_write_refused_every_time_is_logged_and_the_caller_keeps_the_services_error(
    fast: Breaker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two SDK attempts per request (a setting, instead of the DynamoDB default's ten with backoff).
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setattr(table, "_store", None)
    fast.service.behave(then="fail")
    with ThrottledItems(frozenset({"payment"}), rates={"put_item": 1.0}).installed() as throttle:
        results = burst(fast)

    assert [r.error for r in results] == ["ServiceError"] * CALLS  # the service's own error, never lost
    assert all(json.loads(r.cause or "")["errorType"] == "ServiceError" for r in results)
    assert fast.service_calls() == CALLS * 3  # the circuit never opened: every attempt was made
    recorded = record_failures(fast)
    final = [i for i in recorded if i.event["Kind"] == "service"]
    assert len(final) == CALLS * 3  # RecordFailure, then the workflow's two retries on StoreError
    assert not any(i.ok for i in recorded)
    assert throttle.requests("put_item") == (0, 2 * len(recorded))  # two SDK attempts each
    loud = [r for r in caplog.records if r.getMessage().startswith("Could not record the failure")]
    assert len(loud) == len(recorded) and all(r.levelname == "ERROR" for r in loud)
    item = fast.item()
    assert item is None or "ExpiryTimeStamp" not in item


def test_throttling_names_only_operations_it_can_throttle() -> None:
    with pytest.raises(ValueError, match="not scan"), ThrottledItems(frozenset({"p"}), rates={"scan": 1.0}).installed():
        pass


def test_a_token_bucket_per_key_serves_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=10, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(25)) == 10  # the burst, then nothing
    now[0] = 0.5
    assert sum(bucket.take() for _ in range(25)) == 5  # half a second refills half the rate
