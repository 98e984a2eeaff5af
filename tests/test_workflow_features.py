"""Per-service features on the synthesized workflow (moto, real handlers): ignored errors, the
breaker's own error names, fallbacks, the success threshold, slow start, corrupt bookkeeping,
and an operator's open window that ends.

``tests.feature_app`` registers one service per feature; each test says what a caller or an
operator does and counts what reached the service and what the table holds.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sfn_breaker.client.results import result_from
from sfn_breaker.contract import BREAKER_ERRORS, MAX_INPUT_BYTES
from sfn_breaker.core.store import CircuitStore
from sfn_breaker.errors import CircuitOpenError, ServiceCallError
from sfn_breaker.local.assembly import Assembly
from sfn_breaker.local.deploy import deploy_stack
from sfn_breaker.local.runtime import LambdaRuntime
from tests.feature_app import FALLBACK_FUNCTION, SERVICES, STATIC_FALLBACK
from tests.harness import MOTO_CONFIG, Breaker, Execution, ScriptedService, concurrently, warm_up


class Script:
    """A service that follows a script: ``"ok"`` answers, any other step raises an error of that
    name (``"PaymentDeclined"``), then ``then`` forever; ``hold()`` makes the next call wait."""

    def __init__(self, *steps: str, then: str = "ok") -> None:
        self.steps, self.then = list(steps), then
        self.calls: list[Any] = []
        self._lock = threading.Lock()
        self._held: threading.Event | None = None

    def __call__(self, event: Any, context: Any) -> Any:
        with self._lock:
            self.calls.append(event)
            step = self.steps.pop(0) if self.steps else self.then
            held, self._held = self._held, None
        if held is not None:
            held.wait(timeout=30)
        if step == "ok":
            return {"ok": True, "call": len(self.calls), "echo": event}
        raise type(step, (Exception,), {})(f"{step} on call {len(self.calls)}")

    def behave(self, *steps: str, then: str) -> None:
        with self._lock:
            self.steps, self.then = list(steps), then

    def hold(self) -> threading.Event:
        with self._lock:
            self._held = threading.Event()
            return self._held

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.calls)


@dataclass
class Features:
    breaker: Breaker
    services: dict[str, Script]
    fallback: Script

    def call(self, service: str, payload: Any = None) -> Execution:
        return self.breaker.call(payload or {}, service=service)

    def item(self, service: str) -> dict[str, Any] | None:
        return self.breaker.item(service)

    def write(self, item: dict[str, Any]) -> None:
        self.breaker.operator_writes(item)

    def fallback_counts(self) -> list[dict[str, Any]]:
        return [c.event for c in self.breaker.runtime.calls_to("RecordFailure") if c.event.get("Kind") == "fallback"]

    def failures_recorded(self) -> int:
        return sum(1 for c in self.breaker.runtime.calls_to("RecordFailure") if c.event.get("Kind") == "service")


@contextmanager
def deployed_features(assembly: Assembly) -> Iterator[Features]:
    runtime = LambdaRuntime()
    with mock_aws(config=MOTO_CONFIG), runtime.installed():
        session = boto3.Session(region_name="us-east-1")
        stack = deploy_stack(assembly, session)
        warm_up(session, stack, runtime)
        services = {name: Script() for name in SERVICES}
        for name, (construct_id, _) in SERVICES.items():
            runtime.stand_in(construct_id, services[name])
        fallback = Script()
        runtime.stand_in(FALLBACK_FUNCTION, fallback)
        yield Features(Breaker(session, stack, runtime, ScriptedService()), services, fallback)


@pytest.fixture
def features(features_assembly: Assembly) -> Iterator[Features]:
    with deployed_features(features_assembly) as deployed:
        yield deployed


def open_item(service: str, seconds: int = 60, **extra: Any) -> dict[str, Any]:
    return {"ServiceName": service, "ExpiryTimeStamp": int(time.time()) + seconds, **extra}


def cause_of(result: Execution) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.cause or "")
    return parsed


# --------------------------------------------------------------------------- ignored errors


def test_an_ignored_error_ends_the_call_at_once_and_is_never_counted(features: Features) -> None:
    declines = features.services["declines"]
    declines.behave(then="PaymentDeclined")

    results = [features.call("declines", {"card": n}) for n in range(20)]

    assert [r.error for r in results] == ["PaymentDeclined"] * 20
    assert cause_of(results[0])["errorMessage"] == "PaymentDeclined on call 1"  # the service's own cause
    assert declines.count == 20  # one call each: not retried, and the circuit never opened
    assert features.item("declines") is None
    assert features.failures_recorded() == 0


def test_another_error_of_the_same_service_is_still_retried_and_opens_the_circuit(features: Features) -> None:
    declines = features.services["declines"]
    declines.behave("CardExpired", then="ProviderDown")

    ignored = features.call("declines")
    failed = features.call("declines")
    fast = features.call("declines")

    assert (ignored.error, failed.error, fast.error) == ("CardExpired", "ProviderDown", "CircuitOpen")
    assert declines.count == 1 + 3  # the ignored error once; the real failure on all three attempts
    assert features.item("declines") is not None


def test_an_ignored_error_after_a_failed_attempt_ends_the_retries(features: Features) -> None:
    declines = features.services["declines"]
    declines.behave("ProviderDown", then="PaymentDeclined")

    result = features.call("declines")

    assert result.error == "PaymentDeclined"
    assert declines.count == 2
    item = features.item("declines")  # the failed attempt counted, no failure recorded, the circuit closed
    assert item is not None and item["FailedAttempts"] == 1 and "ExpiryTimeStamp" not in item
    assert features.failures_recorded() == 0


def test_a_probe_that_gets_an_ignored_error_closes_the_circuit(features: Features) -> None:
    features.write(open_item("declines", seconds=-5))  # the open period is over: half-open
    features.services["declines"].behave(then="PaymentDeclined")

    probe = features.call("declines")
    after = features.call("declines")

    assert (probe.error, after.error) == ("PaymentDeclined", "PaymentDeclined")
    assert features.services["declines"].count == 2
    assert features.item("declines") is None  # the service answered: its circuit is closed


# --------------------------------------------------------------------------- the breaker's own names


@pytest.mark.parametrize("name", BREAKER_ERRORS)
def test_a_service_error_named_like_the_breakers_own_ends_as_service_failed(features: Features, name: str) -> None:
    features.services["declines"].behave(then=name)

    result = features.call("declines")

    assert result.error == "ServiceFailed"
    assert name in (result.cause or "") and f"{name} on call 3" in (result.cause or "")
    assert features.services["declines"].count == 3  # a failure like any other: retried, then recorded
    assert features.item("declines") is not None
    with pytest.raises(ServiceCallError) as raised:  # what the client makes of it: never a fast fail
        result_from("declines", {"status": result.status, "error": result.error, "cause": result.cause})
    assert raised.type is ServiceCallError and name in str(raised.value)


# --------------------------------------------------------------------------- fallbacks


def test_a_static_fallback_answers_while_the_circuit_is_open(features: Features) -> None:
    features.write(open_item("static"))
    features.write({"ServiceName": "declines", "Forced": "OPEN"})  # no fallback: fails fast as before

    answered = features.call("static", {"order": 1})
    failed_fast = features.call("declines")

    assert (answered.status, answered.output) == ("SUCCEEDED", STATIC_FALLBACK)
    assert failed_fast.error == "CircuitOpen"
    assert features.services["static"].count == 0
    (counted,) = features.fallback_counts()
    assert counted["ServiceName"] == "static" and counted["Failure"]["Error"] == "CircuitOpen"
    assert counted["After"] == "fast fail"


def test_a_static_fallback_answers_after_every_attempt_failed_when_asked_to(features: Features) -> None:
    features.services["static"].behave(then="ProviderDown")

    answered = features.call("static")
    next_call = features.call("static")

    assert (answered.status, answered.output) == ("SUCCEEDED", STATIC_FALLBACK)
    assert features.services["static"].count == 3  # every attempt was made first
    assert features.failures_recorded() == 1 and features.item("static") is not None  # and the circuit opened
    assert next_call.output == STATIC_FALLBACK and features.services["static"].count == 3
    assert [c["After"] for c in features.fallback_counts()] == ["failure", "fast fail"]


def test_a_fallback_function_gets_the_service_the_payload_and_why(features: Features) -> None:
    features.write({"ServiceName": "function", "Forced": "OPEN", "Reason": "maintenance"})
    features.fallback.behave(then="ok")

    answered = features.call("function", {"order": 7})

    assert answered.status == "SUCCEEDED"
    (received,) = features.fallback.calls
    assert received["ServiceName"] == "function" and received["Payload"] == {"order": 7}
    assert received["Reason"]["Error"] == "CircuitOpen" and "held open" in received["Reason"]["Cause"]
    assert answered.output == {"ok": True, "call": 1, "echo": received}
    assert features.services["function"].count == 0


def test_a_large_payload_reaches_the_fallback_function_and_its_answer_comes_back(features: Features) -> None:
    payload = {"blob": "x" * 200_000}
    features.write({"ServiceName": "function", "Forced": "OPEN"})
    features.fallback.behave(then="ok")

    answered = features.call("function", payload)

    assert answered.status == "SUCCEEDED"
    (received,) = features.fallback.calls
    assert received["Payload"] == payload and answered.output == {"ok": True, "call": 1, "echo": received}
    assert answered.largest_state_data() < MAX_INPUT_BYTES  # the request and the answer never held together


def test_a_failing_fallback_function_leaves_the_fast_fail(features: Features) -> None:
    features.write(open_item("function"))
    features.fallback.behave(then="FallbackBroken")

    result = features.call("function")

    assert result.error == "CircuitOpen" and "Circuit open for service function until" in (result.cause or "")
    assert features.fallback.count == 1 and features.fallback_counts() == []


def test_a_fallback_is_not_used_for_a_failed_call_unless_asked(features: Features) -> None:
    features.services["function"].behave(then="ProviderDown")

    result = features.call("function")

    assert result.error == "ProviderDown" and features.fallback.count == 0


# --------------------------------------------------------------------------- success threshold


def test_a_half_open_circuit_closes_after_success_threshold_probes_in_a_row(features: Features) -> None:
    features.write(open_item("steady", seconds=-5, Opens=1))  # steady: successThreshold 2

    first = features.call("steady")
    after_first = features.item("steady")
    second = features.call("steady")

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert after_first is not None and after_first["ProbeSuccesses"] == 1  # still half-open
    assert "Probes" not in after_first  # the first probe's claim is released for the next one
    assert features.item("steady") is None


def test_a_failed_probe_starts_the_count_again(features: Features) -> None:
    steady = features.services["steady"]
    features.write(open_item("steady", seconds=-5, Opens=1))

    features.call("steady")  # one success counted
    steady.behave(then="ProviderDown")
    reopened = features.call("steady")
    item = features.item("steady")

    assert reopened.error == "ProviderDown"
    assert item is not None and int(item["ExpiryTimeStamp"]) > time.time() and "ProbeSuccesses" not in item
    assert steady.count == 1 + 1  # a failed probe is not retried: it re-opens the circuit at once


def test_an_ignored_error_counts_as_a_probe_success(features: Features) -> None:
    features.write(open_item("steady", seconds=-5, Opens=1))
    features.services["steady"].behave("PaymentDeclined", then="ok")

    declined = features.call("steady")
    ok = features.call("steady")

    assert (declined.error, ok.status) == ("PaymentDeclined", "SUCCEEDED")
    assert features.item("steady") is None


# --------------------------------------------------------------------------- slow start


ROLLS = [5, 95, 15, 85, 25, 75, 35, 65, 45, 55]  # what States.MathRandom(1, 100) returns, in turn


@pytest.fixture
def rolls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """States.MathRandom, made deterministic: it returns ROLLS in turn."""
    from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.math_operations import (
        math_random,
    )

    sequence = itertools.cycle(ROLLS)
    drawn: list[int] = []

    class Drawn:
        def __init__(self, seed: Any = None) -> None:
            pass

        def randint(self, start: int, end: int) -> int:
            if (start, end) != (1, 100):
                return start  # another draw (the read shard GetCircuitStatus picks): the first
            value = next(sequence)
            assert start <= value <= end
            drawn.append(value)
            return value

    monkeypatch.setattr(math_random.random, "Random", Drawn)
    return drawn


def test_a_probe_success_starts_a_slow_start(features: Features) -> None:
    features.write(open_item("ramping", seconds=-5, Opens=1))  # ramping: slowStartSeconds 20

    probe = features.call("ramping")
    item = features.item("ramping")

    assert probe.status == "SUCCEEDED"
    assert item is not None and "ExpiryTimeStamp" not in item and "OpenUntil" not in item
    now = time.time()
    assert now < _epoch(item["Admit10PercentUntil"]) <= now + 11
    assert _epoch(item["Admit50PercentUntil"]) - _epoch(item["Admit10PercentUntil"]) == 10


@pytest.mark.parametrize(("step", "admitted"), [("Admit10PercentUntil", 1), ("Admit50PercentUntil", 5)])
def test_a_slow_start_admits_its_share_and_turns_the_others_away(
    features: Features, rolls: list[int], step: str, admitted: int
) -> None:
    written = {"ServiceName": "ramping", step: _iso(time.time() + 60)}
    features.write(written)

    results = [features.call("ramping") for _ in ROLLS]

    assert [r.status for r in results].count("SUCCEEDED") == admitted == features.services["ramping"].count
    turned_away = [r for r in results if r.status == "FAILED"]
    assert {r.error for r in turned_away} == {"CircuitOpen"}
    assert "Circuit recovering for service ramping " in (turned_away[0].cause or "")
    assert features.item("ramping") == written  # admitting or turning away writes nothing
    with pytest.raises(CircuitOpenError):  # what the client makes of a turned-away call
        result = turned_away[0]
        result_from("ramping", {"status": result.status, "error": result.error, "cause": result.cause})


def test_after_a_slow_start_every_call_goes_through_with_one_read(features: Features, rolls: list[int]) -> None:
    past = _iso(time.time() - 1)
    features.write({"ServiceName": "ramping", "Admit10PercentUntil": past, "Admit50PercentUntil": past})

    results = [features.call("ramping") for _ in range(5)]

    assert {r.status for r in results} == {"SUCCEEDED"} and features.services["ramping"].count == 5
    assert rolls == []  # no dice once it is over
    assert [t["resource"] for t in results[0].tasks()] == ["getItem", "invoke"]


def test_a_closed_circuit_without_slow_start_rolls_no_dice(features: Features, rolls: list[int]) -> None:
    result = features.call("ramping")

    assert result.status == "SUCCEEDED" and rolls == []


# --------------------------------------------------------------------------- corrupt bookkeeping


def test_corrupt_bookkeeping_is_replaced_and_the_failure_recorded(
    features: Features, caplog: pytest.LogCaptureFixture
) -> None:
    features.write({"ServiceName": "declines", "Failures": "1800000000", "Version": "3", "Opens": "x"})
    features.services["declines"].behave(then="ProviderDown")

    failed = features.call("declines")
    fast = features.call("declines")
    item = features.item("declines")

    assert (failed.error, fast.error) == ("ProviderDown", "CircuitOpen")
    assert item is not None and int(item["ExpiryTimeStamp"]) > time.time()
    assert (item["Opens"], item["Version"], "Failures" in item) == (1, 1, False)
    logged = {
        r.attribute: r.corrupt_value  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage().startswith("Corrupt circuit item") and hasattr(r, "attribute")
    }
    assert logged == {"Failures": "'1800000000'", "Version": "'3'", "Opens": "'x'"}
    assert not [r for r in caplog.records if r.getMessage().startswith("Could not record the failure")]


# --------------------------------------------------------------------------- operator windows end


class MovedClock:
    """Step Functions' clock (``$$.State.EnteredTime``) and the breaker's Lambdas' clock, moved
    together: a test walks through an open window without waiting for it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MovedClock:
    import datetime as real
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.state import state as moto_state

    import sfn_breaker.lambdas.claim_probe as claim_probe
    import sfn_breaker.lambdas.record_failure as record_failure
    import sfn_breaker.lambdas.stream_mirror as stream_mirror

    moved = MovedClock()

    class MovedDatetime(real.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real.datetime.fromtimestamp(moved.now(), tz)

    monkeypatch.setattr(moto_state, "datetime", SimpleNamespace(datetime=MovedDatetime, timezone=real.timezone))
    for module in (claim_probe, record_failure, stream_mirror):
        monkeypatch.setattr(module, "clock", moved.now)
    return moved


def test_an_operators_open_window_ends_for_every_caller(features: Features, clock: MovedClock) -> None:
    """`breaker open SERVICE --for 10m` writes a forced open with an expiry: before it every call
    fails fast, at it one probe goes first, and after it all traffic flows again."""
    service = features.services["window"]
    until = int(clock.now()) + 600
    CircuitStore(
        features.breaker.table_name, dynamodb_resource=features.breaker.session.resource("dynamodb")
    ).force_open("window", until=until, now=clock.now(), reason="provider maintenance")
    features.breaker.runtime.settle()

    before = run_together(features, 4)
    clock.advance(until - clock.now() - 1)  # the last second of the window
    last_second = run_together(features, 2)
    assert {r.error for r in before + last_second} == {"CircuitOpen"}
    assert all("until" in (r.cause or "") for r in before) and service.count == 0

    clock.advance(until - clock.now())  # the window's end, to the (moved) millisecond
    held = service.hold()
    probe = features.breaker.start({"ServiceName": "window", "Payload": {}})
    _wait_for(lambda: service.count == 1)
    at = run_together(features, 5)  # while the probe is in flight
    held.set()
    probed = features.breaker.wait(probe)
    features.breaker.runtime.settle()

    assert probed.status == "SUCCEEDED"
    assert {r.error for r in at} == {"CircuitOpen"}
    assert all("probe call is in flight" in (r.cause or "") for r in at)
    assert service.count == 1 and features.item("window") is None

    clock.advance(3600)  # well after
    after = run_together(features, 10)
    later = [features.call("window") for _ in range(3)]
    assert {r.status for r in after + later} == {"SUCCEEDED"}
    assert service.count == 1 + 10 + 3
    assert features.item("window") is None


def run_together(features: Features, count: int, service: str = "window") -> list[Execution]:
    arns = concurrently(count, lambda _: features.breaker.start({"ServiceName": service, "Payload": {}}))
    results = [features.breaker.wait(arn) for arn in arns]
    features.breaker.runtime.settle()
    return results


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _iso(epoch: float) -> str:
    from sfn_breaker.core.reading import iso_timestamp

    return iso_timestamp(int(epoch))


def _epoch(iso: str) -> int:
    from sfn_breaker.core.reading import parse_iso_timestamp

    value = parse_iso_timestamp(iso, "test")
    assert value is not None
    return value
