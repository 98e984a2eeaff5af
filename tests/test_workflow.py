"""The workflow from `cdk synth`, executed on moto with the real handlers and a scripted service.

Each test states what a caller or operator does and asserts what came out: the execution's
result, how many calls reached the service, and what the CircuitStatus table holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest.mock import ANY

import pytest

from sfn_breaker import contract
from sfn_breaker.client import ResponseTooLargeError, result_from
from sfn_breaker.core import reading
from sfn_breaker.local.assembly import Assembly
from tests.conftest import READ_SHARDS
from tests.harness import Breaker, ScriptedService, ServiceError, concurrently, deployed_breaker
from tests.sharding import breaker_on

OPEN_SECONDS = 30  # conftest.FAST_CONTEXT


@pytest.fixture(params=["fast", "fast_sharded"])
def breaker(
    request: pytest.FixtureRequest, assemblies: dict[str, Assembly], service: ScriptedService
) -> Iterator[Breaker]:
    """conftest's ``breaker`` (the fast settings), and the same with ``payment`` on READ_SHARDS
    items (docs/scale.md): every test here, operators' writes included, must pass on both."""
    read_shards = READ_SHARDS if request.param.endswith("_sharded") else 1
    with breaker_on(assemblies[request.param], service, read_shards) as deployed:
        yield deployed


def open_until_of(item: dict[str, Any] | None) -> int:
    assert item is not None, "expected a circuit item"
    return int(item["ExpiryTimeStamp"])


# --------------------------------------------------------------------------- closed circuit


def test_closed_circuit_returns_the_service_response_unchanged(breaker: Breaker) -> None:
    payload = {"amount": 42, "currency": "EUR", "nested": {"list": [1, 2, 3]}}

    result = breaker.call(payload)

    assert result.status == "SUCCEEDED"
    assert result.output == {"ok": True, "call": 1, "echo": payload}
    assert breaker.service_calls() == 1
    assert breaker.items() == []  # a success on a closed circuit writes nothing


def test_closed_call_is_one_table_read_and_one_service_call(breaker: Breaker) -> None:
    result = breaker.call({"amount": 1})

    assert [t["resource"] for t in result.tasks()] == ["getItem", "invoke"]
    assert [t["resourceType"] for t in result.tasks()] == ["dynamodb", "lambda"]
    assert len(breaker.runtime.invocations) == 1  # no Lambda of the breaker's own ran


def test_payload_defaults_to_an_empty_object(breaker: Breaker) -> None:
    result = breaker.run({"ServiceName": "payment"})

    assert result.status == "SUCCEEDED"
    assert breaker.service.calls == [{}]


def test_demo_service_handler_runs_for_real(fast_assembly: Assembly) -> None:
    with deployed_breaker(fast_assembly) as deployed:
        deployed.runtime._stand_ins.clear()  # the demo's own code, not a script
        ok = deployed.call({"mode": "ok", "order": 7})
        failed = deployed.call({"mode": "fail", "message": "card declined"})

    assert ok.output == {"status": "paid", "service": "payment", "echo": {"mode": "ok", "order": 7}}
    assert failed.status == "FAILED"
    assert failed.error == "PaymentFailed"
    assert json.loads(failed.cause or "")["errorMessage"] == "card declined"


def test_the_demo_services_caller_errors_never_open_its_circuit(fast_assembly: Assembly) -> None:
    """The demo stack registers PaymentDeclined and InvalidDemoRequest as ignored errors of payment."""
    with deployed_breaker(fast_assembly) as deployed:
        deployed.runtime._stand_ins.clear()
        payloads = ({"mode": "decline"}, {"mode": "bogus"}, {"delayMs": -1})
        results = [deployed.call(payload) for _ in range(3) for payload in payloads]
        item = deployed.item()
        calls = deployed.runtime.calls_to("DemoService")
        recorded = deployed.runtime.calls_to("RecordFailure")

    assert [r.error for r in results] == ["PaymentDeclined", "InvalidDemoRequest", "InvalidDemoRequest"] * 3
    assert "declined" in json.loads(results[0].cause or "")["errorMessage"]
    assert len(calls) == 9  # one call each: never retried, never failed fast
    assert item is None and recorded == []


def test_a_declined_payment_is_not_an_outage(fast_assembly: Assembly) -> None:
    """The issue's count: a service answering PaymentDeclined 20 times in a row."""
    with deployed_breaker(fast_assembly) as deployed:
        deployed.runtime._stand_ins.clear()
        results = [deployed.call({"mode": "decline"}) for _ in range(20)]
        reached = len(deployed.runtime.calls_to("DemoService"))
        item = deployed.item()

    assert [r.error for r in results] == ["PaymentDeclined"] * 20
    assert reached == 20  # each call reached the service once: no retries, no fast fails
    assert item is None  # the circuit stayed closed and nothing was written


# --------------------------------------------------------------------------- failures and retries


def test_transient_failures_are_retried_and_do_not_open_the_circuit(breaker: Breaker) -> None:
    breaker.service.behave("fail", "fail", then="ok")

    result = breaker.call({"amount": 1})

    assert result.status == "SUCCEEDED"
    assert result.output["call"] == 3
    assert breaker.service_calls() == 3
    # Only the failed attempts were counted (one atomic write each); nothing opened the circuit.
    assert breaker.items() == [{"ServiceName": "payment", "FailedAttempts": 2, "FailedAttemptsSince": ANY}]


def test_final_failure_opens_the_circuit_and_carries_the_service_error(breaker: Breaker) -> None:
    breaker.service.behave(then="fail")
    before = time.time()

    result = breaker.call({"amount": 1})

    assert result.status == "FAILED"
    assert result.error == "ServiceError"
    assert json.loads(result.cause or "")["errorMessage"] == "scripted failure on call 3"
    assert breaker.service_calls() == 3  # maxAttempts
    item = breaker.item()
    expiry = open_until_of(item)
    assert before + OPEN_SECONDS <= expiry <= time.time() + OPEN_SECONDS + 1
    assert item is not None
    assert item["OpenUntil"] == reading.iso_timestamp(expiry)
    assert item["LastError"] == "ServiceError"
    assert "scripted failure on call 3" in item["LastCause"]
    assert len(breaker.runtime.calls_to("RecordFailure")) == 1


@pytest.mark.slow
def test_a_service_that_hangs_times_out_on_every_attempt(breaker: Breaker) -> None:
    breaker.service.behave(then="hang")

    result = breaker.call({"amount": 1})

    assert result.status == "FAILED"
    assert result.error == "ServiceTimeout"
    assert result.cause == ("Service payment did not answer within its timeout of 1 s on any attempt (States.Timeout).")
    assert breaker.service_calls() == 3
    assert open_until_of(breaker.item()) > time.time()
    assert breaker.item()["LastError"] == "States.Timeout"  # type: ignore[index]


@pytest.mark.slow
def test_default_settings_back_off_exponentially(default_assembly: Assembly) -> None:
    service = ScriptedService(then="fail")
    with deployed_breaker(default_assembly, service) as deployed:
        result = deployed.call({"amount": 1})

    assert result.status == "FAILED"
    assert service.count == 3
    waits = [
        json.loads(e["stateEnteredEventDetails"]["input"])["Retry"]["DelaySeconds"]
        for e in result.history
        if e["type"] == "WaitStateEntered"
    ]
    assert waits == [1, 2]
    entered = [e["timestamp"] for e in result.history if e["type"] == "WaitStateEntered"]
    exited = [e["timestamp"] for e in result.history if e["type"] == "WaitStateExited"]
    # Each wait lasted at least its delay (a lower bound on behaviour, not a speed limit).
    assert [(b - a).total_seconds() >= d for a, b, d in zip(entered, exited, waits, strict=True)] == [True, True]


# --------------------------------------------------------------------------- open circuit


def test_open_circuit_fails_fast_without_calling_the_service(breaker: Breaker) -> None:
    breaker.service.behave(then="fail")
    breaker.call({"amount": 1})
    calls_before = breaker.service_calls()
    expiry = open_until_of(breaker.item())

    result = breaker.call({"amount": 2})

    assert result.status == "FAILED"
    assert result.error == "CircuitOpen"
    assert result.cause == (
        f"Circuit open for service payment until {reading.iso_timestamp(expiry)}: "
        "the service was not called. Retry after that time."
    )
    assert breaker.service_calls() == calls_before
    assert [t["resource"] for t in result.tasks()] == ["getItem"]


def test_expired_circuit_lets_calls_through_before_ttl_deletes_it(breaker: Breaker) -> None:
    # An opened circuit whose expiry has passed, still in the table (TTL can lag by hours).
    past = int(time.time()) - 5
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": past, "LastError": "Old"})
    assert breaker.item()["OpenUntil"] == reading.iso_timestamp(past)  # type: ignore[index]

    result = breaker.call({"amount": 1})

    assert result.status == "SUCCEEDED"
    assert breaker.service_calls() == 1
    assert breaker.item() is None  # the success closed the circuit


def test_failure_after_expiry_opens_the_circuit_again(breaker: Breaker, monkeypatch: pytest.MonkeyPatch) -> None:
    past = int(time.time()) - 5
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": past})
    breaker.service.behave(then="fail")

    result = breaker.call({"amount": 1})

    assert result.error == "ServiceError"
    assert open_until_of(breaker.item()) >= int(time.time()) + OPEN_SECONDS - 1


@pytest.mark.slow
def test_concurrent_failures_never_push_the_expiry_out(
    default_assembly: Assembly, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sfn_breaker.lambdas.record_failure as record_failure

    # Each recorded failure sees a clock one second later (all within the open period), so any
    # write after the first would move the expiry out.
    ticks = iter(range(100))
    start = time.time()
    monkeypatch.setattr(record_failure, "clock", lambda: start + next(ticks))
    # Four executions (their 8 failed attempts before a retry stay under the default
    # failedAttemptsThreshold of 10) are inside the service at once on each of their three
    # attempts, so all four fail every attempt and record their failure at about the same moment.
    service = ScriptedService(then="fail", gate=4, gated_calls=12)
    with deployed_breaker(default_assembly, service) as deployed:
        arns = concurrently(4, lambda _: deployed.start({"ServiceName": "payment", "Payload": {}}))
        results = [deployed.wait(arn) for arn in arns]
        deployed.runtime.settle()
        item = deployed.item()
        recorded = [c for c in deployed.runtime.calls_to("RecordFailure") if c.event["Kind"] == "service"]

    assert [r.error for r in results] == ["ServiceError"] * 4
    assert service.count == 12
    outcomes = sorted(r.result["Result"] for r in recorded)
    assert outcomes == ["already open"] * 3 + ["opened"]
    (winner,) = [r.result for r in recorded if r.result["Result"] == "opened"]
    assert item is not None and item["OpenUntil"] == winner["OpenUntil"]  # the first recorded failure's expiry
    assert {r.result["OpenUntil"] for r in recorded} == {winner["OpenUntil"]}


def test_the_fleets_first_failed_attempts_open_the_circuit_before_the_retries(default_assembly: Assembly) -> None:
    """The retry storm cut to its first wave: ten callers against a service that has just died
    make ten calls, not thirty. Their failed attempts reach the default failedAttemptsThreshold
    (10) before the first retry (1 s later), so every retry finds the circuit open."""
    service = ScriptedService(then="fail", gate=10, gated_calls=10)
    with deployed_breaker(default_assembly, service) as deployed:
        arns = concurrently(10, lambda _: deployed.start({"ServiceName": "payment", "Payload": {}}))
        results = [deployed.wait(arn) for arn in arns]
        deployed.runtime.settle()
        item = deployed.item()
        recorded = deployed.runtime.calls_to("RecordFailure")

    assert service.count == 10
    assert {r.error for r in results} == {"CircuitOpen"}  # every retry was turned away
    assert {c.event["Kind"] for c in recorded} == {"attempts"}  # no execution got to its last attempt
    assert sorted(c.result["Result"] for c in recorded).count("opened") == 1
    assert {c.result["Result"] for c in recorded} <= {"opened", "already open"}
    assert item is not None and open_until_of(item) > time.time() and "FailedAttempts" not in item


def test_one_transient_fault_never_opens_the_circuit(breaker: Breaker) -> None:
    for _ in range(9):  # nine callers, each with one failed attempt, within the window
        breaker.service.behave("fail", then="ok")
        assert breaker.call({"amount": 1}).status == "SUCCEEDED"

    item = breaker.item()
    assert item is not None and item["FailedAttempts"] == 9 and "ExpiryTimeStamp" not in item
    assert breaker.runtime.calls_to("RecordFailure") == []


# --------------------------------------------------------------------------- operators' contract


def test_operator_write_of_a_future_expiry_opens_the_circuit(breaker: Breaker) -> None:
    until = int(time.time()) + 600
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": until})

    result = breaker.call({"amount": 1})

    assert result.error == "CircuitOpen"
    assert reading.iso_timestamp(until) in (result.cause or "")
    assert breaker.service_calls() == 0


def test_operator_moving_the_expiry_into_the_past_ends_the_open_period(breaker: Breaker) -> None:
    breaker.service.behave("fail", "fail", "fail", then="ok")
    assert breaker.call({"amount": 1}).status == "FAILED"
    assert breaker.call({"amount": 1}).error == "CircuitOpen"

    breaker.table.update_item(
        Key={"ServiceName": "payment"},
        UpdateExpression="SET ExpiryTimeStamp = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    breaker.runtime.settle()
    result = breaker.call({"amount": 1})

    assert result.status == "SUCCEEDED"
    assert breaker.item() is None


def test_operator_deleting_the_item_closes_the_circuit(breaker: Breaker) -> None:
    breaker.service.behave("fail", "fail", "fail", then="ok")
    breaker.call({"amount": 1})
    breaker.table.delete_item(Key={"ServiceName": "payment"})
    breaker.runtime.settle()

    result = breaker.call({"amount": 1})

    assert result.status == "SUCCEEDED"
    assert breaker.service_calls() == 4


def test_operator_can_hold_a_circuit_open_until_further_notice(breaker: Breaker) -> None:
    breaker.operator_writes({"ServiceName": "payment", "Forced": "OPEN"})

    result = breaker.call({"amount": 1})

    assert result.error == "CircuitOpen"
    assert result.cause == (
        "Circuit held open for service payment by an operator until further notice: the service was not called."
    )
    assert breaker.service_calls() == 0


def test_failures_never_override_a_forced_closed_circuit(breaker: Breaker) -> None:
    breaker.operator_writes({"ServiceName": "payment", "Forced": "CLOSED"})
    breaker.service.behave(then="fail")

    first = breaker.call({"amount": 1})
    second = breaker.call({"amount": 1})

    assert (first.error, second.error) == ("ServiceError", "ServiceError")
    assert breaker.service_calls() == 6  # never failed fast
    assert breaker.item() == {"ServiceName": "payment", "Forced": "CLOSED"}


def test_a_forced_open_with_a_past_expiry_is_over(breaker: Breaker) -> None:
    breaker.operator_writes({"ServiceName": "payment", "Forced": "OPEN", "ExpiryTimeStamp": int(time.time()) - 10})

    results = [breaker.call({"amount": n}) for n in range(3)]

    assert [r.status for r in results] == ["SUCCEEDED"] * 3
    assert breaker.service_calls() == 3  # every call went through, not only the first (the probe)
    assert breaker.item() is None  # the probe's success closed the operator's ended window


def test_forced_closed_wins_over_an_expiry_in_the_future(breaker: Breaker) -> None:
    # Both rules of IsCircuitClosed match this item; the operator's forced state must win.
    forced = {"ServiceName": "payment", "Forced": "CLOSED", "ExpiryTimeStamp": int(time.time()) + 600}
    breaker.operator_writes(forced)
    assert "OpenUntil" in (breaker.item() or {})  # the mirror the open rule reads is there

    result = breaker.call({"amount": 1})

    assert result.status == "SUCCEEDED"
    assert breaker.service_calls() == 1
    assert {k: v for k, v in (breaker.item() or {}).items() if k != "OpenUntil"} == forced


@pytest.mark.parametrize(
    "operator_item",
    [
        pytest.param({"ServiceName": "payment", "Forced": "CLOSED"}, id="forced-closed"),
        pytest.param({"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) + 600}, id="new-open-period"),
    ],
)
def test_a_probe_success_never_deletes_what_an_operator_wrote_during_the_probe(
    tuned_assembly: Assembly, operator_item: dict[str, Any]
) -> None:
    # GIVEN a circuit whose open period is over, and a probe held inside the service
    service = ScriptedService("hold", then="ok")
    with deployed_breaker(tuned_assembly, service) as deployed:  # 5 s timeout: room to hold the probe
        deployed.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) - 5})
        probe = deployed.start({"ServiceName": "payment", "Payload": {}})
        deadline = time.monotonic() + 10
        while service.count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.count == 1
        # WHEN an operator writes the circuit while the probe is in flight, and the probe succeeds
        deployed.operator_writes(operator_item)
        service.proceed()
        result = deployed.wait(probe)
        deployed.runtime.settle()
        item = deployed.item()

    # THEN the operator's item is still there
    assert result.status == "SUCCEEDED"
    assert item is not None
    assert {k: v for k, v in item.items() if k != "OpenUntil"} == operator_item


# --------------------------------------------------------------------------- corrupt items


def test_a_corrupt_expiry_is_ignored_loudly_and_calls_go_through(
    breaker: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": "tomorrow"})

    result = breaker.call({"amount": 1})

    assert result.status == "SUCCEEDED"
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("Corrupt circuit item")]
    assert logged.levelname == "ERROR"
    assert "Number of epoch seconds" in logged.problem  # type: ignore[attr-defined]
    assert breaker.item() == {"ServiceName": "payment", "ExpiryTimeStamp": "tomorrow"}  # nothing lost


def test_a_failure_replaces_a_corrupt_expiry_and_logs_the_old_value(
    breaker: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": "tomorrow"})
    breaker.service.behave(then="fail")

    breaker.call({"amount": 1})

    assert open_until_of(breaker.item()) > time.time()
    errors = [r for r in caplog.records if r.name == "circuit-breaker" and r.levelname == "ERROR"]
    assert [getattr(r, "corrupt_expiry", None) for r in errors][-1] == "tomorrow"


def test_a_garbage_mirror_is_repaired_from_the_expiry(breaker: Breaker) -> None:
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": Decimal(1), "OpenUntil": "zzzz"})

    assert breaker.item()["OpenUntil"] == reading.iso_timestamp(1)  # type: ignore[index]
    assert breaker.call({"amount": 1}).status == "SUCCEEDED"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("request_body", "error", "cause_part"),
    [
        ({"Payload": {}}, "InvalidInput", '"ServiceName"'),
        ({"ServiceName": 7, "Payload": {}}, "InvalidInput", '"ServiceName"'),
        ({"ServiceName": "", "Payload": {}}, "InvalidInput", '"ServiceName"'),
        ({"ServiceName": None}, "InvalidInput", '"ServiceName"'),
        ({"ServiceName": ["payment"]}, "InvalidInput", '"ServiceName"'),
        ({"ServiceName": "payments"}, "UnknownService", "Registered services: payment."),
        ({"ServiceName": "PAYMENT"}, "UnknownService", "No service named PAYMENT is registered"),
        ({"ServiceName": "payment", "Payload": "pay me"}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payment", "Payload": 12}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payment", "Payload": True}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payment", "Payload": None}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payment", "Payload": [1, 2]}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payment", "Payload": []}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payment", "Payload": [{}]}, "InvalidInput", '"Payload" must be a JSON object'),
        ({"ServiceName": "payments", "Payload": []}, "InvalidInput", '"Payload" must be a JSON object'),
        ([{"ServiceName": "payment"}], "InvalidInput", '"ServiceName"'),
        ("payment", "InvalidInput", '"ServiceName"'),
    ],
)
def test_bad_requests_get_a_clear_error_and_touch_nothing(
    breaker: Breaker, request_body: Any, error: str, cause_part: str
) -> None:
    result = breaker.run(request_body)

    assert result.status == "FAILED"
    assert (result.error, cause_part in (result.cause or "")) == (error, True), result.cause
    assert breaker.service_calls() == 0
    assert breaker.runtime.invocations == []
    assert breaker.items() == []
    assert result.tasks() == []


# --------------------------------------------------------------------------- payload sizes


def payload_of(characters: int) -> dict[str, str]:
    """An object whose JSON text (compact, as Step Functions writes it) has exactly ``characters``."""
    payload = {"blob": ""}
    payload["blob"] = "x" * (characters - len(json.dumps(payload, separators=(",", ":"))))
    assert len(json.dumps(payload, separators=(",", ":"))) == characters
    return payload


@pytest.mark.parametrize(
    "characters",
    [
        9_999,
        10_001,  # past the 10,000 characters of input that States.Hash (and Base64Encode) accept
        250_000,  # near the Express limit: the request, with its ServiceName, is still under 256 KiB
    ],
)
def test_a_payload_of_any_size_up_to_the_express_limit_round_trips(breaker: Breaker, characters: int) -> None:
    payload = payload_of(characters)
    assert len(json.dumps({"ServiceName": "payment", "Payload": payload}).encode()) < contract.MAX_INPUT_BYTES

    result = breaker.call(payload)

    assert (result.status, result.error, result.cause) == ("SUCCEEDED", None, None)
    assert breaker.service.calls == [payload]  # reached the service unchanged
    assert result.output == {"ok": True, "call": 1, "echo": payload}  # and its answer came back unchanged
    # Step Functions fails an execution whose state input or output reaches 256 KiB (moto checks
    # it too): the request and the service's answer (here as large as the request) are never
    # held together.
    assert result.largest_state_data() < contract.MAX_INPUT_BYTES


def test_an_answer_over_the_state_limit_is_not_retried_nor_counted_as_a_failure(breaker: Breaker) -> None:
    breaker.service.behave({"blob": "x" * 300_000}, then="ok")  # a small request, an answer over 256 KiB

    result = breaker.call({"order": 1})

    assert (result.status, result.error) == ("FAILED", "ServiceResponseTooLarge"), result.cause
    assert "Service payment was called and answered" in (result.cause or "")
    assert breaker.service.calls == [{"order": 1}]  # called once: a retry would call it again for nothing
    assert breaker.runtime.calls_to("RecordFailure") == [] and breaker.items() == []  # no failure counted
    with pytest.raises(ResponseTooLargeError):
        result_from("payment", {"status": result.status, "error": result.error, "cause": result.cause})


#: The largest payload (characters of compact JSON) that still gets the whole failure path on the
#: emulator when the service's cause is at Step Functions' cap of 32,768 characters (docs/limits.md).
FAILURE_PATH_PAYLOAD_LIMIT = 228_364
CAUSE_CAP = 32_768


def caught_cause(result: Any) -> str:
    """The cause of the service's first failed attempt, as the service call's Catch saw it."""
    cause: str = next(e["taskFailedEventDetails"]["cause"] for e in result.history if "taskFailedEventDetails" in e)
    return cause


def failing_with(message: str) -> Any:
    def step() -> None:
        raise ServiceError(message)

    return step


@pytest.fixture
def unsharded_breaker(fast_assembly: Assembly) -> Iterator[Breaker]:
    """The fast settings with one circuit item (read shards add their keys to the settings)."""
    with deployed_breaker(fast_assembly, ScriptedService()) as deployed:
        yield deployed


def test_the_whole_failure_path_runs_with_a_cause_at_the_cap_and_a_payload_at_the_documented_limit(
    unsharded_breaker: Breaker,
) -> None:
    breaker = unsharded_breaker
    # GIVEN a service whose error cause is exactly at the cap (its stack trace measured first)
    breaker.service.behave(failing_with(""), then="fail")
    message_length = CAUSE_CAP - len(caught_cause(breaker.call({})))
    breaker.table.delete_item(Key={"ServiceName": "payment"})
    breaker.service.calls.clear()
    breaker.runtime.invocations.clear()
    breaker.service.behave(*[failing_with("y" * message_length)] * 3, then="ok")

    # WHEN it fails with the largest payload documented for that cause
    result = breaker.call(payload_of(FAILURE_PATH_PAYLOAD_LIMIT))

    # THEN every attempt was made, the failure recorded and the circuit opened, with the service's own error
    assert len(caught_cause(result)) == CAUSE_CAP
    assert (result.status, result.error) == ("FAILED", "ServiceError"), result.cause
    assert len(breaker.service.calls) == 3
    assert [c.event["Kind"] for c in breaker.runtime.calls_to("RecordFailure")] == ["service"]
    assert reading.view("payment", breaker.item(), time.time()).state is reading.CircuitState.OPEN
    assert result.largest_state_data() < contract.MAX_INPUT_BYTES


def test_a_large_payload_is_sent_unchanged_on_every_attempt(breaker: Breaker) -> None:
    payload = payload_of(200_000)
    breaker.service.behave("fail", then="ok")

    result = breaker.call(payload)

    assert result.status == "SUCCEEDED"
    assert breaker.service.calls == [payload, payload]  # the retry sent the same payload
    assert result.largest_state_data() < contract.MAX_INPUT_BYTES


@pytest.mark.parametrize(
    ("payload", "reaches_the_service"),
    [
        ([], False),  # no [0] to tell it from {}: refused as InvalidInput all the same
        ([{}], False),
        ([[]], False),
        ({}, True),
        ({"items": []}, True),
        ({"": []}, True),
    ],
)
def test_only_a_json_object_reaches_the_service(breaker: Breaker, payload: Any, reaches_the_service: bool) -> None:
    result = breaker.call(payload)

    if reaches_the_service:
        assert result.status == "SUCCEEDED"
        assert breaker.service.calls == [payload]
    else:
        assert (result.status, result.error) == ("FAILED", "InvalidInput")
        assert '"Payload" must be a JSON object' in (result.cause or "")
        assert breaker.service_calls() == 0 and result.tasks() == []


# --------------------------------------------------------------------------- what one call costs


def test_aws_operations_per_call_from_the_execution_history(breaker: Breaker) -> None:
    """Counts reported in the issue note: closed-circuit call vs open-circuit call."""
    closed = breaker.call({"amount": 1})
    breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) + 60})
    opened = breaker.call({"amount": 1})

    def operations(execution: Any) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in execution.tasks():
            key = f"{task['resourceType']}:{task['resource']}"
            counts[key] = counts.get(key, 0) + 1
        counts["state transitions"] = len(execution.states())
        return counts

    assert operations(closed) == {"dynamodb:getItem": 1, "lambda:invoke": 1, "state transitions": 9}
    # The open call passes two more states than it did before fallbacks (why, then FailFast):
    # Express workflows bill requests and duration, not transitions.
    assert operations(opened) == {"dynamodb:getItem": 1, "state transitions": 9}
