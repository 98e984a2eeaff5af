"""``breaker demo``: the cascading-failure story, played against the breaker.

The story: the ``payment`` service answers in about 100 ms, then goes down (it hangs for 5 s,
past the breaker's timeout, or fails outright), then recovers. Several callers call it all the
while. The first failures open the circuit; while it is open, callers fail fast and the service
is left alone; when the open period ends, calls reach the service again, and after recovery the
first success closes the circuit.

How the run is measured, and by whom:

- **Calls** are made by ``callers`` threads through ``BreakerClient.call``, the same client and
  code path a user has, against AWS and against the emulator alike. Each call's payload is
  chosen by the phase the call starts in; its outcome is what the client raised or returned.
- **The circuit** is watched by one thread that polls ``BreakerClient.status`` (the table) and
  records every change of state.
- **Calls that reached the service** are never the callers' guess. They come from the
  platform's own records, read after the run: on the in-process emulator, its record of
  invocations of the payment function *and* the execution histories (``TaskScheduled`` events
  for the function's ARN), which must agree; on an emulator at an endpoint, the histories; on
  AWS, where an Express workflow keeps no history to query, the payment function's own log
  (one ``START`` line per invocation).

Measuring and printing are separate: the threads only record, and hand events to the calling
thread, which prints them (``TimelinePrinter``); ``summarize`` turns the records into the
numbers of ``DemoSummary``; ``summary_table`` and ``circuit_breaker.demo_chart`` present them.

**Why threads and the synchronous client.** A caller of the breaker is most often a request
handler that blocks on the call, and that is exactly what a thread running ``client.call``
does, with the client users will use. boto3 is synchronous (``AsyncBreakerClient`` runs the
same calls on a thread pool anyway), eight callers are far from any thread limit, and a caller
spends its time waiting for the workflow's answer, not computing. On the in-process emulator
the pace is set by moto, which shares this process and its CPU (it parses the workflow
definition for every execution): threads or asyncio, the callers would wait on it alike. That
is also why each caller pauses between calls: enough calls to tell the story, not so many that
the emulator's own latency hides the service's.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast

from circuit_breaker.client import (
    BreakerClient,
    BreakerError,
    CircuitOpenError,
    ConfigurationError,
    ServiceCallError,
)
from circuit_breaker.contract import DEFAULT_STACK_NAME, DEMO_SERVICE
from circuit_breaker.core.model import CircuitState, CircuitView

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from circuit_breaker.local.server import LocalBreaker


#: The settings the demo deploys on the local emulator, chosen through CDK context as a user
#: would: a 1 s timeout (the outage's 5 s calls blow through it), one retry after 1 s (so a
#: failing call costs its caller about 3 s), and a 5 s open period (so the circuit opens,
#: half-opens and reopens a few times during the outage, and closes soon after recovery).
LOCAL_DEMO_SETTINGS: dict[str, Any] = {
    "openDurationSeconds": 5,
    "serviceTimeoutSeconds": 1,
    "retryIntervalSeconds": 1,
    "backoffRate": 2.0,
    "maxAttempts": 2,
}
LOCAL_DEMO_CONTEXT: dict[str, Any] = {"circuit-breaker": LOCAL_DEMO_SETTINGS}

HEALTHY_PAYLOAD: dict[str, Any] = {"mode": "ok", "delayMs": 100}
OUTAGE_PAYLOADS: dict[str, dict[str, Any]] = {
    "slow": {"mode": "slow", "delayMs": 5000},
    "fail": {"mode": "fail", "delayMs": 100, "message": "the payment provider is down"},
}
OutageKind = Literal["slow", "fail"]

DEFAULT_CALLERS = 8
DEFAULT_PAUSE_SECONDS = 1.0
DEFAULT_HEALTHY_SECONDS = 10.0
DEFAULT_OUT_DIR = Path("demo-output")
CHART_NAME = "breaker-demo.png"
#: Where the in-process emulator's own output (moto's and the Lambdas' log lines) goes.
EMULATOR_LOG = "emulator.log"
#: How often the circuit watcher reads the circuit.
STATUS_POLL_SECONDS = 0.2


class DemoError(BreakerError):
    """The demo cannot run as asked (bad options, no payment service); one line for a person.

    A ``BreakerError``, so that the CLI reports it like the client's own errors."""


# --------------------------------------------------------------------------- the script


class Phase(enum.StrEnum):
    HEALTHY = "healthy"
    OUTAGE = "outage"
    RECOVERED = "recovered"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """The three phases on the demo's clock (seconds since the first call) and what callers send."""

    outage: OutageKind = "slow"
    healthy_seconds: float = DEFAULT_HEALTHY_SECONDS
    outage_seconds: float = 30.0
    recovered_seconds: float = 15.0

    def __post_init__(self) -> None:
        if self.outage not in OUTAGE_PAYLOADS:
            raise DemoError(f"outage must be one of {', '.join(OUTAGE_PAYLOADS)}, not {self.outage!r}")
        for name in ("healthy_seconds", "outage_seconds", "recovered_seconds"):
            if not getattr(self, name) > 0:
                raise DemoError(f"{name.replace('_', ' ')} must be more than 0")

    @property
    def outage_start(self) -> float:
        return self.healthy_seconds

    @property
    def outage_end(self) -> float:
        """The moment the service recovers."""
        return self.healthy_seconds + self.outage_seconds

    @property
    def total_seconds(self) -> float:
        return self.outage_end + self.recovered_seconds

    def phase_at(self, t: float) -> Phase:
        if t < self.outage_start:
            return Phase.HEALTHY
        if t < self.outage_end:
            return Phase.OUTAGE
        return Phase.RECOVERED

    def payload(self, phase: Phase) -> dict[str, Any]:
        return dict(OUTAGE_PAYLOADS[self.outage] if phase is Phase.OUTAGE else HEALTHY_PAYLOAD)

    def describe(self, phase: Phase, settings: ServiceSettings | None) -> str:
        if phase is Phase.HEALTHY:
            return "payment answers in about 100 ms"
        if phase is Phase.RECOVERED:
            return "payment answers in about 100 ms again"
        if self.outage == "fail":
            return "every payment call fails (PaymentFailed)"
        timeout = f"the {settings.timeout_seconds} s timeout" if settings else "the timeout"
        return f"payment hangs for 5 s, past {timeout}"


def is_outage_payload(payload: object) -> bool:
    """Whether a service call carried the outage's payload, i.e. reached the service while it was down."""
    return isinstance(payload, Mapping) and payload.get("mode") in ("slow", "fail")


def call_tag(payload: object) -> tuple[int, int] | None:
    """The ``(caller, number)`` a demo call writes into its payload, so that every invocation the
    platform records can be traced back to the call that made it."""
    if isinstance(payload, Mapping) and isinstance(payload.get("caller"), int) and isinstance(payload.get("call"), int):
        return payload["caller"], payload["call"]
    return None


# --------------------------------------------------------------------------- what is recorded


class Outcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    FAST_FAILED = "fast-failed"
    ERROR = "error"
    """Neither the service's answer nor the breaker's: the demo could not make the call."""


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """One call as its caller saw it; times are seconds on the demo's clock."""

    caller: int
    number: int
    started: float
    ended: float
    phase: Phase
    outcome: Outcome
    error: str | None = None
    timed_out: bool = False
    retry_after: datetime | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started


#: The circuit as the timeline shows it: the states ``breaker status`` shows. ``half-open``: the
#: open period is over and a probe call decides (a success closes the circuit, a failure opens
#: it again).
CircuitPhase = CircuitState


def circuit_phase(view: CircuitView) -> CircuitPhase:
    return view.state


@dataclass(frozen=True, kw_only=True)
class CircuitChange:
    at: float
    phase: CircuitPhase
    open_until: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseChange:
    at: float
    phase: Phase
    description: str


@dataclass(frozen=True, kw_only=True)
class ServiceCall:
    """One invocation of the payment function, as the platform recorded it."""

    at: float | None
    """Seconds on the demo's clock (``None`` when the record has no time)."""
    while_down: bool
    call: tuple[int, int] | None = None
    """The demo call it belongs to, ``(caller, number)``, from the payload (``None`` when unknown)."""


@dataclass(frozen=True, kw_only=True)
class ServiceCallCount:
    """What one record of the platform says reached the service."""

    source: str
    calls: list[ServiceCall] = field(repr=False)

    @property
    def total(self) -> int:
        return len(self.calls)

    @property
    def while_down(self) -> int:
        return sum(1 for call in self.calls if call.while_down)


DemoEvent = CallRecord | CircuitChange | PhaseChange


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """The deployed settings of the payment service, as its ``Configure`` state holds them."""

    timeout_seconds: int
    max_attempts: int
    retry_delays_seconds: list[int]
    open_duration_seconds: int
    function_arn: str
    failure_threshold: int = 1
    """Failed calls that open the circuit."""
    half_open_probes: int | None = None
    """Calls let through once an open period is over (``None``: every call)."""

    @property
    def worst_case_seconds(self) -> int:
        return self.max_attempts * self.timeout_seconds + sum(self.retry_delays_seconds)

    def describe(self) -> str:
        waits = ", ".join(f"{d} s" for d in self.retry_delays_seconds) or "none"
        failures = (
            "1 failed call opens" if self.failure_threshold == 1 else f"{self.failure_threshold} failed calls open"
        )
        probes = "" if self.half_open_probes is None else f", then {self.half_open_probes} probe call(s)"
        return (
            f"timeout {self.timeout_seconds} s, {self.max_attempts} attempts (waits {waits}); "
            f"{failures} it for {self.open_duration_seconds} s{probes}"
        )


@dataclass(frozen=True, kw_only=True)
class DemoRecording:
    """Everything one run recorded, for the summary, the chart and the tests."""

    scenario: Scenario
    calls: list[CallRecord]
    changes: list[CircuitChange]
    service_counts: list[ServiceCallCount]
    duration_seconds: float
    started_at: float = 0.0
    """Wall-clock time (epoch seconds) of the demo clock's zero, to compare with ``open_until``."""


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """The numbers of one run."""

    target: str
    settings: ServiceSettings | None
    callers: int
    outage: OutageKind
    healthy_seconds: float
    outage_seconds: float
    recovered_seconds: float
    calls_made: int
    successes: int
    failures: int
    timeouts: int
    fast_fails: int
    errors: int
    calls_while_down: int
    """Calls made (started) while the service was down."""
    fast_fails_while_down: int
    fast_fails_after_an_attempt: int | None
    """Fast fails that had reached the service first: a retry found the circuit open (``None``
    when the records cannot tell calls apart)."""
    service_calls: int | None
    """Calls that reached the service in the whole run, from the platform's records."""
    service_calls_while_down: int | None
    service_calls_source: str
    cross_checks: dict[str, tuple[int, int]]
    """Every record consulted: source -> (calls that reached the service, of which while down)."""
    times_opened: int
    open_seconds: float
    recovery_to_close_seconds: float | None
    """From the service's recovery to the circuit closing for good; ``None`` when it did not."""
    closed_at_end: bool
    duration_seconds: float
    chart_path: Path | None = None
    recording: DemoRecording | None = field(default=None, repr=False, compare=False)

    @property
    def records_agree(self) -> bool:
        return len(set(self.cross_checks.values())) <= 1

    @property
    def without_breaker_estimate(self) -> int | None:
        """For comparison only: every call made while down, each with every attempt."""
        return None if self.settings is None else self.calls_while_down * self.settings.max_attempts


# --------------------------------------------------------------------------- measuring


class DemoRun:
    """Plays a ``Scenario`` against a breaker with ``callers`` threads and a circuit watcher.

    The threads record and queue events; ``play`` runs on the calling thread and hands each event
    to ``on_event`` there (so printing never races); afterwards ``calls`` and ``changes`` hold the
    run.
    """

    def __init__(
        self,
        client: BreakerClient,
        scenario: Scenario,
        *,
        callers: int = DEFAULT_CALLERS,
        pause_seconds: float = DEFAULT_PAUSE_SECONDS,
        service: str = DEMO_SERVICE,
        settings: ServiceSettings | None = None,
        poll_seconds: float = STATUS_POLL_SECONDS,
    ) -> None:
        if callers < 1:
            raise DemoError("callers must be at least 1")
        if pause_seconds < 0:
            raise DemoError("the pause between calls must not be negative")
        self.client = client
        self.scenario = scenario
        self.callers = callers
        self.pause_seconds = pause_seconds
        self.service = service
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.calls: list[CallRecord] = []
        self.changes: list[CircuitChange] = []
        self._events: queue.Queue[DemoEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._watching = threading.Event()
        self._t0 = 0.0
        self.started_at = 0.0
        """Wall-clock time (epoch seconds) of the demo clock's zero."""

    def clock(self) -> float:
        return time.monotonic() - self._t0

    def wall(self, t: float) -> float:
        """The wall-clock time of demo time ``t``."""
        return self.started_at + t

    def play(self, on_event: Callable[[DemoEvent], None] = lambda event: None) -> None:
        self._t0 = time.monotonic()
        self.started_at = time.time()
        watcher = threading.Thread(target=self._watch, name="demo-circuit", daemon=True)
        self._watching.set()
        watcher.start()
        threads = [
            threading.Thread(target=self._caller, args=(index,), name=f"demo-caller-{index}", daemon=True)
            for index in range(1, self.callers + 1)
        ]
        for thread in threads:
            thread.start()
        phase: Phase | None = None
        try:
            while any(thread.is_alive() for thread in threads):
                now = self.clock()
                current = self.scenario.phase_at(now)
                if current is not phase and now < self.scenario.total_seconds:
                    phase = current
                    boundary = {
                        Phase.HEALTHY: 0.0,
                        Phase.OUTAGE: self.scenario.outage_start,
                        Phase.RECOVERED: self.scenario.outage_end,
                    }[current]
                    on_event(
                        PhaseChange(
                            at=boundary, phase=current, description=self.scenario.describe(current, self.settings)
                        )
                    )
                self._drain(on_event, timeout=0.05)
            for thread in threads:
                thread.join()
        finally:
            self._watching.clear()
            watcher.join(timeout=10)
            self._drain(on_event, timeout=0)

    def _drain(self, on_event: Callable[[DemoEvent], None], timeout: float) -> None:
        try:
            event = self._events.get(timeout=timeout) if timeout else self._events.get_nowait()
        except queue.Empty:
            return
        while True:
            on_event(event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def _caller(self, index: int) -> None:
        # Spread the callers' first calls over one pause, as independent clients would be.
        period = self.pause_seconds or 0.1
        time.sleep(period * (index - 1) / self.callers)
        number = 0
        while (started := self.clock()) < self.scenario.total_seconds:
            number += 1
            phase = self.scenario.phase_at(started)
            payload = {**self.scenario.payload(phase), "caller": index, "call": number}
            record = self._call(index, number, started, phase, payload)
            with self._lock:
                self.calls.append(record)
            self._events.put(record)
            time.sleep(self.pause_seconds)

    def _call(self, caller: int, number: int, started: float, phase: Phase, payload: dict[str, Any]) -> CallRecord:
        common: dict[str, Any] = {"caller": caller, "number": number, "started": started, "phase": phase}
        try:
            self.client.call(self.service, payload)
        except CircuitOpenError as exc:
            return CallRecord(ended=self.clock(), outcome=Outcome.FAST_FAILED, retry_after=exc.retry_after, **common)
        except ServiceCallError as exc:
            return CallRecord(
                ended=self.clock(), outcome=Outcome.FAILED, error=exc.error, timed_out=exc.timed_out, **common
            )
        except Exception as exc:  # the demo goes on; the call is counted as an error
            name = type(exc).__name__ if not isinstance(exc, BreakerError) else str(exc)
            return CallRecord(ended=self.clock(), outcome=Outcome.ERROR, error=name, **common)
        return CallRecord(ended=self.clock(), outcome=Outcome.OK, **common)

    def _watch(self) -> None:
        last: tuple[CircuitPhase, int | None] | None = None
        while True:
            stopping = not self._watching.is_set()
            try:
                view = self.client.status(self.service)
            except Exception:  # a failed read is not a change; try again
                view = None
            if view is not None:
                phase = circuit_phase(view)
                key = (phase, view.open_until)
                if key != last:
                    last = key
                    change = CircuitChange(
                        at=self.clock(), phase=phase, open_until=view.open_until, last_error=view.last_error
                    )
                    with self._lock:
                        self.changes.append(change)
                    self._events.put(change)
            if stopping:
                return
            time.sleep(self.poll_seconds)


# --------------------------------------------------------------------------- the platform's records


class ServiceRecords:
    """Reads what reached the payment function during a run, from the platform's own records."""

    def __init__(
        self,
        *,
        stepfunctions: Any,
        state_machine_arn: str,
        function_arn: str,
        logs: Any = None,
        lambda_client: Any = None,
        local: LocalBreaker | None = None,
        log_settle_seconds: float = 60.0,
        log_poll_seconds: float = 5.0,
    ) -> None:
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.function_arn = function_arn
        self.function_name = function_arn.rsplit(":", 1)[-1]
        self.logs = logs
        self.lambda_client = lambda_client
        self.local = local
        self.log_settle_seconds = log_settle_seconds
        self.log_poll_seconds = log_poll_seconds
        self._invocations_before = len(local.runtime.calls_to(self.function_name)) if local else 0

    def collect(self, run: DemoRun, scenario: Scenario) -> list[ServiceCallCount]:
        counts: list[ServiceCallCount] = []
        if self.local is not None:
            counts.append(self._invocations())
        history = self._histories(run)
        if history is not None:
            counts.append(history)
        if not counts and self.logs is not None:
            counts.append(self._function_log(run, scenario))
        return counts

    def _invocations(self) -> ServiceCallCount:
        assert self.local is not None
        self.local.runtime.settle()
        invocations = self.local.runtime.calls_to(self.function_name)[self._invocations_before :]
        return ServiceCallCount(
            source="emulator invocation records",
            calls=[
                ServiceCall(at=None, while_down=is_outage_payload(i.event), call=call_tag(i.event)) for i in invocations
            ],
        )

    def _histories(self, run: DemoRun) -> ServiceCallCount | None:
        """``TaskScheduled`` events for the function's ARN in the executions the run started, or
        ``None`` where executions cannot be listed (an Express workflow on AWS)."""
        try:
            executions = self._executions_since(run.started_at)
        except Exception as exc:
            if _error_code(exc) in ("StateMachineTypeNotSupported", "AccessDeniedException"):
                return None
            raise
        calls: list[ServiceCall] = []
        for arn in executions:
            for event in self._history(arn):
                details = event.get("taskScheduledEventDetails")
                if event.get("type") != "TaskScheduled" or not details:
                    continue
                parameters = json.loads(details.get("parameters") or "{}")
                if parameters.get("FunctionName") != self.function_arn:
                    continue
                payload = parameters.get("Payload")
                at = _epoch(event["timestamp"]) - run.started_at
                calls.append(ServiceCall(at=at, while_down=is_outage_payload(payload), call=call_tag(payload)))
        calls.sort(key=lambda call: call.at or 0.0)
        return ServiceCallCount(source="execution histories", calls=calls)

    def _executions_since(self, started_at: float) -> list[str]:
        arns: list[str] = []
        paginator = self.stepfunctions.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=self.state_machine_arn):
            for execution in page["executions"]:
                if _epoch(execution["startDate"]) >= started_at - 0.001:
                    arns.append(execution["executionArn"])
        return arns

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self.stepfunctions.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def _function_log(self, run: DemoRun, scenario: Scenario) -> ServiceCallCount:
        """One start line per invocation in the function's log group, read until log delivery has
        caught up (two reads a few seconds apart agree). The payload is not in the log, so a
        line's time tells whether the service was down: a retry that starts just after recovery
        counts as a call to the recovered service."""
        log_group = f"/aws/lambda/{self.function_name}"
        if self.lambda_client is not None:
            config = self.lambda_client.get_function_configuration(FunctionName=self.function_arn)
            log_group = config.get("LoggingConfig", {}).get("LogGroup") or log_group
        window = {"startTime": int(run.started_at * 1000), "endTime": int((run.wall(run.clock()) + 1) * 1000)}
        deadline = time.monotonic() + self.log_settle_seconds
        times: list[float] = []
        previous = -1
        while True:
            times = []
            for page in self.logs.get_paginator("filter_log_events").paginate(logGroupName=log_group, **window):
                times.extend(
                    event["timestamp"] / 1000 - run.started_at
                    for event in page["events"]
                    if _is_start_line(event.get("message", ""))
                )
            if len(times) == previous or time.monotonic() >= deadline:
                break
            previous = len(times)
            time.sleep(self.log_poll_seconds)
        return ServiceCallCount(
            source=f"function log {log_group} (by time)",
            calls=[
                ServiceCall(at=t, while_down=scenario.outage_start <= t < scenario.outage_end) for t in sorted(times)
            ],
        )


def _is_start_line(message: str) -> bool:
    """Lambda's line for the start of an invocation, in the text or the JSON log format."""
    return message.startswith("START RequestId:") or '"type":"platform.start"' in message.replace(" ", "")


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


# --------------------------------------------------------------------------- the numbers


def open_periods(changes: Sequence[CircuitChange], end: float) -> list[tuple[float, float]]:
    """Intervals during which the watcher saw the circuit open (or forced open)."""
    periods: list[tuple[float, float]] = []
    opened: float | None = None
    for change in changes:
        is_open = change.phase in (CircuitPhase.OPEN, CircuitPhase.FORCED_OPEN)
        if is_open and opened is None:
            opened = change.at
        elif not is_open and opened is not None:
            periods.append((opened, change.at))
            opened = None
    if opened is not None:
        periods.append((opened, end))
    return periods


def recovery_to_close(changes: Sequence[CircuitChange], recovered_at: float) -> float | None:
    """Seconds from recovery until the circuit closed for good (its item deleted by a success),
    or ``None`` when it never opened or was not closed at the end."""
    if not changes or not any(c.phase is CircuitPhase.OPEN for c in changes):
        return None
    if changes[-1].phase is not CircuitPhase.CLOSED:
        return None
    return max(0.0, changes[-1].at - recovered_at)


def _fast_fails_after_an_attempt(calls: Sequence[CallRecord], record: ServiceCallCount | None) -> int | None:
    if record is None or any(hit.call is None for hit in record.calls):
        return None
    reached = {hit.call for hit in record.calls}
    return sum(1 for c in calls if c.outcome is Outcome.FAST_FAILED and (c.caller, c.number) in reached)


def summarize(
    recording: DemoRecording,
    *,
    target: str,
    settings: ServiceSettings | None,
    callers: int,
) -> DemoSummary:
    scenario = recording.scenario
    calls = recording.calls

    def count(outcome: Outcome, phase: Phase | None = None) -> int:
        return sum(1 for c in calls if c.outcome is outcome and (phase is None or c.phase is phase))

    primary = recording.service_counts[0] if recording.service_counts else None
    periods = open_periods(recording.changes, recording.duration_seconds)
    return DemoSummary(
        target=target,
        settings=settings,
        callers=callers,
        outage=scenario.outage,
        healthy_seconds=scenario.healthy_seconds,
        outage_seconds=scenario.outage_seconds,
        recovered_seconds=scenario.recovered_seconds,
        calls_made=len(calls),
        successes=count(Outcome.OK),
        failures=count(Outcome.FAILED),
        timeouts=sum(1 for c in calls if c.outcome is Outcome.FAILED and c.timed_out),
        fast_fails=count(Outcome.FAST_FAILED),
        errors=count(Outcome.ERROR),
        calls_while_down=sum(1 for c in calls if c.phase is Phase.OUTAGE),
        fast_fails_while_down=count(Outcome.FAST_FAILED, Phase.OUTAGE),
        fast_fails_after_an_attempt=_fast_fails_after_an_attempt(calls, primary),
        service_calls=primary.total if primary else None,
        service_calls_while_down=primary.while_down if primary else None,
        service_calls_source=primary.source if primary else "not available",
        cross_checks={c.source: (c.total, c.while_down) for c in recording.service_counts},
        times_opened=sum(
            1
            for before, after in zip([None, *recording.changes], recording.changes, strict=False)
            if after.phase is CircuitPhase.OPEN and (before is None or before.phase is not CircuitPhase.OPEN)
        ),
        open_seconds=sum(end - start for start, end in periods),
        recovery_to_close_seconds=recovery_to_close(recording.changes, scenario.outage_end),
        closed_at_end=bool(recording.changes) and recording.changes[-1].phase is CircuitPhase.CLOSED,
        duration_seconds=recording.duration_seconds,
        recording=recording,
    )


# --------------------------------------------------------------------------- printing


_OUTCOME_STYLE = {
    Outcome.OK: "green",
    Outcome.FAILED: "red",
    Outcome.FAST_FAILED: "yellow",
    Outcome.ERROR: "magenta",
}
_CIRCUIT_STYLE = {
    CircuitPhase.CLOSED: "bold green",
    CircuitPhase.OPEN: "bold red",
    CircuitPhase.HALF_OPEN: "bold yellow",
    CircuitPhase.FORCED_OPEN: "bold red",
    CircuitPhase.FORCED_CLOSED: "bold cyan",
}


class TimelinePrinter:
    """Prints the live timeline: phases, each call, and each change of the circuit."""

    def __init__(self, console: Console, *, show_calls: bool = True, service: str = DEMO_SERVICE) -> None:
        self.console = console
        self.show_calls = show_calls
        self.service = service
        self._first_change = True

    def __call__(self, event: DemoEvent) -> None:
        if isinstance(event, PhaseChange):
            self.console.rule(f"[bold]{event.at:5.1f}s  {event.phase.value.upper()}[/]: {event.description}")
        elif isinstance(event, CircuitChange):
            self._circuit(event)
        elif self.show_calls:
            self._call(event)

    def _call(self, call: CallRecord) -> None:
        style = _OUTCOME_STYLE[call.outcome]
        detail = ""
        if call.outcome is Outcome.FAILED:
            detail = f"{call.error}{' (timed out)' if call.timed_out else ''}"
        elif call.outcome is Outcome.FAST_FAILED:
            detail = f"circuit open, retry after {_clock(call.retry_after)}" if call.retry_after else "circuit open"
        elif call.outcome is Outcome.ERROR:
            detail = call.error or ""
        self.console.print(
            f"{call.ended:6.1f}s  caller {call.caller:<2} [{style}]{call.outcome.value:<11}[/] "
            f"{_latency(call.latency):>8}  [dim]{detail}[/]",
            highlight=False,
        )

    def _circuit(self, change: CircuitChange) -> None:
        first, self._first_change = self._first_change, False
        style = _CIRCUIT_STYLE[change.phase]
        if change.phase is CircuitPhase.OPEN:
            until = datetime.fromtimestamp(change.open_until, tz=UTC) if change.open_until else None
            text = f"circuit OPEN until {_clock(until)}: calls fail fast"
            if change.last_error:
                text += f" ({change.last_error})"
        elif change.phase is CircuitPhase.HALF_OPEN:
            text = f"circuit HALF-OPEN: the next call probes {self.service}"
        elif change.phase is CircuitPhase.CLOSED:
            text = "circuit CLOSED" + ("" if first else ": a call succeeded")
        else:
            text = f"circuit {change.phase.value.upper()} by an operator"
        self.console.print(f"[{style}]{change.at:6.1f}s  >>> {text}[/]", highlight=False)


def _latency(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _clock(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.astimezone().strftime("%H:%M:%S")


def summary_table(summary: DemoSummary) -> Table:
    """The run's numbers, for a person; every count of service calls names its record."""
    from rich.table import Table

    table = Table(
        title=f"breaker demo: {summary.callers} callers, outage: {summary.outage}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right", style="bold")
    table.add_column("", style="dim")

    recording = summary.recording
    by_phase = ""
    if recording is not None:
        per_phase = {p: sum(1 for c in recording.calls if c.phase is p) for p in Phase}
        by_phase = ", ".join(f"{per_phase[p]} {p.value}" for p in Phase)
    table.add_row("calls made", str(summary.calls_made), by_phase)
    table.add_row("  succeeded", str(summary.successes), "")
    table.add_row("  failed", str(summary.failures), f"{summary.timeouts} timed out" if summary.timeouts else "")
    if summary.fast_fails_after_an_attempt:
        fast_note = f"{summary.fast_fails_after_an_attempt} of them on a retry, after a first attempt"
    elif summary.fast_fails_after_an_attempt == 0:
        fast_note = "payment was not called"
    else:
        fast_note = ""
    table.add_row("  failed fast (circuit open)", str(summary.fast_fails), fast_note)
    if summary.errors:
        table.add_row("  errors (no answer)", str(summary.errors), "")
    table.add_row(
        "calls made while payment was down",
        str(summary.calls_while_down),
        f"{summary.fast_fails_while_down} failed fast",
    )
    others = list(summary.cross_checks.items())[1:]
    source = summary.service_calls_source
    if others and summary.records_agree:
        source = " = ".join(summary.cross_checks)
    elif others:
        source += "; DISAGREES with " + ", ".join(f"{name}: {down}" for name, (_, down) in others)
    table.add_row("calls that reached payment while it was down", _optional(summary.service_calls_while_down), source)
    estimate = summary.without_breaker_estimate
    if estimate is not None and summary.settings is not None:
        table.add_row(
            "  without a breaker (estimate)",
            str(estimate),
            f"{summary.calls_while_down} calls x {summary.settings.max_attempts} attempts",
        )
    table.add_row("calls that reached payment in all", _optional(summary.service_calls), "")
    table.add_row("times the circuit opened", str(summary.times_opened), f"open {summary.open_seconds:.1f} s in all")
    if summary.recovery_to_close_seconds is not None:
        close, note = f"{summary.recovery_to_close_seconds:.1f} s", "until a call succeeded"
    else:
        close = "-"
        note = "the circuit never opened" if summary.times_opened == 0 else "not closed by the end"
    table.add_row("time from recovery to the circuit closing", close, note)
    table.add_row("run time", f"{summary.duration_seconds:.0f} s", summary.target)
    return table


def _optional(value: int | None) -> str:
    return "n/a" if value is None else str(value)


# --------------------------------------------------------------------------- the target


@dataclass
class Target:
    """What the demo runs against: a client, and where to read the platform's records."""

    name: str
    client: BreakerClient
    records: ServiceRecords | None
    settings: ServiceSettings | None
    in_process: bool = False
    """Whether the emulator runs in this process (its output is then kept off the timeline)."""


def read_service_settings(stepfunctions: Any, state_machine_arn: str, service: str = DEMO_SERVICE) -> ServiceSettings:
    """The deployed settings of ``service``, from its ``Configure`` state in the running definition."""
    definition = json.loads(stepfunctions.describe_state_machine(stateMachineArn=state_machine_arn)["definition"])
    state = definition["States"].get(f"Configure {service}")
    if state is None:
        raise DemoError(f"the deployed breaker has no service named {service!r}")
    config = state["Result"]
    policy = {**config, **(config.get("Policy") or {})}  # the open-circuit policy may be grouped
    return ServiceSettings(
        timeout_seconds=int(config["TimeoutSeconds"]),
        max_attempts=int(config["Retries"]) + 1,
        retry_delays_seconds=[int(d) for d in config["RetryDelaysSeconds"]],
        open_duration_seconds=int(policy["OpenDurationSeconds"]),
        function_arn=str(config["FunctionArn"]),
        failure_threshold=int(policy.get("FailureThreshold", 1)),
        half_open_probes=_optional_int(policy.get("HalfOpenProbes")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def local_target(local: LocalBreaker) -> Target:
    stepfunctions = local.boto3_client("stepfunctions")
    settings = read_service_settings(stepfunctions, local.stack.state_machine_arn)
    records = ServiceRecords(
        stepfunctions=stepfunctions,
        state_machine_arn=local.stack.state_machine_arn,
        function_arn=settings.function_arn,
        local=local,
    )
    return Target(
        name="the local emulator (in-process)",
        client=local.client(),
        records=records,
        settings=settings,
        in_process=True,
    )


def deployed_target(*, stack_name: str = DEFAULT_STACK_NAME, session: Any = None) -> Target:
    """The deployed stack, found the way the client finds it (``AWS_ENDPOINT_URL`` included)."""
    client = BreakerClient(stack_name=stack_name, session=session)
    endpoint = client.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    stepfunctions = client.session.client("stepfunctions", endpoint_url=client.endpoint_url)
    state_machine_arn = client.state_machine_arn
    settings: ServiceSettings | None
    try:
        settings = read_service_settings(stepfunctions, state_machine_arn)
    except DemoError:
        raise
    except Exception:  # no permission to describe the workflow: run with what the client can do
        settings = None
    records = None
    if settings is not None:
        records = ServiceRecords(
            stepfunctions=stepfunctions,
            state_machine_arn=state_machine_arn,
            function_arn=settings.function_arn,
            logs=client.session.client("logs", endpoint_url=client.endpoint_url),
            lambda_client=client.session.client("lambda", endpoint_url=client.endpoint_url),
        )
    where = f"the emulator at {endpoint}" if endpoint else f"AWS ({client.session.region_name})"
    return Target(name=f"stack {stack_name} on {where}", client=client, records=records, settings=settings)


def default_phases(settings: ServiceSettings | None) -> tuple[float, float]:
    """Outage and recovered durations that let the story play out under ``settings``: at least
    two open / half-open cycles during the outage, and time after recovery for the last open
    period to end and a call to close the circuit. With the local demo settings: 30 s and 16 s."""
    if settings is None:
        return 30.0, 15.0
    cycle = settings.open_duration_seconds + settings.worst_case_seconds
    outage = max(30.0, 2.0 * cycle)
    recovered = max(15.0, float(cycle + settings.worst_case_seconds + 5))
    return outage, recovered


# --------------------------------------------------------------------------- the whole demo


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What ``run_demo`` was asked for; durations left ``None`` follow the deployed settings."""

    callers: int = DEFAULT_CALLERS
    outage: OutageKind = "slow"
    healthy_seconds: float = DEFAULT_HEALTHY_SECONDS
    outage_seconds: float | None = None
    recovered_seconds: float | None = None
    pause_seconds: float = DEFAULT_PAUSE_SECONDS
    out_dir: Path = DEFAULT_OUT_DIR
    show_calls: bool = True
    chart: bool = True

    def __post_init__(self) -> None:
        if self.callers < 1:
            raise DemoError("callers must be at least 1")
        if self.pause_seconds < 0:
            raise DemoError("the pause between calls must not be negative")
        self.scenario(None)  # the phases' own checks

    def scenario(self, settings: ServiceSettings | None) -> Scenario:
        default_outage, default_recovered = default_phases(settings)
        return Scenario(
            outage=self.outage,
            healthy_seconds=float(self.healthy_seconds),
            outage_seconds=float(self.outage_seconds if self.outage_seconds is not None else default_outage),
            recovered_seconds=float(
                self.recovered_seconds if self.recovered_seconds is not None else default_recovered
            ),
        )


def run_demo(
    *,
    callers: int = DEFAULT_CALLERS,
    outage: OutageKind = "slow",
    healthy_seconds: float = DEFAULT_HEALTHY_SECONDS,
    outage_seconds: float | None = None,
    recovered_seconds: float | None = None,
    pause_seconds: float = DEFAULT_PAUSE_SECONDS,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    console: Console | None = None,
    local: LocalBreaker | None = None,
    where: Literal["auto", "local", "aws"] = "auto",
    stack_name: str = DEFAULT_STACK_NAME,
    show_calls: bool = True,
    chart: bool = True,
) -> DemoSummary:
    """Play the outage story and return its numbers; print the timeline and the summary table on
    ``console`` and write the chart to ``out_dir``.

    Where it runs: against ``local`` when one is given. Otherwise ``where="local"`` starts an
    in-process emulator with ``LOCAL_DEMO_SETTINGS`` (and stops it afterwards), ``where="aws"``
    uses the deployed stack ``stack_name`` (AWS, or the emulator at ``AWS_ENDPOINT_URL``), and
    ``where="auto"`` picks the deployed stack when ``AWS_ENDPOINT_URL`` is set or AWS
    credentials are found, and the local emulator otherwise. The outage and recovered durations
    default to what the deployed settings need (30 s and 15 s with the local demo settings).
    """
    from rich.console import Console

    options = DemoOptions(
        callers=callers,
        outage=outage,
        healthy_seconds=healthy_seconds,
        outage_seconds=outage_seconds,
        recovered_seconds=recovered_seconds,
        pause_seconds=pause_seconds,
        out_dir=Path(out_dir),
        show_calls=show_calls,
        chart=chart,
    )
    console = console or Console()
    if local is not None:
        return play_demo(local_target(local), options, console)
    if where == "aws" or (where == "auto" and _aws_configured()):
        try:
            target = deployed_target(stack_name=stack_name)
        except ConfigurationError as exc:
            if where == "aws" or os.environ.get("AWS_ENDPOINT_URL"):
                raise
            # Credentials but no stack (or a region without one): the story still plays locally.
            console.print(f"[yellow]{exc}[/]\nPlaying the story on a local emulator instead.")
        else:
            return play_demo(target, options, console)
    from circuit_breaker.local.server import LocalBreaker

    started = time.monotonic()
    with console.status("Starting the local emulator: synthesizing the CDK app and deploying it into moto..."):
        emulator = LocalBreaker(context_overrides=LOCAL_DEMO_CONTEXT).start()
    try:
        console.print(f"Local emulator ready at {emulator.endpoint_url} ({time.monotonic() - started:.1f} s)")
        return play_demo(local_target(emulator), options, console)
    finally:
        emulator.stop()


def _aws_configured() -> bool:
    if os.environ.get("AWS_ENDPOINT_URL"):
        return True
    import boto3

    return boto3.Session().get_credentials() is not None


def play_demo(target: Target, options: DemoOptions, console: Console) -> DemoSummary:
    """Play the story against ``target``: the part of ``run_demo`` after the target is chosen."""
    scenario = options.scenario(target.settings)
    run = DemoRun(
        target.client,
        scenario,
        callers=options.callers,
        pause_seconds=options.pause_seconds,
        settings=target.settings,
    )
    console.print(f"[bold]breaker demo[/] against {target.name}")
    if target.settings is not None:
        console.print(f"payment: {target.settings.describe()}")
    console.print(
        f"{run.callers} callers, each calling again {run.pause_seconds:g} s after its last answer; "
        f"healthy {scenario.healthy_seconds:g} s -> outage ({scenario.outage}) {scenario.outage_seconds:g} s "
        f"-> recovered {scenario.recovered_seconds:g} s"
    )
    initial = target.client.status(DEMO_SERVICE)
    if initial.state is not CircuitState.CLOSED:
        console.print(
            f"[yellow]The payment circuit is {initial.state.value} at the start; the story assumes it is "
            "closed (`breaker close payment`).[/]"
        )

    started = time.monotonic()
    quiet = (
        _emulator_output_to(options.out_dir / EMULATOR_LOG, console) if target.in_process else contextlib.nullcontext()
    )
    with quiet:
        run.play(TimelinePrinter(console, show_calls=options.show_calls))
        with console.status("Reading what reached the service from the platform's records..."):
            counts = target.records.collect(run, scenario) if target.records else []
    recording = DemoRecording(
        scenario=scenario,
        calls=sorted(run.calls, key=lambda c: c.started),
        changes=list(run.changes),
        service_counts=counts,
        duration_seconds=time.monotonic() - started,
        started_at=run.started_at,
    )
    summary = summarize(recording, target=target.name, settings=target.settings, callers=run.callers)
    if options.chart:
        from circuit_breaker.demo_chart import write_chart

        summary = _with_chart(summary, write_chart(summary, options.out_dir / CHART_NAME))
    console.print(summary_table(summary))
    if summary.chart_path is not None:
        console.print(f"Chart: {summary.chart_path}")
    return summary


def _with_chart(summary: DemoSummary, path: Path) -> DemoSummary:
    return replace(summary, chart_path=path)


class _ThreadFilter:
    """A stand-in for ``sys.stdout``/``sys.stderr`` that lets the demo's own thread through and
    sends every other thread's writes (the in-process emulator's) to a log file instead."""

    def __init__(self, real: TextIO, log: TextIO, owner: int) -> None:
        self.real = real
        self.log = log
        self.owner = owner
        self.active = True
        self.encoding = real.encoding

    def write(self, text: str) -> int:
        if not self.active or threading.get_ident() == self.owner:
            return self.real.write(text)
        with contextlib.suppress(ValueError):  # the log may close while a late thread writes
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()
        with contextlib.suppress(ValueError):
            self.log.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextlib.contextmanager
def _emulator_output_to(log_path: Path, console: Console) -> Iterator[None]:
    """Keep the in-process emulator's own output off the timeline, in ``log_path`` instead:
    moto's log line for every failed state, and the breaker's Lambdas' log and metric lines
    (which on AWS go to CloudWatch). The Lambdas' Powertools logger is silenced as well, since
    it may hold the real stdout from before."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The console keeps writing where it writes now, from any thread (its spinner has its own).
    console.file = console.file
    owner = threading.get_ident()
    function_logger = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "circuit-breaker"))
    was_disabled = function_logger.disabled
    with log_path.open("a", encoding="utf-8") as log:
        filters = (_ThreadFilter(sys.stdout, log, owner), _ThreadFilter(sys.stderr, log, owner))
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = cast(TextIO, filters[0]), cast(TextIO, filters[1])
        function_logger.disabled = True
        try:
            yield
        finally:
            function_logger.disabled = was_disabled
            sys.stdout, sys.stderr = saved
            for stream in filters:
                stream.active = False


__all__ = [
    "DEMO_SERVICE",
    "LOCAL_DEMO_CONTEXT",
    "LOCAL_DEMO_SETTINGS",
    "CallRecord",
    "CircuitChange",
    "CircuitPhase",
    "DemoError",
    "DemoRecording",
    "DemoRun",
    "DemoSummary",
    "Outcome",
    "Phase",
    "Scenario",
    "ServiceCallCount",
    "ServiceRecords",
    "ServiceSettings",
    "TimelinePrinter",
    "run_demo",
    "summarize",
    "summary_table",
]
