"""What the demo records while it runs, and the run that records it.

``DemoRun`` plays a ``Scenario`` with ``callers`` threads, each calling the service through
``BreakerClient.call`` (the client and code path a user has), and one watcher thread that polls
``BreakerClient.status`` and records every change of the circuit. The threads only record: each
call becomes a ``CallRecord`` with its ``Outcome``, each change a ``CircuitTransition``, and the
calling thread is handed these events (and a ``StoryPhaseChange`` as each phase begins) to print.
``DemoRecording`` is everything one run recorded, the platform's records included.
"""

from __future__ import annotations

import enum
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sfn_breaker.client import BreakerClient
from sfn_breaker.contract import DEMO_SERVICE
from sfn_breaker.core.model import CircuitState
from sfn_breaker.demo.errors import DemoError
from sfn_breaker.demo.scenario import Scenario, ServiceSettings, StoryPhase
from sfn_breaker.errors import BreakerError, CircuitOpenError, ServiceCallError

DEFAULT_CALLERS = 8
DEFAULT_PAUSE_SECONDS = 1.0
#: How often the circuit watcher reads the circuit.
STATUS_POLL_SECONDS = 0.2


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
    phase: StoryPhase
    outcome: Outcome
    error: str | None = None
    timed_out: bool = False
    retry_after: datetime | None = None
    from_memory: bool = False
    """A fast fail answered from the client's memory of an open circuit: no execution was started."""

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True, kw_only=True)
class CircuitTransition:
    """The circuit as the watcher saw it when its state (or its open period) changed: the states
    ``breaker status`` shows. ``half-open``: the open period is over and a probe call decides (a
    success closes the circuit, a failure opens it again)."""

    at: float
    state: CircuitState
    open_until: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoryPhaseChange:
    """A phase of the story begins."""

    at: float
    phase: StoryPhase
    description: str


DemoEvent = CallRecord | CircuitTransition | StoryPhaseChange


@dataclass(frozen=True, kw_only=True)
class DemoRecording:
    """Everything one run recorded, for the summary, the chart and the tests."""

    scenario: Scenario
    calls: list[CallRecord]
    changes: list[CircuitTransition]
    service_counts: list[ServiceCallCount]
    duration_seconds: float
    started_at: float = 0.0
    """Wall-clock time (epoch seconds) of the demo clock's zero, to compare with ``open_until``."""


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
        self.changes: list[CircuitTransition] = []
        self._events: queue.Queue[DemoEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._watching = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
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
        self._threads = threads
        for thread in threads:
            thread.start()
        phase: StoryPhase | None = None
        try:
            while any(thread.is_alive() for thread in threads):
                now = self.clock()
                current = self.scenario.phase_at(now)
                if current is not phase and now < self.scenario.total_seconds:
                    phase = current
                    on_event(
                        StoryPhaseChange(
                            at=self.scenario.phase_start(current),
                            phase=current,
                            description=self.scenario.describe(current, self.settings),
                        )
                    )
                self._drain(on_event, timeout=0.05)
            for thread in threads:
                thread.join()
        except BaseException:  # Ctrl-C: no new call, and nothing more is handed on
            self._stopping.set()
            raise
        finally:
            self._watching.clear()
            watcher.join(timeout=10)
            if not self._stopping.is_set():
                self._drain(on_event, timeout=0)

    def stop(self, timeout: float = 10.0) -> int:
        """No caller starts another call; wait up to ``timeout`` s for the calls in flight to end.
        Returns how many calls were still in flight after the wait."""
        self._stopping.set()
        self._watching.clear()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(1 for thread in self._threads if thread.is_alive())

    def snapshot(self) -> tuple[list[CallRecord], list[CircuitTransition]]:
        """The calls and changes recorded so far (callers still in flight may add to ``calls``)."""
        with self._lock:
            return list(self.calls), list(self.changes)

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
        if self._stopping.wait(period * (index - 1) / self.callers):
            return
        number = 0
        while (started := self.clock()) < self.scenario.total_seconds and not self._stopping.is_set():
            number += 1
            phase = self.scenario.phase_at(started)
            payload = {**self.scenario.payload(phase), "caller": index, "call": number}
            record = self._call(index, number, started, phase, payload)
            with self._lock:
                self.calls.append(record)
            self._events.put(record)
            if self._stopping.wait(self.pause_seconds):
                return

    def _call(self, caller: int, number: int, started: float, phase: StoryPhase, payload: dict[str, Any]) -> CallRecord:
        common: dict[str, Any] = {"caller": caller, "number": number, "started": started, "phase": phase}
        try:
            self.client.call(self.service, payload)
        except CircuitOpenError as exc:
            return CallRecord(
                ended=self.clock(),
                outcome=Outcome.FAST_FAILED,
                retry_after=exc.retry_after,
                from_memory=exc.from_memory,
                **common,
            )
        except ServiceCallError as exc:
            return CallRecord(
                ended=self.clock(), outcome=Outcome.FAILED, error=exc.error, timed_out=exc.timed_out, **common
            )
        except Exception as exc:  # the demo goes on; the call is counted as an error
            name = type(exc).__name__ if not isinstance(exc, BreakerError) else str(exc)
            return CallRecord(ended=self.clock(), outcome=Outcome.ERROR, error=name, **common)
        return CallRecord(ended=self.clock(), outcome=Outcome.OK, **common)

    def _watch(self) -> None:
        last: tuple[CircuitState, int | None] | None = None
        while True:
            stopping = not self._watching.is_set()
            try:
                view = self.client.status(self.service)
            except Exception:  # a failed read is not a change; try again
                view = None
            if view is not None:
                key = (view.state, view.open_until)
                if key != last:
                    last = key
                    change = CircuitTransition(
                        at=self.clock(), state=view.state, open_until=view.open_until, last_error=view.last_error
                    )
                    with self._lock:
                        self.changes.append(change)
                    self._events.put(change)
            if stopping:
                return
            time.sleep(self.poll_seconds)
