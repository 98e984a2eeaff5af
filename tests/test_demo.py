"""``breaker demo``: a short run of the outage story on the in-process emulator, checked against
the emulator's own records; and the demo's pure parts (script, numbers, table, chart).

The run is short (seconds per phase, four callers) and uses the demo's own local settings, so it
shows the same story as ``breaker demo``: the circuit opens during the outage, callers fail
fast, the service is spared, and the circuit closes after recovery. Nothing here asserts how long
anything took; only the order of events and the counts.
"""

from __future__ import annotations

import io
import json
import logging
import re
import struct
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from sfn_breaker.core.model import CircuitState
from sfn_breaker.demo import (
    LOCAL_DEMO_CONTEXT,
    CallRecord,
    CircuitTransition,
    DemoError,
    DemoRecording,
    DemoSummary,
    Outcome,
    Scenario,
    ServiceCall,
    ServiceCallCount,
    ServiceRecords,
    ServiceSettings,
    StoryPhase,
    TimelinePrinter,
    call_tag,
    default_phases,
    deployed_target,
    open_periods,
    recovery_to_close,
    run_demo,
    summarize,
    summary_table,
)
from sfn_breaker.demo.chart import (
    MEMORY_LABEL,
    answered_series,
    legend_entries,
    per_second,
    whole_seconds,
    write_chart,
)
from sfn_breaker.local import LocalBreaker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class ShortRun:
    summary: DemoSummary
    invocations: list[Any]
    """The payment function's invocations during the story, as the emulator recorded them."""
    output: str
    max_attempts: int
    declines: list[Any]
    """The declined cards' invocations, before the story."""
    failures_recorded: int


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalBreaker(context_overrides=LOCAL_DEMO_CONTEXT) as breaker:
        yield breaker


def _payment_invocations(local: LocalBreaker) -> list[Any]:
    return local.runtime.calls_to(local.stack.outputs["DemoServiceFunctionName"])


@pytest.fixture(scope="module")
def short_run(local: LocalBreaker, tmp_path_factory: pytest.TempPathFactory) -> ShortRun:
    before = len(_payment_invocations(local))
    console = Console(file=io.StringIO(), width=140, color_system=None)
    summary = run_demo(
        local=local,
        callers=4,
        outage="slow",
        healthy_seconds=2,
        outage_seconds=6,
        recovered_seconds=7,
        pause_seconds=1.0,
        out_dir=tmp_path_factory.mktemp("demo-output"),
        console=console,
    )
    local.runtime.settle()
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert summary.settings is not None
    invocations = _payment_invocations(local)[before:]
    story = [i for i in invocations if i.event.get("mode") != "decline"]
    declines = [i for i in invocations if i.event.get("mode") == "decline"]
    recorded = sum(1 for c in local.runtime.calls_to("RecordFailure") if "declined" in str(c.event))
    return ShortRun(summary, story, output, summary.settings.max_attempts, declines, recorded)


# --------------------------------------------------------------------------- the story


def test_the_demo_runs_with_its_own_local_settings(short_run: ShortRun) -> None:
    settings = short_run.summary.settings
    assert settings is not None
    wanted = LOCAL_DEMO_CONTEXT["circuit-breaker"]
    assert (settings.timeout_seconds, settings.max_attempts, settings.open_duration_seconds) == (
        wanted["serviceTimeoutSeconds"],
        wanted["maxAttempts"],
        wanted["openDurationSeconds"],
    )


def test_the_circuit_opens_during_the_outage_and_closes_after_recovery(short_run: ShortRun) -> None:
    summary = short_run.summary
    assert summary.recording is not None
    scenario = summary.recording.scenario
    changes = summary.recording.changes
    phases = [change.state for change in changes]

    assert phases[0] is CircuitState.CLOSED
    assert CircuitState.OPEN in phases
    first_open = next(change for change in changes if change.state is CircuitState.OPEN)
    assert first_open.at >= scenario.outage_start
    assert first_open.open_until is not None
    assert summary.times_opened >= 1

    assert summary.closed_at_end
    assert changes[-1].state is CircuitState.CLOSED
    assert changes[-1].at >= scenario.outage_end
    assert summary.recovery_to_close_seconds is not None


def test_callers_fail_fast_while_the_circuit_is_open(short_run: ShortRun) -> None:
    summary = short_run.summary
    assert summary.fast_fails_while_down > 0
    assert summary.failures > 0  # the calls that found the circuit closed when the outage began
    assert summary.errors == 0
    assert summary.calls_made == summary.successes + summary.failures + summary.fast_fails + summary.errors
    recording = summary.recording
    assert recording is not None
    # Healthy calls succeed; outage calls never do.
    assert all(c.outcome is Outcome.OK for c in recording.calls if c.phase is StoryPhase.HEALTHY)
    assert not any(c.outcome is Outcome.OK for c in recording.calls if c.phase is StoryPhase.OUTAGE)
    assert all(c.timed_out for c in recording.calls if c.outcome is Outcome.FAILED)


def test_calls_made_while_the_circuit_is_open_never_reach_the_service(short_run: ShortRun) -> None:
    recording = short_run.summary.recording
    assert recording is not None
    first_open = next(change for change in recording.changes if change.state is CircuitState.OPEN)
    assert first_open.open_until is not None
    # The open period on the demo's clock, narrowed by half a second at each end so that the
    # watcher's polling and the whole-second expiry cannot blur it. A call reads the circuit
    # somewhere between its start and its end, so only calls wholly inside the period count.
    opened, closes = first_open.at + 0.5, first_open.open_until - recording.started_at - 0.5
    while_open = [c for c in recording.calls if opened <= c.started and c.ended <= closes]
    reached = {call_tag(i.event) for i in short_run.invocations}

    assert while_open
    assert all(c.outcome is Outcome.FAST_FAILED for c in while_open)
    assert not any((c.caller, c.number) in reached for c in while_open)


def test_the_service_receives_fewer_calls_while_down_than_without_a_breaker(short_run: ShortRun) -> None:
    summary = short_run.summary
    assert summary.service_calls_while_down is not None
    assert summary.without_breaker_estimate is not None
    assert summary.service_calls_while_down < summary.without_breaker_estimate


def test_declined_cards_never_open_the_circuit(short_run: ShortRun) -> None:
    assert len(short_run.declines) == 5  # one call each: an ignored error is not retried
    assert short_run.failures_recorded == 0
    assert "5 ended PaymentDeclined at once" in short_run.output
    assert "The payment circuit is still closed." in short_run.output


# --------------------------------------------------------------------------- the numbers match the records


def test_the_summary_counts_are_the_emulators_invocation_records(short_run: ShortRun) -> None:
    summary = short_run.summary
    down = [i for i in short_run.invocations if i.event.get("mode") != "ok"]
    assert summary.service_calls == len(short_run.invocations)
    assert summary.service_calls_while_down == len(down)
    assert summary.service_calls_source == "emulator invocation records"


def test_the_execution_histories_agree_with_the_invocation_records(short_run: ShortRun) -> None:
    checks = short_run.summary.cross_checks
    expected = (len(short_run.invocations), sum(1 for i in short_run.invocations if i.event.get("mode") != "ok"))
    assert checks == {"emulator invocation records": expected, "execution histories": expected}
    assert short_run.summary.records_agree


def test_every_invocation_traces_back_to_a_call_and_its_outcome(short_run: ShortRun) -> None:
    recording = short_run.summary.recording
    assert recording is not None
    per_call = Counter(call_tag(i.event) for i in short_run.invocations)
    calls = {(c.caller, c.number): c for c in recording.calls}
    assert None not in per_call
    assert set(per_call) <= set(calls)
    for tag, call in calls.items():
        attempts = per_call.get(tag, 0)
        if call.outcome is Outcome.FAILED:
            assert attempts == short_run.max_attempts, call
        elif call.outcome is Outcome.OK:
            assert 1 <= attempts <= short_run.max_attempts, call
        else:  # failed fast: at most a first attempt before a retry found the circuit open
            assert attempts < short_run.max_attempts, call
    after_an_attempt = sum(1 for t, c in calls.items() if c.outcome is Outcome.FAST_FAILED and per_call.get(t))
    assert short_run.summary.fast_fails_after_an_attempt == after_an_attempt


# --------------------------------------------------------------------------- what a person sees


def test_the_timeline_and_the_summary_table_are_printed(short_run: ShortRun) -> None:
    output = short_run.output
    for phase in ("HEALTHY", "OUTAGE", "RECOVERED"):
        assert f"{phase}:" in output
    assert "circuit OPEN until" in output
    assert "circuit CLOSED: a call succeeded" in output
    assert "fast-failed" in output
    assert "calls that reached payment while it was down" in output
    assert "time from recovery to the circuit closing" in output
    assert "DISAGREES" not in output


def test_the_chart_is_a_png(short_run: ShortRun) -> None:
    path = short_run.summary.chart_path
    assert path is not None and path.name == "breaker-demo.png"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1200, 900)


def test_the_in_process_emulators_output_goes_to_a_log_not_the_timeline(short_run: ShortRun) -> None:
    assert '"_aws"' not in short_run.output  # the Lambdas' metric lines
    assert "Exception=" not in short_run.output  # moto's error log
    path = short_run.summary.chart_path
    assert path is not None
    assert (path.parent / "emulator.log").exists()


def test_the_lambdas_logger_is_silenced_whatever_the_environment_says_now(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Powertools names its logger after POWERTOOLS_SERVICE_NAME as it was when the handlers were
    imported (``service_undefined`` in a shell that never set it): the demo silences that one."""
    from sfn_breaker.demo.run import _emulator_output_to
    from sfn_breaker.lambdas.observability import logger

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "not-the-name-the-handlers-were-imported-with")
    function_logger = logging.getLogger(logger.name)
    with _emulator_output_to(tmp_path / "emulator.log", Console(file=io.StringIO())):
        assert function_logger.disabled
    assert not function_logger.disabled


# --------------------------------------------------------------------------- against an endpoint


def test_against_an_emulator_endpoint_the_histories_are_the_record(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The path ``breaker demo`` takes with ``AWS_ENDPOINT_URL`` set (``breaker local up``): the
    deployed settings from the workflow, and the execution histories as the record."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", local.region)
    local.boto3_client("dynamodb").delete_item(
        TableName=local.stack.outputs["TableName"], Key={"ServiceName": {"S": "payment"}}
    )
    before = len(_payment_invocations(local))
    target = deployed_target()
    assert target.records is not None and target.records.local is None
    assert target.settings is not None and target.settings.timeout_seconds == 1

    summary = run_demo(
        where="aws",
        callers=2,
        outage="fail",
        healthy_seconds=1,
        outage_seconds=1,
        recovered_seconds=1,
        pause_seconds=0.2,
        out_dir=tmp_path,
        console=Console(file=io.StringIO(), width=140),
        chart=False,
    )
    local.runtime.settle()
    invocations = [i for i in _payment_invocations(local)[before:] if i.event.get("mode") != "decline"]
    assert summary.target.startswith("stack CircuitBreaker on the emulator at http://127.0.0.1:")
    assert summary.service_calls_source == "execution histories"
    assert summary.service_calls == len(invocations)
    assert summary.service_calls_while_down == sum(1 for i in invocations if i.event.get("mode") == "fail")
    assert summary.chart_path is None


def test_on_aws_the_payment_functions_log_is_the_record(local: LocalBreaker) -> None:
    """An Express workflow on AWS keeps no history to list: then the function's start lines count,
    in either of Lambda's log formats, and their times say whether the service was down."""

    class ExpressStepFunctions:
        def get_paginator(self, name: str) -> Any:
            error = {"Error": {"Code": "StateMachineTypeNotSupported", "Message": "Express"}}
            raise ClientError(error, "ListExecutions")

    logs = local.boto3_client("logs")
    group, function = "/aws/lambda/demo-log-test", "arn:aws:lambda:us-east-1:123456789012:function:demo-log-test"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="instance")
    started_at = time.time() - 20
    lines = [
        (1.0, "START RequestId: a Version: $LATEST"),
        (1.2, "END RequestId: a"),
        (1.2, "REPORT RequestId: a Duration: 101 ms"),
        (3.0, "START RequestId: b Version: $LATEST"),
        (5.5, '{"time": "...", "type": "platform.start", "record": {"requestId": "c"}}'),
        (7.0, "START RequestId: d Version: $LATEST"),
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="instance",
        logEvents=[{"timestamp": int((started_at + t) * 1000), "message": m} for t, m in lines],
    )
    run = SimpleNamespace(started_at=started_at, wall=lambda t: started_at + t, clock=lambda: 20.0)
    records = ServiceRecords(
        stepfunctions=ExpressStepFunctions(),
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:express",
        function_arn=function,
        logs=logs,
        log_settle_seconds=2,
        log_poll_seconds=0.1,
    )
    (count,) = records.collect(run, Scenario(healthy_seconds=2, outage_seconds=4, recovered_seconds=4))  # type: ignore[arg-type]
    assert count.source == f"function log {group} (by time)"
    assert [(round(c.at or 0, 1), c.while_down) for c in count.calls] == [
        (1.0, False),
        (3.0, True),
        (5.5, True),
        (7.0, False),
    ]


def test_with_credentials_but_no_stack_the_demo_plays_locally(
    local: LocalBreaker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``where="auto"`` on a machine with AWS credentials where the stack is not deployed."""

    class Started(Exception):
        pass

    def local_breaker(**kwargs: Any) -> Any:
        assert kwargs == {"context_overrides": LOCAL_DEMO_CONTEXT}
        raise Started

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr("sfn_breaker.local.LocalBreaker", local_breaker)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    with pytest.raises(Started):
        run_demo(where="auto", stack_name="NoSuchStack", out_dir=tmp_path, console=console)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "NoSuchStack is not deployed" in output
    assert "Playing the story on a local emulator instead." in output


# --------------------------------------------------------------------------- pure parts


def test_the_scenario_plays_three_phases_with_their_payloads() -> None:
    scenario = Scenario(outage="fail", healthy_seconds=10, outage_seconds=30, recovered_seconds=15)
    assert [scenario.phase_at(t) for t in (0, 9.9, 10, 39.9, 40, 55)] == [
        StoryPhase.HEALTHY,
        StoryPhase.HEALTHY,
        StoryPhase.OUTAGE,
        StoryPhase.OUTAGE,
        StoryPhase.RECOVERED,
        StoryPhase.RECOVERED,
    ]
    assert scenario.total_seconds == 55
    assert scenario.payload(StoryPhase.HEALTHY) == {"mode": "ok", "delayMs": 100}
    assert scenario.payload(StoryPhase.OUTAGE)["mode"] == "fail"
    assert Scenario(outage="slow").payload(StoryPhase.OUTAGE) == {"mode": "slow", "delayMs": 5000}


def test_phase_durations_follow_the_deployed_settings() -> None:
    def settings(open_seconds: int, timeout: int, attempts: int, delays: list[int]) -> ServiceSettings:
        return ServiceSettings(
            timeout_seconds=timeout,
            max_attempts=attempts,
            retry_delays_seconds=delays,
            open_duration_seconds=open_seconds,
            function_arn="arn",
        )

    assert default_phases(settings(5, 1, 2, [1])) == (30, 16)  # the local demo settings
    assert default_phases(settings(30, 3, 3, [1, 2])) == (84, 59)  # cdk.json's defaults
    assert default_phases(None) == (30, 15)


@pytest.mark.parametrize(
    "options",
    [{"callers": 0}, {"outage": "flaky"}, {"outage_seconds": 0}, {"healthy_seconds": -1}, {"pause_seconds": -0.1}],
)
def test_bad_options_are_refused_before_anything_starts(options: dict[str, Any]) -> None:
    with pytest.raises(DemoError):
        run_demo(where="local", **options)


def _change(at: float, state: CircuitState) -> CircuitTransition:
    return CircuitTransition(at=at, state=state)


def test_open_periods_and_the_time_to_close() -> None:
    changes = [
        _change(0, CircuitState.CLOSED),
        _change(14, CircuitState.OPEN),
        _change(19, CircuitState.HALF_OPEN),
        _change(22, CircuitState.OPEN),
        _change(27, CircuitState.HALF_OPEN),
        _change(44, CircuitState.CLOSED),
    ]
    assert open_periods(changes, end=60) == [(14, 19), (22, 27)]
    assert recovery_to_close(changes, recovered_at=40) == 4
    assert recovery_to_close(changes[:4], recovered_at=40) is None  # still open at the end
    assert recovery_to_close([_change(0, CircuitState.CLOSED)], recovered_at=40) is None  # never opened
    assert open_periods(changes[:2], end=60) == [(14, 60)]


def _call(number: int, phase: StoryPhase, outcome: Outcome) -> CallRecord:
    return CallRecord(caller=1, number=number, started=number, ended=number + 0.5, phase=phase, outcome=outcome)


def test_summarize_counts_calls_and_service_calls_and_draws_them(tmp_path: Path) -> None:
    scenario = Scenario(healthy_seconds=2, outage_seconds=4, recovered_seconds=2)
    calls = [
        _call(1, StoryPhase.HEALTHY, Outcome.OK),
        _call(2, StoryPhase.OUTAGE, Outcome.FAILED),
        _call(3, StoryPhase.OUTAGE, Outcome.FAST_FAILED),
        _call(4, StoryPhase.OUTAGE, Outcome.FAST_FAILED),
        _call(7, StoryPhase.RECOVERED, Outcome.OK),
    ]
    hits = [
        ServiceCall(at=1.1, while_down=False, call=(1, 1)),
        ServiceCall(at=2.1, while_down=True, call=(1, 2)),
        ServiceCall(at=3.2, while_down=True, call=(1, 2)),
        ServiceCall(at=4.1, while_down=True, call=(1, 4)),
        ServiceCall(at=7.1, while_down=False, call=(1, 7)),
    ]
    recording = DemoRecording(
        scenario=scenario,
        calls=calls,
        changes=[_change(0, CircuitState.CLOSED), _change(3, CircuitState.OPEN), _change(7.2, CircuitState.CLOSED)],
        service_counts=[ServiceCallCount(source="execution histories", calls=hits)],
        duration_seconds=8,
    )
    settings = ServiceSettings(
        timeout_seconds=1, max_attempts=2, retry_delays_seconds=[1], open_duration_seconds=5, function_arn="arn"
    )
    summary = summarize(recording, target="test", settings=settings, callers=1)
    assert (summary.calls_made, summary.successes, summary.failures, summary.fast_fails) == (5, 2, 1, 2)
    assert (summary.calls_while_down, summary.fast_fails_while_down) == (3, 2)
    assert (summary.service_calls, summary.service_calls_while_down) == (5, 3)
    assert summary.fast_fails_after_an_attempt == 1
    assert summary.without_breaker_estimate == 6
    assert summary.times_opened == 1
    assert summary.recovery_to_close_seconds == pytest.approx(1.2)

    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(summary_table(summary))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "1 of them on a retry, after a first attempt" in text
    assert "execution histories" in text

    drawn = write_chart(summary, tmp_path / "charts" / "demo.png")
    assert drawn.read_bytes()[:8] == PNG_SIGNATURE


def _chart_summary() -> Any:
    """A run of 8 s whose last calls end in its last, partial second, with fast fails from the
    breaker and from the client's memory."""
    scenario = Scenario(healthy_seconds=2, outage_seconds=4, recovered_seconds=2)
    calls = [
        _call(1, StoryPhase.HEALTHY, Outcome.OK),
        _call(2, StoryPhase.OUTAGE, Outcome.FAILED),
        _call(3, StoryPhase.OUTAGE, Outcome.FAST_FAILED),
        CallRecord(
            caller=2,
            number=1,
            started=4.2,
            ended=4.2001,
            phase=StoryPhase.OUTAGE,
            outcome=Outcome.FAST_FAILED,
            from_memory=True,
        ),
        _call(7, StoryPhase.RECOVERED, Outcome.OK),
        CallRecord(caller=2, number=2, started=7.9, ended=8.4, phase=StoryPhase.RECOVERED, outcome=Outcome.OK),
    ]
    recording = DemoRecording(
        scenario=scenario,
        calls=calls,
        changes=[_change(0, CircuitState.CLOSED), _change(3, CircuitState.OPEN), _change(7.2, CircuitState.CLOSED)],
        service_counts=[ServiceCallCount(source="execution histories", calls=[])],
        duration_seconds=8.4,
    )
    return summarize(recording, target="test", settings=None, callers=2)


def test_the_chart_draws_whole_seconds_only() -> None:
    summary = _chart_summary()

    assert whole_seconds(summary.recording) == 8  # the call ending at 8.4 s is in no bar
    assert per_second([0.5, 1.2, 7.99, 8.0, 8.4], 8) == [1, 1, 0, 0, 0, 0, 0, 1]
    totals = [sum(counts) for counts in zip(*(c for _, _, c in answered_series(summary.recording, 8)), strict=True)]
    assert len(totals) == 8 and sum(totals) == 5


def test_the_chart_tells_answers_from_memory_apart_and_names_every_mark_in_its_legend(tmp_path: Path) -> None:
    summary = _chart_summary()

    series = {label: counts for label, _, counts in answered_series(summary.recording, 8)}
    entries = legend_entries(summary)
    labels = [label for label, _ in entries]

    assert series[MEMORY_LABEL] == [0, 0, 0, 0, 1, 0, 0, 0]
    assert series["call failed fast (circuit open): the breaker answered"] == [0, 0, 0, 1, 0, 0, 0, 0]
    assert MEMORY_LABEL == "call failed fast from the client's memory of an open circuit (no execution)"
    assert "circuit closed, 1.2 s after payment recovered" in labels  # in the legend, not over the bars
    assert len({colour.lower() for _, colour in entries}) == len(entries) - 1  # one colour, one meaning ...
    assert {colour for label, colour in entries if "closed" in label or "succeeded" in label} == {
        "#009E73"
    }  # ... but green
    assert write_chart(summary, tmp_path / "chart.png").read_bytes()[:8] == PNG_SIGNATURE


def test_the_timeline_gives_every_time_on_the_demo_clock() -> None:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    started_at = 1_800_000_000.0
    printer = TimelinePrinter(console, started_at=lambda: started_at)

    printer(CircuitTransition(at=3.0, state=CircuitState.OPEN, open_until=int(started_at) + 35))
    printer(
        CallRecord(
            caller=1,
            number=4,
            started=4.0,
            ended=4.0,
            phase=StoryPhase.OUTAGE,
            outcome=Outcome.FAST_FAILED,
            retry_after=datetime.fromtimestamp(started_at + 35, tz=UTC),
            from_memory=True,
        )
    )
    text = console.file.getvalue()  # type: ignore[attr-defined]

    assert "circuit OPEN until 35.0s: calls fail fast" in text
    assert "circuit open, retry after 35.0s (from the client's memory: no execution)" in text
    assert not re.search(r"\d\d:\d\d:\d\d", text)  # no wall-clock time


def test_without_any_record_the_table_says_so() -> None:
    recording = DemoRecording(
        scenario=Scenario(),
        calls=[_call(1, StoryPhase.HEALTHY, Outcome.OK)],
        changes=[_change(0, CircuitState.CLOSED)],
        service_counts=[],
        duration_seconds=1,
    )
    summary = summarize(recording, target="AWS", settings=None, callers=1)
    assert summary.service_calls is None and summary.service_calls_source == "not available"
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(summary_table(summary))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "n/a" in text and "the circuit never opened" in text


def test_call_tags_come_from_the_payload() -> None:
    assert call_tag({"mode": "ok", "caller": 3, "call": 17}) == (3, 17)
    assert call_tag({"mode": "ok"}) is None
    assert call_tag(json.loads('"text"')) is None


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_the_demo_with_a_partial_summary_and_no_emulator_output(tmp_path: Path) -> None:
    """``breaker demo`` as a person runs it, interrupted (SIGINT, what Ctrl-C sends) during the
    outage, while executions are failing and the breaker's functions are logging."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import threading

    command = [sys.executable, "-m", "sfn_breaker.cli", "demo", "--where", "local", "--outage", "fail"]
    command += ["--callers", "4", "--no-chart", "--out-dir", str(tmp_path / "out")]
    env = {**os.environ, "BREAKER_STATE_DIR": str(tmp_path), "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    failing = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if re.search(r"caller \d+\s+(failed|fast-failed) ", line):  # a call's line in the timeline
                failing.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert failing.wait(timeout=240), "\n".join(lines)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
        reader.join(timeout=10)
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        process.kill()

    assert process.returncode == 130, "\n".join(lines) + stderr
    assert "Traceback" not in stderr
    interrupted = next((i for i, line in enumerate(lines) if line.startswith("interrupted after ")), None)
    assert interrupted is not None, "\n".join(lines)
    after = lines[interrupted:]
    assert not [line for line in lines if line.lstrip().startswith("{")], "\n".join(lines)  # no log lines
    assert any(line.startswith("Partial summary: the ") for line in after)
    assert any("calls made" in line for line in after)  # the summary table


def test_the_emulators_output_stays_in_its_log_until_it_has_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """After Ctrl-C the emulator's executions in flight go on logging while it stops: those lines
    go to its log, not to the terminal (timing-free: a stand-in emulator logs as it stops)."""
    import threading

    import sfn_breaker.demo.run as run_module
    import sfn_breaker.local as local_package

    late_line = '{"level": "INFO", "message": "logged while the emulator stops"}'

    class StoppingEmulator:
        endpoint_url = "http://127.0.0.1:1"

        def __init__(self, **kwargs: Any) -> None:
            pass

        def start(self) -> StoppingEmulator:
            return self

        def stop(self) -> None:
            thread = threading.Thread(target=print, args=(late_line,))  # an execution's thread, not the demo's
            thread.start()
            thread.join()

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(local_package, "LocalBreaker", StoppingEmulator)
    monkeypatch.setattr(run_module, "local_target", lambda emulator: None)
    monkeypatch.setattr(run_module, "play_demo", interrupted)

    with pytest.raises(KeyboardInterrupt):
        run_demo(where="local", out_dir=tmp_path, console=Console(file=io.StringIO()))

    assert late_line not in capfd.readouterr().out
    assert late_line in (tmp_path / "emulator.log").read_text()
