"""One run: N callers through one strategy while the service goes down and comes back.

Every caller calls, waits ``pause_seconds`` after each answer, and calls again, from the start
of the run to its end; calls in flight at the end are waited for. A watcher reads the circuit
every 50 ms (uncounted) to see when it opens and closes. Times are ``time.monotonic()``.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field

from bench.outage.base import Emulator, Outcome, Strategy
from bench.outage.counting import executions_of
from bench.outage.service import OutageService


@dataclass(frozen=True)
class Call:
    caller: int
    started: float
    ended: float
    outcome: Outcome


@dataclass
class Run:
    strategy: str
    mode: str
    callers: int
    start: float
    down_at: float
    up_at: float
    end: float
    calls: list[Call]
    arrivals: list[float]
    """When each call reached the service (the service's own record)."""
    emulator_invocations: int
    """The emulator's record of invocations of the service function during the run."""
    executions: int | None
    circuit: list[tuple[float, bool]] = field(default_factory=list)
    """(time, closed) at each change the watcher saw, the first reading included."""
    direct_attempts: int | None = None
    """Calls to the service by the callers' own count (no breaker only)."""

    # ------------------------------------------------------------------ the numbers
    @property
    def reached_while_down(self) -> int:
        return sum(1 for t in self.arrivals if self.down_at <= t < self.up_at)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.calls if c.outcome is outcome)

    @property
    def calls_without_execution(self) -> int | None:
        """Calls answered without starting an execution (a client that remembers an open circuit)."""
        return None if self.executions is None else len(self.calls) - self.executions

    @property
    def first_success_after_recovery(self) -> float | None:
        ends = [c.ended for c in self.calls if c.outcome is Outcome.OK and c.ended >= self.up_at]
        return min(ends) - self.up_at if ends else None

    @property
    def closed_after_recovery(self) -> float | None:
        """From recovery until the circuit closed for the rest of the run (0: it was closed)."""
        if not self.circuit:
            return None
        if not self.circuit[-1][1]:
            return float("inf")
        last_closing = self.circuit[-1][0]
        return max(0.0, last_closing - self.up_at)

    @property
    def healthy_latency(self) -> float | None:
        """Median latency of the successful calls started while the service was healthy."""
        latencies = [c.ended - c.started for c in self.calls if c.outcome is Outcome.OK and c.started < self.down_at]
        return statistics.median(latencies) if latencies else None

    @property
    def healthy_rate(self) -> float:
        """Calls per caller per second while the service was healthy."""
        made = sum(1 for c in self.calls if c.started < self.down_at)
        return made / (self.callers * (self.down_at - self.start))


def run(emulator: Emulator, strategy: Strategy, mode: str) -> Run:
    settings = emulator.settings
    strategy.reset()
    callers = [strategy.new_caller() for _ in range(settings.callers)]
    service_calls_before = len(emulator.runtime.calls_to(emulator.service_function))
    attempts_before = strategy.direct_attempts
    sfn = emulator.session.client("stepfunctions")
    executions_before = executions_of(sfn, strategy.machine_arn) if strategy.machine_arn else set()

    start = time.monotonic() + 0.2
    down_at = start + settings.healthy
    up_at = down_at + settings.outage
    end = up_at + settings.recovery
    service = OutageService(
        mode=mode, down_at=down_at, up_at=up_at, latency=settings.service_seconds, hang_seconds=settings.hang_seconds
    )
    emulator.switchboard.current = service
    rng = random.Random(settings.seed)
    offsets = [rng.uniform(0, settings.pause_seconds) for _ in callers]
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()
    circuit: list[tuple[float, bool]] = []

    def caller(index: int) -> None:
        time.sleep(max(0.0, start + offsets[index] - time.monotonic()))
        while (began := time.monotonic()) < end:
            outcome = callers[index]()
            finished = time.monotonic()
            with lock:
                calls.append(Call(index, began, finished, outcome))
            time.sleep(settings.pause_seconds)

    def watch() -> None:
        while not stop.is_set():
            closed = strategy.circuit_closed()
            if closed is None:
                return
            if not circuit or circuit[-1][1] != closed:
                circuit.append((time.monotonic(), closed))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, name="circuit-watcher")
    threads = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(settings.callers)]
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    strategy.close()
    emulator.runtime.settle()
    executions = None
    if strategy.machine_arn:
        executions = len(executions_of(sfn, strategy.machine_arn) - executions_before)
    invocations = len(emulator.runtime.calls_to(emulator.service_function)) - service_calls_before
    return Run(
        strategy=strategy.name,
        mode=mode,
        callers=settings.callers,
        start=start,
        down_at=down_at,
        up_at=up_at,
        end=end,
        calls=sorted(calls, key=lambda c: c.started),
        arrivals=list(service.arrivals),
        emulator_invocations=invocations,
        executions=executions,
        circuit=circuit,
        direct_attempts=None
        if strategy.direct_attempts is None or attempts_before is None
        else strategy.direct_attempts - attempts_before,
    )
